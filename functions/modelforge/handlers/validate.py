"""POST /validate: the data checks of training on a machine's (or a fleet's) data, without training. It runs in
the training image (the checks are the pipeline's, on pandas), so it answers the same against AWS as locally.

No `from __future__ import annotations`: Powertools reads the route annotations at run time."""

from functools import cache
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from modelforge.adapters.failure_events import FailureEventStore
from modelforge.adapters.telemetry import TelemetryCatalog, TelemetryStore
from modelforge.handlers.http_errors import error_responses, register_error_handlers, resolve_json
from modelforge.logic.validate import validate_training_data
from modelforge.observability import logger, tracer
from modelforge.schemas import ValidateRequest, ValidateResponse
from modelforge.settings import ValidateSettings

app = APIGatewayHttpResolver(enable_validation=True)
register_error_handlers(app)


@cache
def data_access(settings: ValidateSettings) -> tuple[TelemetryCatalog, TelemetryStore, FailureEventStore]:
    return (TelemetryCatalog(settings.data_bucket_name, settings.processed_data_prefix),
            TelemetryStore(settings.data_bucket_name, settings.processed_data_prefix),
            FailureEventStore(settings.data_bucket_name, settings.failure_events_prefix))


@app.post("/validate", summary="Check a machine's training data without training", tags=["training"],
          responses=error_responses(HTTPStatus.UNSUPPORTED_MEDIA_TYPE))
@tracer.capture_method
def validate(request: ValidateRequest) -> ValidateResponse:
    settings: ValidateSettings = app.context["settings"]
    catalog, telemetry, failure_events = data_access(settings)
    return validate_training_data(request, catalog=catalog, telemetry=telemetry, failure_events=failure_events,
                                  config=settings.pipeline_config())


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    app.append_context(settings=ValidateSettings.from_env())
    return resolve_json(app, event, context)
