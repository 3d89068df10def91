"""Every error the HTTP functions map to a status leaves exactly one log line (handlers/http_errors.py), at the
level it deserves, naming the job or model from the route, never a value from the body.

The real API and predict apps are resolved with stand-ins for their services, so no AWS (not even moto) is
involved; the lines are read from the shared Powertools logger's own handler, as CloudWatch would get them."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError

from modelforge.domain.compute import ComputeConfig
from modelforge.errors import (
    ArtifactIntegrityError,
    ExecutionStartError,
    JobNotFoundError,
    NoChampionError,
    PromotionConflictError,
)
from modelforge.handlers import api, predict
from modelforge.handlers.http_errors import resolve_json
from modelforge.logic import jobs_api
from modelforge.logic.predict import ChampionCache
from modelforge.observability import logger
from modelforge.registry import ModelName, ModelVersion, VersionStatus

JOB_ID = "3f2b8c1e-9a4d-4e6f-8b7a-1c2d3e4f5a6b"  # the canonical get_status event's
MACHINE = "MOTOBOMBA-007"
VERSION = "20250601T120000Z-0123abcd"
SECRET_REASON = "rollback-reason-that-must-not-be-logged"


@pytest.fixture
def log_lines() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """The JSON lines the shared logger writes while a test runs (Powertools logs to stdout, one JSON object a
    line, from a handler it made at import time, so it is pointed at a buffer here)."""
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    previous_stream, previous_level = handler.setStream(buffer), logger.log_level
    logger.setLevel(logging.INFO)
    try:
        yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]
    finally:
        handler.setStream(previous_stream)
        logger.setLevel(previous_level)


def raiser(error: Exception) -> Callable[..., Any]:
    def fail(*_: Any, **__: Any) -> Any:
        raise error

    return fail


def services(**overrides: Any) -> SimpleNamespace:
    """Stand-ins for api.Services: every store fails the test unless a test says what it does."""
    unexpected = raiser(AssertionError("the route used a service the test did not set up"))
    stub = SimpleNamespace(get=unexpected, get_version=unexpected, promote=unexpected, get_verified=unexpected,
                           champion_pointer=unexpected)
    base: dict[str, Any] = {name: stub for name in ("jobs", "registry", "artifacts", "catalog", "executions")}
    base["submit_once"] = unexpected
    base["settings"] = SimpleNamespace(max_jobs_in_flight=None, compute_config=ComputeConfig)  # Batch off
    base["history"] = None  # GET /status without the execution's steps
    return SimpleNamespace(**{**base, **overrides})


def call_api(event: dict[str, Any], lambda_context: Any, **stubs: Any) -> dict[str, Any]:
    api.app.append_context(services=services(**stubs))
    return resolve_json(api.app, event, lambda_context)


def body_of(response: dict[str, Any]) -> Any:
    return json.loads(response["body"])


def promote_event(load_event: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
    event = load_event("post_train")
    path = f"/models/{MACHINE}/status/promote"
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["routeKey"] = event["requestContext"]["routeKey"] = "POST /models/{machine_name}/{indicator}/promote"
    event["pathParameters"] = {"machine_name": MACHINE, "indicator": "status"}
    event["body"] = json.dumps({"version": VERSION, "reason": SECRET_REASON})
    event["headers"]["content-length"] = str(len(event["body"]))
    return event


def the_one_line(lines: list[dict[str, Any]]) -> dict[str, Any]:
    responses = [line for line in lines if str(line.get("message", "")).startswith("HTTP ")]
    assert len(responses) == 1, lines
    return responses[0]


# ---------------------------------------------------------------- 404: INFO, naming the job or model


def test_an_unknown_job_is_logged_at_info_with_its_process_id(
    log_lines: Callable[[], list[dict[str, Any]]], load_event: Callable[[str], dict[str, Any]], lambda_context: Any
) -> None:
    jobs = SimpleNamespace(get=raiser(JobNotFoundError(f"no job with process_id {JOB_ID}")))
    response = call_api(load_event("get_status"), lambda_context, jobs=jobs)

    assert response["statusCode"] == 404
    line = the_one_line(log_lines())
    assert line["level"] == "INFO"
    assert line["message"] == "HTTP 404 Not Found"
    assert {k: line[k] for k in ("status_code", "error_type", "method", "route", "process_id")} == {
        "status_code": 404, "error_type": "JobNotFoundError", "method": "GET",
        "route": "GET /status/{process_id}", "process_id": JOB_ID}
    assert "exception" not in line
    assert "model_name" not in line


def test_a_predict_without_champion_is_logged_without_the_bodys_machine_name(
    log_lines: Callable[[], list[dict[str, Any]]], load_event: Callable[[str], dict[str, Any]], lambda_context: Any
) -> None:
    event = load_event("post_train")
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/predict"
    event["routeKey"] = event["requestContext"]["routeKey"] = "POST /predict"
    event["body"] = json.dumps({"machine_name": MACHINE, "indicator": "status", "records": [{"Eng_RPM": 1750.0}]})
    cache = ChampionCache(SimpleNamespace(champion_pointer=lambda name: None), services().artifacts, 60)
    predict.app.append_context(cache=cache)

    response = resolve_json(predict.app, event, lambda_context)

    assert response["statusCode"] == 404
    line = the_one_line(log_lines())
    assert (line["level"], line["status_code"], line["error_type"], line["route"]) == (
        "INFO", 404, NoChampionError.__name__, "POST /predict")
    # The model is named in the body only, and body values are never logged.
    assert MACHINE not in json.dumps(line)
    assert not {"machine_name", "indicator", "model_name"} & set(line)


# ---------------------------------------------------------------- 422 and 415: INFO, where, not what


def test_an_invalid_body_is_logged_at_info_with_the_fields_not_the_values(
    log_lines: Callable[[], list[dict[str, Any]]], load_event: Callable[[str], dict[str, Any]], lambda_context: Any
) -> None:
    event = load_event("post_train")
    event["body"] = json.dumps({"machine_name": "MOTOBOMBA-007", "indicator": "not-an-indicator-xyz"})

    response = call_api(event, lambda_context)

    assert response["statusCode"] == 422
    line = the_one_line(log_lines())
    assert (line["level"], line["status_code"], line["error_type"]) == ("INFO", 422, "RequestValidationError")
    assert line["fields"] == ["body.indicator"]
    assert line["route"] == "POST /train"
    assert "not-an-indicator-xyz" not in json.dumps(line)


def test_a_bad_record_is_logged_by_its_field_never_by_its_keys(
    log_lines: Callable[[], list[dict[str, Any]]], load_event: Callable[[str], dict[str, Any]], lambda_context: Any
) -> None:
    client_key = "sensor-" + "x" * 200  # longer than a record key may be
    event = load_event("post_train")
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/predict"
    event["routeKey"] = event["requestContext"]["routeKey"] = "POST /predict"
    event["body"] = json.dumps({"machine_name": MACHINE, "indicator": "status", "records": [{client_key: 1.0}]})

    response = resolve_json(predict.app, event, lambda_context)

    assert response["statusCode"] == 422
    line = the_one_line(log_lines())
    assert (line["level"], line["fields"], line["route"]) == ("INFO", ["body.records"], "POST /predict")
    assert client_key[:20] not in json.dumps(line)


def test_a_malformed_path_id_is_logged_with_where_it_is(
    log_lines: Callable[[], list[dict[str, Any]]], load_event: Callable[[str], dict[str, Any]], lambda_context: Any
) -> None:
    event = load_event("get_status")
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/status/not-a-uuid"
    event["pathParameters"] = {"process_id": "not-a-uuid"}

    response = call_api(event, lambda_context)

    assert response["statusCode"] == 422
    line = the_one_line(log_lines())
    assert (line["level"], line["fields"], line["process_id"]) == ("INFO", ["path.process_id"], "not-a-uuid")


def test_a_body_that_is_not_json_is_logged_at_info(
    log_lines: Callable[[], list[dict[str, Any]]], load_event: Callable[[str], dict[str, Any]], lambda_context: Any
) -> None:
    event = load_event("post_train")
    event["headers"]["content-type"] = "text/plain"
    event["body"] = "machine_name=MOTOBOMBA-007"

    response = call_api(event, lambda_context)

    assert response["statusCode"] == 415
    line = the_one_line(log_lines())
    assert (line["level"], line["status_code"], line["error_type"], line["fields"]) == (
        "INFO", 415, "UnsupportedMediaType", ["header.content-type"])
    assert "MOTOBOMBA-007" not in json.dumps(line)


# ---------------------------------------------------------------- 409: WARNING (ERROR for a corrupt model)


def stored_version(name: ModelName, version: str) -> ModelVersion:
    """A former champion: promoting it is a rollback, which needs no override."""
    return ModelVersion(model_name=name, version=version, machine_name=name.machine_name,
                        indicator=name.indicator, artifact_uri="s3://models/m.ubj", artifact_sha256="0" * 64,
                        status=VersionStatus.ARCHIVED)


def test_a_promotion_conflict_is_logged_as_a_warning_naming_the_model(
    log_lines: Callable[[], list[dict[str, Any]]], load_event: Callable[[str], dict[str, Any]], lambda_context: Any
) -> None:
    registry = SimpleNamespace(
        get_version=lambda name, version: stored_version(name, version),
        promote=raiser(PromotionConflictError(f"the champion of {MACHINE}#status changed while promoting")))
    artifacts = SimpleNamespace(get_verified=lambda uri, sha, version_id=None: b"model")

    response = call_api(promote_event(load_event), lambda_context, registry=registry, artifacts=artifacts)

    assert response["statusCode"] == 409
    line = the_one_line(log_lines())
    assert line["level"] == "WARNING"
    assert {k: line[k] for k in ("status_code", "error_type", "machine_name", "indicator", "model_name")} == {
        "status_code": 409, "error_type": "PromotionConflictError", "machine_name": MACHINE,
        "indicator": "status", "model_name": f"{MACHINE}#status"}
    assert line["route"] == "POST /models/{machine_name}/{indicator}/promote"
    assert SECRET_REASON not in json.dumps(line)
    assert VERSION not in json.dumps(line)


def test_a_model_that_fails_its_checksum_is_logged_as_an_error_with_the_exception(
    log_lines: Callable[[], list[dict[str, Any]]], load_event: Callable[[str], dict[str, Any]], lambda_context: Any
) -> None:
    registry = SimpleNamespace(
        get_version=lambda name, version: stored_version(name, version))
    artifacts = SimpleNamespace(get_verified=raiser(ArtifactIntegrityError("s3://models/m.ubj: sha256 mismatch")))

    response = call_api(promote_event(load_event), lambda_context, registry=registry, artifacts=artifacts)

    assert response["statusCode"] == 409
    line = the_one_line(log_lines())
    assert (line["level"], line["status_code"], line["error_type"], line["model_name"]) == (
        "ERROR", 409, "ArtifactIntegrityError", f"{MACHINE}#status")
    assert line["exception_name"] == "ArtifactIntegrityError"
    assert "sha256 mismatch" in line["exception"]
    assert SECRET_REASON not in json.dumps(line)


def test_a_key_still_in_flight_is_logged_as_a_warning(
    log_lines: Callable[[], list[dict[str, Any]]], load_event: Callable[[str], dict[str, Any]], lambda_context: Any
) -> None:
    event = load_event("post_train")
    event["headers"]["idempotency-key"] = "client-key-123"

    response = call_api(event, lambda_context, submit_once=raiser(IdempotencyAlreadyInProgressError("busy")))

    assert response["statusCode"] == 409
    line = the_one_line(log_lines())
    assert (line["level"], line["status_code"], line["error_type"]) == (
        "WARNING", 409, "IdempotencyAlreadyInProgressError")
    assert "client-key-123" not in json.dumps(line)


# ---------------------------------------------------------------- 429: WARNING


def test_too_many_jobs_in_flight_is_logged_once_as_a_warning(
    log_lines: Callable[[], list[dict[str, Any]]], load_event: Callable[[str], dict[str, Any]], lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from modelforge.errors import TooManyJobsError

    monkeypatch.setattr(jobs_api, "submit_training", raiser(TooManyJobsError(8, 8, 60)))

    response = call_api(load_event("post_train"), lambda_context)

    assert (response["statusCode"], response["headers"]["Retry-After"]) == (429, "60")
    line = the_one_line(log_lines())
    assert (line["level"], line["message"], line["status_code"], line["error_type"], line["route"]) == (
        "WARNING", "HTTP 429 Too Many Requests", 429, "TooManyJobsError", "POST /train")
    assert "exception" not in line


# ---------------------------------------------------------------- 503: ERROR with the exception


def test_an_execution_that_cannot_start_is_logged_as_an_error_with_the_exception(
    log_lines: Callable[[], list[dict[str, Any]]], load_event: Callable[[str], dict[str, Any]], lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(jobs_api, "submit_training", raiser(ExecutionStartError(f"job {JOB_ID} failed: throttled")))

    response = call_api(load_event("post_train"), lambda_context)

    assert response["statusCode"] == 503
    line = the_one_line(log_lines())
    assert (line["level"], line["message"], line["status_code"], line["error_type"], line["route"]) == (
        "ERROR", "HTTP 503 Service Unavailable", 503, "ExecutionStartError", "POST /train")
    assert line["exception_name"] == "ExecutionStartError"
    assert "throttled" in line["exception"]
