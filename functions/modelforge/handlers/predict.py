"""POST /predict: scores telemetry with the champion model, which stays in memory while the function is warm.

No `from __future__ import annotations`: Powertools reads the route annotations at run time."""

from functools import cache
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from modelforge.adapters.model_registry import ModelRegistry
from modelforge.adapters.model_store import ModelArtifactStore
from modelforge.handlers.http_errors import error_responses, register_error_handlers, resolve_json
from modelforge.logic.predict import ChampionCache, predict_for
from modelforge.observability import logger, tracer
from modelforge.schemas import PredictRequest, PredictResponse
from modelforge.settings import PredictSettings

app = APIGatewayHttpResolver(enable_validation=True)
register_error_handlers(app)


@cache
def champion_cache(settings: PredictSettings) -> ChampionCache:
    return ChampionCache(ModelRegistry(settings.models_table_name), ModelArtifactStore(settings.models_bucket_name),
                         refresh_seconds=settings.champion_refresh_seconds)


@app.post("/predict", summary="Failure predictions from the champion model", tags=["inference"],
          responses=error_responses(HTTPStatus.NOT_FOUND, HTTPStatus.CONFLICT, HTTPStatus.UNSUPPORTED_MEDIA_TYPE))
@tracer.capture_method
def predict(request: PredictRequest) -> PredictResponse:
    return predict_for(request, app.context["cache"])


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    app.append_context(cache=champion_cache(PredictSettings.from_env()))
    return resolve_json(app, event, context)
