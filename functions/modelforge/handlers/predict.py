"""POST /predict: scores telemetry with the champion model, which stays in memory while the function is warm.

No `from __future__ import annotations`: Powertools reads the route annotations at run time."""

from functools import cache
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from modelforge.adapters.model_registry import ModelRegistry
from modelforge.adapters.model_store import ModelArtifactStore
from modelforge.adapters.prediction_capture import PredictionCaptureStore
from modelforge.handlers.http_errors import error_responses, register_error_handlers, resolve_json
from modelforge.logic.predict import Capture, CaptureBuffer, ChampionCache, predict_for
from modelforge.observability import logger, tracer
from modelforge.schemas import PredictRequest, PredictResponse
from modelforge.settings import PredictSettings

if TYPE_CHECKING:
    from modelforge.domain.live import CaptureConfig  # NumPy and pandas: loaded with the first request

app = APIGatewayHttpResolver(enable_validation=True)
register_error_handlers(app)


@cache
def champion_cache(settings: PredictSettings) -> ChampionCache:
    return ChampionCache(ModelRegistry(settings.models_table_name), ModelArtifactStore(settings.models_bucket_name),
                         refresh_seconds=settings.champion_refresh_seconds)


@cache
def capture_config(settings: PredictSettings) -> "CaptureConfig":
    return settings.capture_config()


@cache
def capture_buffer(settings: PredictSettings) -> CaptureBuffer | None:
    """The warm container's capture buffer (flushed at each request when due)."""
    if settings.capture_bucket_name is None:
        return None
    config = capture_config(settings)
    store = PredictionCaptureStore(settings.capture_bucket_name, settings.capture_prefix)
    return CaptureBuffer(store, flush_rows=config.flush_rows, flush_seconds=config.flush_seconds)


def capture_for(settings: PredictSettings, context: LambdaContext) -> Capture | None:
    """This request's capture: named by its Lambda request id (unique, and the same on a retry)."""
    buffer = capture_buffer(settings)
    if buffer is None:
        return None
    return Capture(buffer, request_id=context.aws_request_id, sample_rate=capture_config(settings).sample_rate)


@app.post("/predict", summary="Failure predictions from the champion model", tags=["inference"],
          responses=error_responses(HTTPStatus.NOT_FOUND, HTTPStatus.CONFLICT, HTTPStatus.UNSUPPORTED_MEDIA_TYPE))
@tracer.capture_method
def predict(request: PredictRequest) -> PredictResponse:
    return predict_for(request, app.context["cache"], capture=app.context.get("capture"))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = PredictSettings.from_env()
    app.append_context(cache=champion_cache(settings), capture=capture_for(settings, context))
    return resolve_json(app, event, context)
