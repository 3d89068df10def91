"""The hashed locks in locks/, one for every install, all made from one source: pyproject.toml's dependencies,
extras, dependency groups and build-system requires, pinned by constraints.txt.

``python -m tests.package.locks`` (``make lock``, needs PyPI) regenerates them with uv; ``tests/unit/test_locks.py``
checks offline that each still matches its source. Where each lock is installed:

- ``tools``: pip and the build backend, first in every environment (then the package builds without isolation).
- ``layer``: the zip functions' layer (layers/dependencies/requirements.txt is a copy), for the Lambda runtime.
- ``training``: the training image (functions/training.Dockerfile), for the base image's Python.
- ``dev``: ``make install`` (.venv): the package with its training and dev extras.
- ``sam``: the SAM CLI's own environment (``make package-check``, ``make build``).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCKS_DIR = REPO_ROOT / "locks"
PYPROJECT = REPO_ROOT / "pyproject.toml"
CONSTRAINTS = REPO_ROOT / "constraints.txt"
TEMPLATE = REPO_ROOT / "template.yaml"
DOCKERFILE = REPO_ROOT / "functions" / "training.Dockerfile"
LAYER_REQUIREMENTS = REPO_ROOT / "layers" / "dependencies" / "requirements.txt"

COMPILE_COMMAND = "make lock"
# The oldest Python the dev environment supports (requires-python); the dev and tool locks hold for it and later.
DEV_PYTHON = "3.11"
BASE_IMAGE = re.compile(r"^FROM\s+public\.ecr\.aws/lambda/python:(?P<version>\d+\.\d+)\S*", re.MULTILINE)


@dataclass(frozen=True)
class LockSpec:
    name: str
    python: str  # the interpreter version the lock is resolved for
    platform: str | None  # a uv --python-platform, or None for a universal lock (markers for every platform)
    project: bool = False  # [project.dependencies]
    extras: tuple[str, ...] = ()
    group: str | None = None
    build_requires: bool = False  # [build-system].requires
    requirements: tuple[str, ...] = ()  # further top-level names, pinned by constraints.txt
    constrained: bool = True  # pinned by constraints.txt

    @property
    def path(self) -> Path:
        return LOCKS_DIR / f"{self.name}.txt"

    def describe(self) -> str:
        """The line under uv's header that records what the lock was made from and for."""
        sources = ["dependencies"] if self.project else []
        if self.extras:
            sources.append(f"extras [{', '.join(self.extras)}]")
        if self.group:
            sources.append(f"group {self.group}")
        if self.build_requires:
            sources.append("build-system requires")
        sources += list(self.requirements)
        pins = ", pinned by constraints.txt" if self.constrained else ""
        return f"# {self.name}: python {self.python}, {self.platform or 'any platform'}; " \
               f"pyproject.toml {' + '.join(sources)}{pins}"


def _runtime_python(runtime: str) -> str:
    match = re.fullmatch(r"python(\d+\.\d+)", runtime)
    if not match:
        raise ValueError(f"not a Python Lambda runtime: {runtime!r}")
    return match.group(1)


def _lambda_platform(python: str, architecture: str) -> str:
    """Lambda's Python 3.12 and later run on Amazon Linux 2023 (glibc 2.34), the earlier ones on Amazon Linux 2."""
    glibc = "2_34" if tuple(map(int, python.split("."))) >= (3, 12) else "2_26"
    return f"{ {'x86_64': 'x86_64', 'arm64': 'aarch64'}[architecture]}-manylinux_{glibc}"


def deploy_targets() -> dict[str, tuple[str, str]]:
    """(python, platform) of the layer and of the training image, read from template.yaml and the Dockerfile."""
    from localcloud.template import load_template

    template = load_template(TEMPLATE)
    architectures = template.get("Globals", {}).get("Function", {}).get("Architectures", ["x86_64"])
    layer = template["Resources"]["DependenciesLayer"]
    layer_python = _runtime_python(layer["Metadata"]["BuildMethod"])
    image = BASE_IMAGE.search(DOCKERFILE.read_text())
    if image is None:
        raise ValueError(f"{DOCKERFILE.name} does not start FROM public.ecr.aws/lambda/python:<version>")
    image_python = image.group("version")
    return {
        "layer": (layer_python, _lambda_platform(layer_python, architectures[0])),
        "training": (image_python, _lambda_platform(image_python, architectures[0])),
    }


def specs() -> list[LockSpec]:
    targets = deploy_targets()
    return [
        LockSpec("tools", DEV_PYTHON, None, build_requires=True, requirements=("pip",)),
        LockSpec("layer", *targets["layer"], project=True),
        LockSpec("training", *targets["training"], project=True, extras=("training",)),
        LockSpec("dev", DEV_PYTHON, None, project=True, extras=("training", "dev", "cli")),
        LockSpec("sam", DEV_PYTHON, None, group="sam", constrained=False),
    ]


def pyproject() -> dict[str, Any]:
    return tomllib.loads(PYPROJECT.read_text())


def direct_requirements(spec: LockSpec) -> list[str]:
    """The requirement strings a lock is made from (PEP 508), in pyproject order."""
    project = pyproject()
    found: list[str] = []
    if spec.project:
        found += project["project"]["dependencies"]
    for extra in spec.extras:
        found += project["project"]["optional-dependencies"][extra]
    if spec.group:
        found += project["dependency-groups"][spec.group]
    if spec.build_requires:
        found += project["build-system"]["requires"]
    found += list(spec.requirements)
    return found


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class LockEntry:
    name: str  # normalized
    version: str
    extras: tuple[str, ...]
    marker: str | None
    hashes: tuple[str, ...]
    via: tuple[str, ...]  # uv's annotations: parent packages, "-c constraints.txt", "modelforge (pyproject.toml)"
    line: str


ENTRY = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(\[(?P<extras>[^\]]*)\])?==(?P<version>[^\s;\\]+)"
                   r"\s*(;\s*(?P<marker>[^\\]+?))?\s*\\?$")
HASH = re.compile(r"^\s+--hash=sha256:(?P<hash>[0-9a-f]{64})\s*\\?$")


def read_lock(path: Path) -> list[LockEntry]:
    """The entries of a lock written by uv pip compile (raises ValueError on a line it does not expect)."""
    entries: list[LockEntry] = []
    current: dict[str, Any] | None = None

    def close() -> None:
        if current is not None:
            entries.append(LockEntry(**{**current, "hashes": tuple(current["hashes"]), "via": tuple(current["via"])}))

    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or (current is None and line.startswith("#")):
            continue
        if not line.startswith((" ", "#")):
            close()
            match = ENTRY.match(line)
            if match is None:
                raise ValueError(f"{path.name}:{number}: not a pinned requirement: {line!r}")
            extras = tuple(e.strip() for e in (match["extras"] or "").split(",") if e.strip())
            current = {"name": normalize(match["name"]), "version": match["version"], "extras": extras,
                       "marker": match["marker"], "hashes": [], "via": [], "line": line}
        elif current is None:
            raise ValueError(f"{path.name}:{number}: unexpected line {line!r}")
        elif hashed := HASH.match(line):
            current["hashes"].append(hashed["hash"])
        elif line.lstrip().startswith("#"):
            note = line.lstrip()[1:].strip()
            note = note.removeprefix("via").strip()
            if note:
                current["via"].append(note)
        else:
            raise ValueError(f"{path.name}:{number}: unexpected line {line!r}")
    close()
    return entries


def compile_lock(spec: LockSpec, uv: str) -> None:
    command = [uv, "pip", "compile", "--quiet", "--generate-hashes", "--no-strip-extras",
               "--custom-compile-command", COMPILE_COMMAND, "--python-version", spec.python]
    command += ["--python-platform", spec.platform] if spec.platform else ["--universal"]
    if spec.constrained:
        command += ["--constraints", "constraints.txt"]
    if spec.project:
        command.append("pyproject.toml")
        command += [arg for extra in spec.extras for arg in ("--extra", extra)]
    if spec.group:
        command += ["--group", f"pyproject.toml:{spec.group}"]
    stdin = None
    if spec.build_requires or spec.requirements:  # not in [project]: handed to uv on its standard input
        loose = pyproject()["build-system"]["requires"] if spec.build_requires else []
        stdin = "\n".join([*loose, *spec.requirements]) + "\n"
        command.append("-")
    command += ["--output-file", str(spec.path.relative_to(REPO_ROOT))]
    spec.path.parent.mkdir(exist_ok=True)
    subprocess.run(command, cwd=REPO_ROOT, input=stdin, text=True, check=True)
    lines = spec.path.read_text().splitlines(keepends=True)
    header = 2  # uv's "autogenerated by uv via the following command:" and the command
    lines.insert(header, spec.describe() + "\n")
    spec.path.write_text("".join(lines))


def main(argv: list[str]) -> int:
    uv = argv[0] if argv else "uv"
    for spec in specs():
        print(f"locking {spec.path.relative_to(REPO_ROOT)}", flush=True)
        compile_lock(spec, uv)
    LAYER_REQUIREMENTS.write_text((LOCKS_DIR / "layer.txt").read_text())
    print(f"copied locks/layer.txt to {LAYER_REQUIREMENTS.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
