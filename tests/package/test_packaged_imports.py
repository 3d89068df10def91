"""What deploys is what was tested: each zip function's handler imports from its package as ``sam build`` made it.

``make package`` (tests/package/build.py) builds the zip functions and their layer with the pinned SAM CLI into
build/package; ``make test`` and ``make package-check`` build first. Each handler is then imported by the Lambda
runtime's Python version in a fresh interpreter (``-I -S``: no environment variables, no site-packages, nothing
of the development virtualenv) whose sys.path is exactly what Lambda's would be: the function's code, its layers'
python/ and the runtime's own boto3. A package missing from the layer's requirements fails here, not after
``sam deploy``.

Without a build (plain ``pytest``) these tests skip; on CI (``$CI`` set) they fail instead.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from localcloud.template import load_template, resolve_stack
from tests.package import build
from tests.package.locks import read_lock

ZIP_FUNCTIONS, _ = build.functions(load_template(build.TEMPLATE))

# Run as `python -I -S -c PROBE PATHS_JSON HANDLER`: imports the handler and reports where every module came from.
PROBE = r"""
import importlib, json, sys, sysconfig, traceback
paths, handler = json.loads(sys.argv[1]), sys.argv[2]
sys.path[:0] = paths
module_name, _, attribute = handler.rpartition(".")
result = {}
try:
    result["callable"] = callable(getattr(importlib.import_module(module_name), attribute))
except BaseException:
    result["error"] = traceback.format_exc()
allowed = (*paths, sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"])
files = {getattr(m, "__file__", None) for m in list(sys.modules.values())}
result["outside"] = sorted(f for f in files if f and not f.startswith(allowed))
result["site"] = "site" in sys.modules
print(json.dumps(result))
"""


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    def unusable(reason: str) -> None:
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (make test builds it first)")
        pytest.skip(f"{reason}: run `make package` (or `make package-check`)")

    if not build.MANIFEST.exists():
        unusable("no package build in build/package")
    made: dict[str, Any] = json.loads(build.MANIFEST.read_text())
    if made.get("sources") != build.source_fingerprint():
        unusable("build/package was built from other sources than the work tree's")
    return made


def lambda_environment(logical_id: str, function: dict[str, Any]) -> dict[str, str]:
    """What Lambda sets for this function: the template's variables and the runtime's own."""
    spec = resolve_stack().functions[logical_id]
    return {
        **spec.environment,
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "TZ": ":UTC",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{function['runtime']}",
        "AWS_LAMBDA_FUNCTION_NAME": spec.name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "LAMBDA_TASK_ROOT": function["path"][0],
        "_HANDLER": function["handler"],
    }


def probe(python: str, paths: list[str], handler: str, env: dict[str, str], cwd: Path) -> dict[str, Any]:
    done = subprocess.run([python, "-I", "-S", "-c", PROBE, json.dumps(paths), handler],
                          env=env, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_every_zip_function_of_the_template_is_built(manifest: dict[str, Any]) -> None:
    assert ZIP_FUNCTIONS, "template.yaml declares no zip function"
    assert sorted(manifest["functions"]) == ZIP_FUNCTIONS


@pytest.mark.parametrize("logical_id", ZIP_FUNCTIONS)
def test_the_handler_imports_from_the_package_alone(manifest: dict[str, Any], logical_id: str,
                                                    tmp_path: Path) -> None:
    function = manifest["functions"][logical_id]
    result = probe(manifest["python"], function["path"], function["handler"],
                   lambda_environment(logical_id, function), tmp_path)
    assert "error" not in result, f"{logical_id}: {function['handler']} does not import as packaged:\n" \
                                  f"{result['error']}"
    assert result["callable"], f"{function['handler']} is not callable"
    assert not result["site"] and not result["outside"], f"modules from outside the package: {result['outside']}"


def dist_infos(directory: Path) -> dict[str, str]:
    found = {}
    for info in directory.glob("*.dist-info"):
        name, version = info.name.removesuffix(".dist-info").rsplit("-", 1)
        found[re.sub(r"[-_.]+", "-", name).lower()] = version
    return found


def test_the_built_layer_holds_exactly_its_lock(manifest: dict[str, Any]) -> None:
    layers = {Path(p) for f in manifest["functions"].values() for p in f["path"][1:-1]}
    locked = {entry.name: entry.version for entry in read_lock(build.LAYER_LOCK)}
    for layer in layers:
        assert dist_infos(layer) == locked, f"{layer} is not what locks/layer.txt pins"


def test_a_package_missing_from_the_layer_fails_the_check(manifest: dict[str, Any], tmp_path: Path) -> None:
    """The check itself: the same layer without pydantic must not import, so nothing else supplies it."""
    logical_id = "ApiFunction" if "ApiFunction" in ZIP_FUNCTIONS else ZIP_FUNCTIONS[0]
    function = manifest["functions"][logical_id]
    layer = Path(function["path"][1])
    partial = tmp_path / "layer"
    partial.mkdir()
    for entry in layer.iterdir():
        if not re.match(r"pydantic(-|$)", entry.name):
            (partial / entry.name).symlink_to(entry)
    paths = [function["path"][0], str(partial), *function["path"][2:]]
    result = probe(manifest["python"], paths, function["handler"], lambda_environment(logical_id, function),
                   tmp_path)
    assert "No module named 'pydantic'" in result.get("error", ""), result
