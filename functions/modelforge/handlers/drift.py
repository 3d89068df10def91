"""The drift check, run by an EventBridge schedule (every champion) or invoked for one model.

Invoked with ``{"machine_name": ..., "indicator": ...}`` (optionally ``window_days`` and ``retrain``) it checks
that model only; the schedule sends ``{"source": "schedule"}`` and every champion is checked. Returns the
results, which are also recorded on each champion's registry item.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from modelforge.adapters.executions import ExecutionStarter
from modelforge.adapters.failure_events import FailureEventStore
from modelforge.adapters.job_store import JobStore
from modelforge.adapters.model_registry import ModelRegistry
from modelforge.adapters.model_store import ModelArtifactStore
from modelforge.adapters.prediction_capture import PredictionCaptureStore
from modelforge.adapters.telemetry import TelemetryCatalog, TelemetryStore
from modelforge.errors import DriftCheckFailedError
from modelforge.logic import jobs_api
from modelforge.logic.drift import DriftCheckRequest, DriftDependencies, run_drift_checks
from modelforge.observability import logger, metrics, tracer
from modelforge.schemas import TrainRequest, TrainResponse
from modelforge.settings import DriftSettings


@cache
def build_dependencies(settings: DriftSettings) -> DriftDependencies:
    catalog = TelemetryCatalog(settings.data_bucket_name, settings.processed_data_prefix)
    jobs = JobStore(settings.jobs_table_name)
    executions = ExecutionStarter(settings.state_machine_arn)

    def submit(request: TrainRequest) -> TrainResponse:
        return jobs_api.submit_training(request, jobs=jobs, catalog=catalog, executions=executions)

    return DriftDependencies(registry=ModelRegistry(settings.models_table_name),
                             artifacts=ModelArtifactStore(settings.models_bucket_name),
                             telemetry=TelemetryStore(settings.data_bucket_name, settings.processed_data_prefix,
                                                      catalog),
                             catalog=catalog, submit_training=submit,
                             captures=PredictionCaptureStore(settings.data_bucket_name, settings.capture_prefix),
                             failure_events=FailureEventStore(settings.data_bucket_name,
                                                              settings.failure_events_prefix))


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = DriftCheckRequest.model_validate(event)
    settings = DriftSettings.from_env()
    results = run_drift_checks(request, build_dependencies(settings), settings.drift_config())
    drifted = sum(1 for r in results if r.status == "drift")
    failed = [r for r in results if r.status == "error"]
    metrics.add_metric(name="ModelsCheckedForDrift", unit="Count", value=len(results))
    metrics.add_metric(name="ModelsDrifted", unit="Count", value=drifted)
    if failed:
        # Every other champion was checked and recorded; failing the invocation sends it to the failure queue
        # (and its alarm). A retry is safe: a retraining already asked for over the same data is not repeated.
        raise DriftCheckFailedError("; ".join(f"{r.model_name}: {r.message}" for r in failed))
    return {"checked": len(results), "drifted": drifted, "results": [r.model_dump(mode="json") for r in results]}
