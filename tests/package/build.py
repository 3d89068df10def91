"""Builds the zip functions and their layers as a deployment does, for tests/package/test_packaged_imports.py.

``python -m tests.package.build --sam PATH`` (``make package``) runs ``sam build`` from the SAM CLI pinned in
locks/sam.txt on template.yaml, leaving out the container-image functions (those need Docker), into
build/package/sam. SAM installs a Python layer with the interpreter of its runtime, so the runtime's Python
(python3.12 for the template's python3.12) must be installed; it is looked up on PATH, then under pyenv, or
taken from $LAMBDA_PYTHON. SAM's own cache (build/package/cache, keyed by the requirements' and the code's
hashes) makes a rebuild with nothing changed take seconds.

Next to the build it installs what the Lambda runtime itself provides (boto3 and its dependencies, at the versions
locks/layer.txt pins, from their hashes) into build/package/runtime, and writes build/package/manifest.json:
per zip function its handler and the directories that make up its sys.path in Lambda, in Lambda's order
(the function's code, each layer's python/, the runtime's packages).
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from localcloud.template import load_template

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = REPO_ROOT / "template.yaml"
LAYER_LOCK = REPO_ROOT / "locks" / "layer.txt"
BUILD_DIR = REPO_ROOT / "build" / "package"
MANIFEST = BUILD_DIR / "manifest.json"

# What the Lambda Python runtimes ship beside the standard library.
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3")


def source_fingerprint() -> str:
    """A hash of everything the build reads, so a test can tell a build that no longer matches the sources."""
    digest = hashlib.sha256()
    inputs = [TEMPLATE, LAYER_LOCK, *sorted((REPO_ROOT / "layers").rglob("*")),
              *sorted((REPO_ROOT / "functions").rglob("*"))]
    for path in inputs:
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(REPO_ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def is_zip_function(resource: dict[str, Any]) -> bool:
    props = resource.get("Properties", {})
    return resource["Type"] == "AWS::Serverless::Function" and props.get("PackageType", "Zip") == "Zip"


def functions(template: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(zip function ids, image function ids) of the template."""
    fns = {name: r for name, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}
    return sorted(n for n, r in fns.items() if is_zip_function(r)), sorted(n for n, r in fns.items()
                                                                           if not is_zip_function(r))


def runtime_of(template: dict[str, Any], logical_id: str) -> str:
    props = template["Resources"][logical_id]["Properties"]
    return str(props.get("Runtime") or template.get("Globals", {}).get("Function", {})["Runtime"])


def python_version(executable: str) -> str | None:
    try:
        done = subprocess.run([executable, "-I", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                              capture_output=True, text=True, timeout=30)
    except OSError:
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def find_python(version: str) -> str:
    """An interpreter of this X.Y version: $LAMBDA_PYTHON, pythonX.Y on PATH, or pyenv's."""
    candidates = [os.environ.get("LAMBDA_PYTHON", ""), shutil.which(f"python{version}") or ""]
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    pattern = str(pyenv_root / "versions" / f"{version}.*" / "bin" / f"python{version}")
    candidates += sorted(glob.glob(pattern), key=lambda p: [int(n) for n in re.findall(r"\d+", p)], reverse=True)
    for candidate in filter(None, candidates):
        if python_version(candidate) == version:  # a pyenv shim for a version not selected fails here
            return str(Path(candidate).absolute())
    raise SystemExit(f"package check: no Python {version} found (the Lambda runtime of the zip functions); "
                     f"install it or point LAMBDA_PYTHON at it")


def sam_build(sam: str, python: str, image_functions: list[str]) -> None:
    sam = shutil.which(sam) or sam
    sam = str(Path(sam).absolute()) if os.sep in sam else sam
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0", "PATH": f"{Path(python).parent}{os.pathsep}{os.environ['PATH']}"}
    command = [sam, "build", "--template-file", str(TEMPLATE), "--build-dir", str(BUILD_DIR / "sam"),
               "--cached", "--cache-dir", str(BUILD_DIR / "cache"), "--no-use-container"]
    for logical_id in image_functions:
        command += ["--exclude", logical_id]
    # SAM keeps downloaded dependencies in .aws-sam/deps under its working directory: build/package, not the repo.
    done = subprocess.run(command, cwd=BUILD_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if done.returncode != 0:
        print(done.stdout, file=sys.stderr)
        raise SystemExit(f"package check: sam build failed ({done.returncode})")
    print("\n".join(line for line in done.stdout.splitlines() if line.startswith(("Building", "Manifest"))))


def lock_entries(lock: Path, names: tuple[str, ...]) -> str:
    """The entries (pin and hashes) of these packages in a uv lock, as a requirements file."""
    wanted = {re.sub(r"[-_.]+", "-", n).lower() for n in names}
    entries, keep = [], False
    for line in lock.read_text().splitlines():
        if line and not line.startswith((" ", "#")):
            keep = re.sub(r"[-_.]+", "-", re.split(r"[\[=; ]", line, maxsplit=1)[0]).lower() in wanted
        if keep and not line.lstrip().startswith("#"):
            entries.append(line)
    return "\n".join(entries) + "\n"


def install_runtime(python: str) -> Path:
    """boto3 and the rest of what the runtime provides, pinned and hashed as in the layer's lock."""
    requirements = lock_entries(LAYER_LOCK, RUNTIME_PACKAGES)
    key = hashlib.sha256(requirements.encode()).hexdigest()[:16]
    target = BUILD_DIR / f"runtime-{key}"
    if not (target / ".complete").exists():
        shutil.rmtree(target, ignore_errors=True)
        requirements_file = BUILD_DIR / "runtime-requirements.txt"
        requirements_file.write_text(requirements)
        subprocess.run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
                        "--root-user-action", "ignore",
                        "--only-binary", ":all:", "--require-hashes", "--target", str(target),
                        "-r", str(requirements_file)], check=True)
        (target / ".complete").touch()
    for stale in BUILD_DIR.glob("runtime-*"):
        if stale.is_dir() and stale != target:
            shutil.rmtree(stale)
    return target


def layer_paths(built: dict[str, Any], layer: Any, runtime: str) -> list[Path]:
    """Where Lambda puts a layer's Python packages on sys.path (the layer is unpacked into /opt)."""
    if not (isinstance(layer, dict) and "Ref" in layer):
        raise SystemExit(f"package check: layer {layer!r} is not a layer of this template")
    root = BUILD_DIR / "sam" / built["Resources"][layer["Ref"]]["Properties"]["ContentUri"]
    version = runtime.removeprefix("python")
    return [p for p in (root / "python" / "lib" / f"python{version}" / "site-packages", root / "python")
            if p.is_dir()]


def write_manifest(python: str, runtime_dir: Path, zip_functions: list[str]) -> dict[str, Any]:
    built = load_template(BUILD_DIR / "sam" / "template.yaml")
    globals_fn = built.get("Globals", {}).get("Function", {})
    manifest: dict[str, Any] = {"sources": source_fingerprint(), "python": python,
                                "runtime_dir": str(runtime_dir), "functions": {}}
    for logical_id in zip_functions:
        props = built["Resources"][logical_id]["Properties"]
        runtime = runtime_of(built, logical_id)
        layers = [*globals_fn.get("Layers", []), *props.get("Layers", [])]
        manifest["functions"][logical_id] = {
            "runtime": runtime,
            "handler": props["Handler"],
            "path": [str(BUILD_DIR / "sam" / props["CodeUri"]),
                     *(str(p) for layer in layers for p in layer_paths(built, layer, runtime)),
                     str(runtime_dir)],
        }
    MANIFEST.write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sam", default="sam", help="the SAM CLI (make package passes the pinned one)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    template = load_template(TEMPLATE)
    zip_functions, image_functions = functions(template)
    runtimes = {runtime_of(template, f) for f in zip_functions}
    if len(runtimes) != 1:
        raise SystemExit(f"package check: the zip functions run on several runtimes {sorted(runtimes)}")
    (runtime,) = runtimes
    python = find_python(runtime.removeprefix("python"))
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    MANIFEST.unlink(missing_ok=True)
    sam_build(args.sam, python, image_functions)
    runtime_dir = install_runtime(python)
    write_manifest(python, runtime_dir, zip_functions)
    print(f"package check: built {', '.join(zip_functions)} with their layers for {runtime} ({python}), "
          f"left out the image functions {', '.join(image_functions)}; {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
