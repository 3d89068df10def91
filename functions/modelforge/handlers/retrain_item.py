"""The item task's dependencies: the drift check's (as DriftFunction builds them; only this item starts
retrains), the triggers table, and the
training submission of ``POST /train`` with the trigger's id as the job's process_id."""

from __future__ import annotations

from functools import cache
from typing import Any

from modelforge.adapters.executions import ExecutionStarter
from modelforge.adapters.job_store import JobStore
from modelforge.adapters.model_registry import ModelRegistry
from modelforge.adapters.telemetry import TelemetryCatalog
from modelforge.adapters.trigger_store import TriggerStore
from modelforge.errors import SettingsError
from modelforge.handlers.drift import build_dependencies as drift_dependencies
from modelforge.logic import jobs_api
from modelforge.logic.drift import check_champion
from modelforge.logic.retrain import RetrainDependencies, process_item, record_failure
from modelforge.registry import ModelVersion
from modelforge.schemas import TrainRequest, TrainResponse
from modelforge.settings import RetrainSettings
from modelforge.triggers import RetrainItem


@cache
def build_dependencies(settings: RetrainSettings) -> RetrainDependencies:
    drift = drift_dependencies(settings)
    failure_events = drift.failure_events
    if failure_events is None:  # drift_dependencies always builds it; the check there treats it as optional
        raise SettingsError("the retraining item needs the failure-events store")
    config = settings.drift_config()
    catalog = TelemetryCatalog(settings.data_bucket_name, settings.processed_data_prefix)
    jobs = JobStore(settings.jobs_table_name)
    executions = ExecutionStarter(settings.state_machine_arn)
    compute = settings.compute_config()

    def submit(request: TrainRequest, process_id: str) -> TrainResponse:
        return jobs_api.submit_training(request, jobs=jobs, catalog=catalog, executions=executions,
                                        new_id=lambda: process_id, compute_config=compute)

    def check(champion: ModelVersion) -> dict[str, Any]:
        result = check_champion(champion, drift, window_days=config.window_days, threshold=config.psi_threshold,
                                policy=config)
        return result.model_dump(mode="json")

    return RetrainDependencies(registry=ModelRegistry(settings.models_table_name), catalog=catalog,
                               triggers=TriggerStore(settings.triggers_table_name), submit_training=submit,
                               check_drift=check, telemetry=drift.telemetry, failure_events=failure_events)


def process(item: RetrainItem, settings: RetrainSettings, failure: dict[str, Any] | None = None) -> dict[str, Any]:
    deps = build_dependencies(settings)
    if failure is not None:
        return record_failure(item, failure, deps).model_dump(mode="json")
    return process_item(item, deps, settings.retrain_policy()).model_dump(mode="json")
