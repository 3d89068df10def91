"""Promises that hold for the code itself: no credentials in tracked files, no model ever unpickled."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Long-term keys start AKIA, temporary ones ASIA; the only ones allowed are AWS's documented examples.
ACCESS_KEY = re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b")
EXAMPLE_KEY = re.compile(r"(EXAMPLE|XAMPLE)")
SECRET_ASSIGNMENT = re.compile(r"aws_secret_access_key\s*[=:]\s*['\"]?([A-Za-z0-9/+]{40})", re.IGNORECASE)
UNPICKLING = re.compile(r"\b(pickle|cPickle|joblib|cloudpickle|dill)\.(load|loads)\(|\bjoblib\.load\(")


def _tracked_text_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True)
    files = [ROOT / name for name in listed.stdout.splitlines()]
    return [f for f in files if f.is_file() and f.suffix in {".py", ".yaml", ".yml", ".json", ".toml", ".md", ".txt",
                                                             ".cfg", ".ini", ".sh", ""}]


def test_no_aws_credentials_are_committed() -> None:
    findings = []
    for path in _tracked_text_files():
        text = path.read_text(errors="ignore")
        findings += [f"{path.relative_to(ROOT)}: {m.group(0)}" for m in ACCESS_KEY.finditer(text)
                     if not EXAMPLE_KEY.search(m.group(0))]
        findings += [f"{path.relative_to(ROOT)}: secret" for m in SECRET_ASSIGNMENT.finditer(text)]
    assert findings == []


def test_nothing_is_unpickled_outside_tests() -> None:
    offenders = [str(p.relative_to(ROOT)) for p in _tracked_text_files()
                 if p.suffix == ".py" and "tests" not in p.parts and UNPICKLING.search(p.read_text())]
    assert offenders == []


def test_the_scanners_find_what_they_look_for() -> None:
    assert ACCESS_KEY.search("AKIA" + "ABCDEFGHIJKLMNOP")
    assert UNPICKLING.search("model = pickle." + "loads(blob)")
    assert not UNPICKLING.search("booster.load_model(bytearray(data))")


def _deployed_paths() -> set[Path]:
    """What `sam build` ships: the zip functions' CodeUri and layers' ContentUri, and what the functions' image
    Dockerfile COPYs from its context."""
    from localcloud.template import load_template

    deployed: set[Path] = set()
    for resource in load_template()["Resources"].values():
        properties = resource.get("Properties") or {}
        for key in ("CodeUri", "ContentUri"):
            if isinstance(properties.get(key), str):
                deployed.add(ROOT / properties[key])
        metadata = resource.get("Metadata") or {}
        if "Dockerfile" in metadata:
            context = ROOT / metadata.get("DockerContext", ".")
            for line in (context / metadata["Dockerfile"]).read_text().splitlines():
                if line.split(maxsplit=1)[:1] == ["COPY"]:
                    deployed.update(context / source for source in line.split()[1:-1])
    assert deployed
    return deployed


def test_the_demo_generator_and_the_local_cloud_are_not_deployed() -> None:
    files = {f for path in _deployed_paths() for f in ([path] if path.is_file() else path.rglob("*"))}
    python = [f for f in files if f.suffix == ".py"]

    assert python
    assert [f for f in files if f.name == "demo_data.py" or "localcloud" in f.relative_to(ROOT).parts] == []
    assert [str(f.relative_to(ROOT)) for f in python
            if re.search(r"^\s*(from|import)\s+localcloud\b", f.read_text(), re.MULTILINE)] == []


def _exception_classes_outside_errors(package: Path) -> list[str]:
    """Classes deriving from a name ending in Error/Exception, defined anywhere in the package but errors.py."""
    import ast

    found = []
    for path in sorted(package.rglob("*.py")):
        if path.name == "errors.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and any(
                    (getattr(base, "id", None) or getattr(base, "attr", "")).endswith(("Error", "Exception"))
                    for base in node.bases):
                found.append(f"{path.relative_to(package)}:{node.name}")
    return found


def test_errors_are_defined_in_errors_py_only(tmp_path: Path) -> None:
    """One module names every error, so the HTTP mapping and the state machine's ErrorEquals have one place to
    look; and the check itself notices a stray error class."""
    assert _exception_classes_outside_errors(ROOT / "functions" / "modelforge") == []
    (tmp_path / "stray.py").write_text("class StrayError(ValueError):\n    pass\n")
    assert _exception_classes_outside_errors(tmp_path) == ["stray.py:StrayError"]
