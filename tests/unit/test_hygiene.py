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
