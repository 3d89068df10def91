"""The hashed locks (locks/*.txt) still match their one source, pyproject.toml pinned by constraints.txt, and
every install uses them: checked offline. A failure here means: run `make lock` (it needs PyPI) and commit."""

from __future__ import annotations

import re
import tomllib

import pytest
from packaging.requirements import Requirement

from tests.package import locks
from tests.package.locks import LockEntry, LockSpec, normalize, read_lock

SPECS = locks.specs()
REMEDY = "run `make lock` and commit locks/ and layers/dependencies/requirements.txt"


def constraints() -> dict[str, str]:
    pins = {}
    for line in locks.CONSTRAINTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins[normalize(name)] = version
    return pins


def entries(spec: LockSpec) -> list[LockEntry]:
    assert spec.path.exists(), f"{spec.path.name} is missing: {REMEDY}"
    return read_lock(spec.path)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_each_lock_says_what_it_was_made_from_and_for(spec: LockSpec) -> None:
    header = spec.path.read_text().splitlines()[:3]
    assert header[1].strip() == "#    make lock".strip(), f"{spec.path.name} was not made by `make lock`"
    assert header[2] == spec.describe(), f"{spec.path.name} was made for other sources or targets: {REMEDY}"


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_every_entry_is_pinned_and_hashed(spec: LockSpec) -> None:
    found = entries(spec)  # read_lock refuses a line that is not `name==version` or its hashes and notes
    assert found
    assert [e.name for e in found if not e.hashes] == []


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_every_direct_requirement_is_locked_within_its_specifier(spec: LockSpec) -> None:
    found = entries(spec)
    for text in locks.direct_requirements(spec):
        requirement = Requirement(text)
        locked = [e for e in found if e.name == normalize(requirement.name)]
        assert locked, f"{requirement.name} ({text}) is not in {spec.path.name}: {REMEDY}"
        for entry in locked:
            assert requirement.specifier.contains(entry.version, prereleases=True), \
                f"{spec.path.name} locks {entry.name}=={entry.version}, pyproject.toml asks {text}: {REMEDY}"
            assert set(requirement.extras) <= set(entry.extras), \
                f"{spec.path.name} locks {entry.name} without the extras {sorted(requirement.extras)}: {REMEDY}"


@pytest.mark.parametrize("spec", [s for s in SPECS if s.constrained], ids=lambda s: s.name)
def test_locks_pin_what_constraints_pins(spec: LockSpec) -> None:
    pins = constraints()
    direct = {normalize(Requirement(r).name) for r in locks.direct_requirements(spec)}
    assert sorted(direct - set(pins)) == [], "constraints.txt must pin every direct requirement"
    drifted = [f"{e.name}: {e.version} locked, {pins[e.name]} in constraints.txt" for e in entries(spec)
               if e.name in pins and pins[e.name] != e.version]
    assert drifted == [], f"{spec.path.name} is stale ({REMEDY}): {drifted}"


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_nothing_is_locked_that_nothing_requires(spec: LockSpec) -> None:
    """uv notes why each package is there; a package dropped from pyproject.toml leaves one with no reason."""
    found = entries(spec)
    direct = {normalize(Requirement(r).name) for r in locks.direct_requirements(spec)}
    names = {e.name for e in found}
    orphans = [e.name for e in found if e.name not in direct
               and not any(normalize(re.sub(r"\[.*\]", "", via)) in names for via in e.via)]
    assert orphans == [], f"{spec.path.name} holds packages nothing requires ({REMEDY}): {orphans}"


def test_the_layer_requirements_are_the_layer_lock() -> None:
    assert locks.LAYER_REQUIREMENTS.read_text() == (locks.LOCKS_DIR / "layer.txt").read_text(), \
        f"layers/dependencies/requirements.txt differs from locks/layer.txt: {REMEDY}"


def test_the_build_backend_is_pinned() -> None:
    pyproject = tomllib.loads(locks.PYPROJECT.read_text())
    pins = constraints()
    for text in pyproject["build-system"]["requires"]:
        requirement = Requirement(text)
        (specifier,) = requirement.specifier
        assert specifier.operator == "==", f"build-system requires {text}: pin it with =="
        assert pins.get(normalize(requirement.name)) == specifier.version, \
            f"build-system requires {text}, constraints.txt pins {pins.get(normalize(requirement.name))}"


def pip_installs(text: str) -> list[str]:
    joined = re.sub(r"\\\n\s*", " ", text)
    return [m.group(0) for m in re.finditer(r"pip install[^&;\n]*", joined)]


def test_the_training_image_installs_only_from_its_hashed_locks() -> None:
    installs = pip_installs(locks.DOCKERFILE.read_text())
    assert any("--require-hashes -r /build/locks/tools.txt" in i for i in installs), installs
    assert any("--require-hashes -r /build/locks/training.txt" in i for i in installs), installs
    loose = [i for i in installs if "--require-hashes" not in i and "--no-deps" not in i]
    assert loose == [], "every other install in the image must be --no-deps (the package itself)"


def test_make_install_installs_only_from_the_hashed_locks() -> None:
    makefile = (locks.REPO_ROOT / "Makefile").read_text()
    installs = pip_installs(makefile)
    assert any("--require-hashes -r locks/dev.txt" in i for i in installs), installs
    loose = [i for i in installs if "--require-hashes" not in i and "--no-deps" not in i]
    assert loose == [], f"installs that are neither hashed nor --no-deps: {loose}"


def test_the_training_base_image_is_pinned_by_digest() -> None:
    image = locks.BASE_IMAGE.search(locks.DOCKERFILE.read_text())
    assert image is not None
    assert re.search(r"@sha256:[0-9a-f]{64}$", image.group(0))
