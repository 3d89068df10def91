"""The drift check for one model, invoked by hand (``{"machine_name": ..., "indicator": ...}``, optionally
``window_days``): the check the retraining state machine runs for every model, recorded on the champion's
registry item and returned. It starts no retraining: only the retraining state machine does, with a trigger
record and the in-flight lock (docs/runbook.md)."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from modelforge.adapters.failure_events import FailureEventStore
from modelforge.adapters.model_registry import ModelRegistry
from modelforge.adapters.model_store import ModelArtifactStore
from modelforge.adapters.prediction_capture import PredictionCaptureStore
from modelforge.adapters.telemetry import TelemetryCatalog, TelemetryStore
from modelforge.logic.drift import DriftCheckRequest, DriftDependencies, run_drift_check
from modelforge.observability import logger, metrics, tracer
from modelforge.settings import DriftSettings


@cache
def build_dependencies(settings: DriftSettings) -> DriftDependencies:
    catalog = TelemetryCatalog(settings.data_bucket_name, settings.processed_data_prefix)
    return DriftDependencies(registry=ModelRegistry(settings.models_table_name),
                             artifacts=ModelArtifactStore(settings.models_bucket_name),
                             telemetry=TelemetryStore(settings.data_bucket_name, settings.processed_data_prefix,
                                                      catalog),
                             catalog=catalog,
                             captures=PredictionCaptureStore(settings.data_bucket_name, settings.capture_prefix),
                             failure_events=FailureEventStore(settings.data_bucket_name,
                                                              settings.failure_events_prefix))


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = DriftCheckRequest.model_validate(event)
    settings = DriftSettings.from_env()
    result = run_drift_check(request, build_dependencies(settings), settings.drift_config())
    return result.model_dump(mode="json")
