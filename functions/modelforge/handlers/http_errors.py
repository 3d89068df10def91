"""Errors -> HTTP statuses, in one place, for every HTTP-facing function (the API and the predict function)."""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)

from modelforge.errors import (
    ArtifactIntegrityError,
    ExecutionStartError,
    InvalidRequestError,
    JobNotFoundError,
    ModelNotFoundError,
    NoChampionError,
    PromotionConflictError,
)
from modelforge.schemas import ErrorResponse


def error_response(status: HTTPStatus, detail: Any) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON,
                    body={"statusCode": status.value, "detail": detail})


def resolve_json(app: APIGatewayHttpResolver, event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Resolves a request whose body, if any, is JSON; anything else gets 415 before a parser sees it.
    (Powertools' validation runs before app.use middlewares, and would try to parse, for example, a
    multipart body without a boundary.)"""
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    content_type = headers.get("content-type", "")
    if event.get("body") and not content_type.split(";", 1)[0].strip().lower().endswith("json"):
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
    @app.exception_handler(UnicodeDecodeError)
    def _not_utf8(error: UnicodeDecodeError) -> Response:
        return error_response(HTTPStatus.UNPROCESSABLE_ENTITY,
                              [{"loc": ["body"], "msg": "the body is not UTF-8 text", "type": "json_invalid"}])

    @app.exception_handler(RequestValidationError)
    def _invalid_shape(error: RequestValidationError) -> Response:
        # Field and reason, never the input value or pydantic's internals (ctx, url).
        detail = [{"loc": list(e["loc"]), "msg": e.get("msg", ""), "type": e["type"]} for e in error.errors()]
        return error_response(HTTPStatus.UNPROCESSABLE_ENTITY, detail)

    @app.exception_handler(InvalidRequestError)
    def _invalid_value(error: InvalidRequestError) -> Response:
        return error_response(HTTPStatus.UNPROCESSABLE_ENTITY,
                              [{"loc": [error.location, error.field], "msg": error.reason, "type": "value_error"}])

    @app.exception_handler(IdempotencyValidationError)
    def _key_reused(error: IdempotencyValidationError) -> Response:
        return error_response(HTTPStatus.UNPROCESSABLE_ENTITY, [{
            "loc": ["header", "Idempotency-Key"], "type": "value_error",
            "msg": "this key was already used with a different request body; use a new key for a new request"}])

    @app.exception_handler(IdempotencyAlreadyInProgressError)
    def _key_in_progress(error: IdempotencyAlreadyInProgressError) -> Response:
        response = error_response(HTTPStatus.CONFLICT, "a request with this Idempotency-Key is still being "
                                  "processed; retry shortly")
        response.headers["Retry-After"] = "1"
        return response

    @app.exception_handler([JobNotFoundError, ModelNotFoundError, NoChampionError])
    def _not_found(error: Exception) -> Response:
        return error_response(HTTPStatus.NOT_FOUND, str(error))

    @app.exception_handler([PromotionConflictError, ArtifactIntegrityError])
    def _conflict(error: Exception) -> Response:
        return error_response(HTTPStatus.CONFLICT, str(error))

    @app.exception_handler(ExecutionStartError)
    def _not_started(error: ExecutionStartError) -> Response:
        return error_response(HTTPStatus.SERVICE_UNAVAILABLE, str(error))
