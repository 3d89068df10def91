"""Errors -> HTTP statuses, in one place, for every HTTP-facing function (the API and the predict function).

Each mapped error is logged once, here, as one line ``"HTTP <status> <phrase>"`` at the level it deserves:

* INFO: the client's mistake, nothing for us to do: 404, 415, 422 (with ``fields``, where in the request the
  problem is: ``body.start_date``, ``path.process_id``, ...; never a value);
* WARNING: 409 conflicts (a promotion raced another, a promotion of a rejected or undecided version without
  an override, an Idempotency-Key still in flight) and 429 (too many training jobs in flight, the cost
  guard), worth watching;
* ERROR with the exception: 503 (an execution could not be started) and a stored model that failed its
  checksum (``ArtifactIntegrityError``, a 409 to the client but corruption or tampering to an operator).

Every line carries ``status_code``, ``error_type`` (the class name), ``method``, ``route`` (API Gateway's route
key) and, when the path names them, ``process_id``, ``machine_name``, ``indicator`` and ``model_name``, all
taken from the current event's route and path parameters, never from the body or the query string.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

from modelforge.errors import (
    ArtifactIntegrityError,
    ExecutionStartError,
    InvalidRequestError,
    JobNotFoundError,
    ModelNotFoundError,
    NoChampionError,
    OverrideRequiredError,
    PromotionConflictError,
    TooManyJobsError,
    TriggerNotFoundError,
)
from modelforge.handlers.resolver import lazy_exception_handlers
from modelforge.observability import logger
from modelforge.schemas import ErrorResponse

# The path parameters a log line may name (whatever else a path holds is left out), and how much of each.
LOGGED_PATH_PARAMETERS = ("process_id", "machine_name", "indicator")
MAX_LOGGED_LENGTH = 128
MAX_LOGGED_FIELDS = 10
# Powertools' idempotency errors, mapped by name: importing them imports the whole utility, which only a keyed
# POST /train loads (handlers/api.py: KeyedSubmitter), and none of them can be raised before it is loaded.
IDEMPOTENCY_ERRORS = "aws_lambda_powertools.utilities.idempotency.exceptions"
_LOG_AT = {logging.INFO: logger.info, logging.WARNING: logger.warning, logging.ERROR: logger.error}


def error_response(status: HTTPStatus, detail: Any) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON,
                    body={"statusCode": status.value, "detail": detail})


def request_fields(event: Mapping[str, Any]) -> dict[str, Any]:
    """What a log line says about the request (an API Gateway HTTP API v2 event): its method, route and the ids
    in its path."""
    http = (event.get("requestContext") or {}).get("http") or {}
    parameters = event.get("pathParameters") or {}
    fields: dict[str, Any] = {"method": http.get("method"), "route": event.get("routeKey")}
    ids = {name: str(parameters[name])[:MAX_LOGGED_LENGTH] for name in LOGGED_PATH_PARAMETERS if parameters.get(name)}
    if "machine_name" in ids and "indicator" in ids:
        ids["model_name"] = f"{ids['machine_name']}#{ids['indicator']}"  # as logged, not validated: a path may be bad
    return {**fields, **ids}


def log_error_response(level: int, status: HTTPStatus, error_type: str, event: Mapping[str, Any], *,
                       fields: list[str] | None = None, exception: BaseException | None = None) -> None:
    extra: dict[str, Any] = {"status_code": status.value, "error_type": error_type, **request_fields(event)}
    if fields:
        extra["fields"] = fields[:MAX_LOGGED_FIELDS]
    _LOG_AT[level](f"HTTP {status.value} {status.phrase}", exc_info=exception, extra=extra)


def _location(loc: Any) -> str:
    """``body.records``, ``query.limit``: the part of the request and its top-level field, nothing deeper (a
    record's keys are the client's data)."""
    return ".".join(str(part) for part in tuple(loc)[:2])[:MAX_LOGGED_LENGTH]


def resolve_json(app: APIGatewayHttpResolver, event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Resolves a request whose body, if any, is JSON; anything else gets 415 before a parser sees it.
    (Powertools' validation runs before app.use middlewares, and would try to parse, for example, a
    multipart body without a boundary.)"""
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    content_type = headers.get("content-type", "")
    if event.get("body") and not content_type.split(";", 1)[0].strip().lower().endswith("json"):
        log_error_response(logging.INFO, HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "UnsupportedMediaType", event,
                           fields=["header.content-type"])
        return {"statusCode": HTTPStatus.UNSUPPORTED_MEDIA_TYPE.value,
                "headers": {"Content-Type": content_types.APPLICATION_JSON},
                "body": json.dumps({"statusCode": HTTPStatus.UNSUPPORTED_MEDIA_TYPE.value, "detail": [{
                    "loc": ["header", "content-type"], "type": "unsupported_media_type",
                    "msg": f"send the body as application/json, not {content_type or 'no content type'}"}]})}
    return app.resolve(event, context)


def error_responses(*statuses: HTTPStatus) -> dict[int, OpenAPIResponse]:
    """What a route declares in the OpenAPI document besides its 200 and 422."""
    return {status.value: {"description": status.phrase,
                           "content": {"application/json": {"model": ErrorResponse}}} for status in statuses}


def register_error_handlers(app: APIGatewayHttpResolver) -> None:
    """Every mapped error, each answered with its status and logged once at the level it deserves."""
    _register_input_errors(app)
    _register_state_errors(app)


def _logger_for(app: APIGatewayHttpResolver) -> Callable[..., None]:
    def logged(level: int, status: HTTPStatus, error: Exception, *, fields: list[str] | None = None,
               with_exception: bool = False) -> None:
        log_error_response(level, status, type(error).__name__, app.current_event.raw_event, fields=fields,
                           exception=error if with_exception else None)
    return logged


def _register_input_errors(app: APIGatewayHttpResolver) -> None:
    """What the caller sent cannot be used: 422, logged at INFO with the fields at fault (never their values)."""
    logged = _logger_for(app)

    @app.exception_handler(UnicodeDecodeError)
    def _not_utf8(error: UnicodeDecodeError) -> Response:
        logged(logging.INFO, HTTPStatus.UNPROCESSABLE_ENTITY, error, fields=["body"])
        return error_response(HTTPStatus.UNPROCESSABLE_ENTITY,
                              [{"loc": ["body"], "msg": "the body is not UTF-8 text", "type": "json_invalid"}])

    @app.exception_handler(RequestValidationError)
    def _invalid_shape(error: RequestValidationError) -> Response:
        # Field and reason, never the input value or pydantic's internals (ctx, url).
        detail = [{"loc": list(e["loc"]), "msg": e.get("msg", ""), "type": e["type"]} for e in error.errors()]
        fields = list(dict.fromkeys(_location(e["loc"]) for e in detail))
        logged(logging.INFO, HTTPStatus.UNPROCESSABLE_ENTITY, error, fields=fields)
        return error_response(HTTPStatus.UNPROCESSABLE_ENTITY, detail)

    @app.exception_handler(InvalidRequestError)
    def _invalid_value(error: InvalidRequestError) -> Response:
        logged(logging.INFO, HTTPStatus.UNPROCESSABLE_ENTITY, error, fields=[_location((error.location, error.field))])
        return error_response(HTTPStatus.UNPROCESSABLE_ENTITY,
                              [{"loc": [error.location, error.field], "msg": error.reason, "type": "value_error"}])

    @lazy_exception_handlers(app).exception_handler_by_name(IDEMPOTENCY_ERRORS, "IdempotencyValidationError")
    def _key_reused(error: Exception) -> Response:
        logged(logging.INFO, HTTPStatus.UNPROCESSABLE_ENTITY, error, fields=["header.Idempotency-Key"])
        return error_response(HTTPStatus.UNPROCESSABLE_ENTITY, [{
            "loc": ["header", "Idempotency-Key"], "type": "value_error",
            "msg": "this key was already used with a different request body; use a new key for a new request"}])



def _register_state_errors(app: APIGatewayHttpResolver) -> None:
    """The service's state refuses the request (404, 409, 429) or could not act on it (503)."""
    logged = _logger_for(app)

    @lazy_exception_handlers(app).exception_handler_by_name(IDEMPOTENCY_ERRORS, "IdempotencyAlreadyInProgressError")
    def _key_in_progress(error: Exception) -> Response:
        logged(logging.WARNING, HTTPStatus.CONFLICT, error)
        response = error_response(HTTPStatus.CONFLICT, "a request with this Idempotency-Key is still being "
                                  "processed; retry shortly")
        response.headers["Retry-After"] = "1"
        return response

    @app.exception_handler([JobNotFoundError, ModelNotFoundError, NoChampionError, TriggerNotFoundError])
    def _not_found(error: Exception) -> Response:
        logged(logging.INFO, HTTPStatus.NOT_FOUND, error)
        return error_response(HTTPStatus.NOT_FOUND, str(error))

    @app.exception_handler([PromotionConflictError, OverrideRequiredError])
    def _conflict(error: PromotionConflictError) -> Response:
        logged(logging.WARNING, HTTPStatus.CONFLICT, error)
        return error_response(HTTPStatus.CONFLICT, str(error))

    @app.exception_handler(ArtifactIntegrityError)
    def _corrupt_artifact(error: ArtifactIntegrityError) -> Response:
        logged(logging.ERROR, HTTPStatus.CONFLICT, error, with_exception=True)
        return error_response(HTTPStatus.CONFLICT, str(error))

    @app.exception_handler(TooManyJobsError)
    def _too_many_jobs(error: TooManyJobsError) -> Response:
        logged(logging.WARNING, HTTPStatus.TOO_MANY_REQUESTS, error)
        response = error_response(HTTPStatus.TOO_MANY_REQUESTS, str(error))
        response.headers["Retry-After"] = str(error.retry_after_seconds)
        return response

    @app.exception_handler(ExecutionStartError)
    def _not_started(error: ExecutionStartError) -> Response:
        logged(logging.ERROR, HTTPStatus.SERVICE_UNAVAILABLE, error, with_exception=True)
        return error_response(HTTPStatus.SERVICE_UNAVAILABLE, str(error))
