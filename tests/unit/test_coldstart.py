"""What a cold import of the handlers loads: the X-Ray SDK only where tracing is on, Powertools' OpenAPI models
only for the routes that serve documentation. Each case is a fresh interpreter (the tracer is created at
import). Timings are in benchmarks/coldstart.py, not here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import json, sys
import {module} as imported
from modelforge.observability import tracer
print(json.dumps({{"xray": "aws_xray_sdk.core" in sys.modules, "disabled": bool(tracer.disabled),
                  "provider": type(tracer.provider).__name__,
                  "openapi_models": "aws_lambda_powertools.event_handler.openapi.models" in sys.modules}}))
"""
LAZY_PROBE = """
import json
import modelforge.handlers.api
from modelforge import jobs, registry, schemas
models = [schemas.TrainRequest, schemas.ChampionResponse, schemas.PredictRequest, jobs.Job, registry.ModelVersion]
print(json.dumps({"built": [m.__name__ for m in models if m.__pydantic_complete__]}))
"""


def probe(module: str, **environment: str) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "LAMBDA_", "AWS_SAM"))}
    env.update({"PYTHONPATH": f"{ROOT / 'functions'}{os.pathsep}{ROOT}", "AWS_DEFAULT_REGION": "us-east-1",
                **environment})
    out = subprocess.run([sys.executable, "-c", PROBE.format(module=module)], env=env, check=True,
                         capture_output=True, text=True).stdout
    result: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize("module", ["modelforge.handlers.api", "modelforge.handlers.predict"])
def test_outside_lambda_tracing_is_off_without_the_xray_sdk(module: str) -> None:
    loaded = probe(module)
    assert loaded == {"xray": False, "disabled": True, "provider": "_NoTracing", "openapi_models": False}


def test_in_lambda_tracing_is_powertools_own_on_xray(tmp_path: Path) -> None:
    loaded = probe("modelforge.handlers.api", LAMBDA_TASK_ROOT=str(tmp_path), AWS_XRAY_CONTEXT_MISSING="IGNORE_ERROR")
    assert loaded["xray"] is True and loaded["disabled"] is False
    assert loaded["provider"] == "AsyncAWSXRayRecorder"


def test_in_lambda_with_tracing_disabled_the_sdk_stays_out(tmp_path: Path) -> None:
    loaded = probe("modelforge.handlers.api", LAMBDA_TASK_ROOT=str(tmp_path), POWERTOOLS_TRACE_DISABLED="true")
    assert loaded["xray"] is False and loaded["disabled"] is True


def test_the_no_op_tracer_still_runs_what_it_decorates() -> None:
    from modelforge.observability import tracer

    @tracer.capture_method
    def double(x: int) -> int:
        return 2 * x

    @tracer.capture_lambda_handler
    def handler(event: dict[str, int], context: object) -> int:
        return double(event["x"])

    assert handler({"x": 21}, None) == 42
    with pytest.raises(ZeroDivisionError):
        tracer.capture_method(lambda: 1 / 0)()


def test_a_cold_import_builds_no_model() -> None:
    """Each model's validator is built on its first use: a request uses two or three of the 30-odd."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "LAMBDA_", "AWS_SAM"))}
    env.update({"PYTHONPATH": f"{ROOT / 'functions'}{os.pathsep}{ROOT}", "AWS_DEFAULT_REGION": "us-east-1"})
    out = subprocess.run([sys.executable, "-c", LAZY_PROBE], env=env, check=True, capture_output=True,
                         text=True).stdout
    assert json.loads(out.strip().splitlines()[-1]) == {"built": []}


def test_a_deferred_model_validates_as_before() -> None:
    from pydantic import ValidationError

    from modelforge.schemas import TrainRequest

    with pytest.raises(ValidationError, match="machine_name"):
        TrainRequest.model_validate({"indicator": "status", "machine_name": "no spaces allowed"})
    assert TrainRequest.model_validate({"indicator": "status", "machine_name": "M-1"}).machine_name == "M-1"
