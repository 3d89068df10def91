"""What a cold import of the handlers loads: the X-Ray SDK only where tracing is on, Powertools' OpenAPI models
only for the routes that serve documentation, and for the API none of Powertools' validation machinery or
idempotency utility, nor the training job's modules. Each case is a fresh interpreter (the tracer is created at
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


# What a request of the API does not need at import (handlers/resolver.py, handlers/http_errors.py): Powertools'
# request validation and OpenAPI generation, its idempotency utility (set up on the first keyed POST /train),
# and the training job's and reconciliation's modules (retrain_runs needs neither).
NOT_ON_THE_API_PATH = (
    "aws_lambda_powertools.event_handler.openapi.params",
    "aws_lambda_powertools.event_handler.openapi.compat",
    "aws_lambda_powertools.event_handler.openapi.dependant",
    "aws_lambda_powertools.event_handler.middlewares.openapi_validation",
    "aws_lambda_powertools.event_handler.openapi.models",
    "aws_lambda_powertools.utilities.idempotency",
    "modelforge.logic.training_job",
    "modelforge.logic.reconcile",
    "aws_xray_sdk.core",
)
HEAVY_PROBE = """
import json, sys
import modelforge.handlers.api
print(json.dumps(sorted(m for m in {names!r} if m in sys.modules)))
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


def test_a_cold_api_import_loads_no_validation_idempotency_or_training_machinery() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "LAMBDA_", "AWS_SAM"))}
    env.update({"PYTHONPATH": f"{ROOT / 'functions'}{os.pathsep}{ROOT}", "AWS_DEFAULT_REGION": "us-east-1"})
    out = subprocess.run([sys.executable, "-c", HEAVY_PROBE.format(names=NOT_ON_THE_API_PATH)], env=env,
                         check=True, capture_output=True, text=True).stdout
    assert json.loads(out.strip().splitlines()[-1]) == []


def test_the_openapi_document_still_comes_from_powertools_validating_resolver() -> None:
    """Generated on first demand (the routes' markers become Powertools' own): every route with its parameters."""
    from modelforge.handlers import api

    document = api.openapi_document()
    jobs = document["paths"]["/jobs"]["get"]
    assert {p["name"]: p["in"] for p in jobs["parameters"]} == {
        "machine_name": "query", "status": "query", "limit": "query", "next_token": "query"}
    limit = next(p for p in jobs["parameters"] if p["name"] == "limit")
    assert (limit["schema"]["minimum"], limit["schema"]["maximum"]) == (1, 100)
    train = document["paths"]["/train"]["post"]
    assert [p["name"] for p in train["parameters"]] == ["idempotency-key"]
    assert train["parameters"][0]["in"] == "header"
    assert "422" in train["responses"]
