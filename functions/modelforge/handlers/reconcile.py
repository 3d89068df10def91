"""Target of the EventBridge rule on the training state machine's status changes (FAILED, TIMED_OUT,
ABORTED): fails the job if the execution ended without recording it, then sweeps the objects a killed
training process left in the models bucket without a registry item."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from modelforge.adapters.job_store import JobStore
from modelforge.adapters.model_registry import ModelRegistry
from modelforge.adapters.model_store import ModelArtifactStore
from modelforge.logic.reconcile import ExecutionStatusChange, reconcile_execution, sweep_leftovers
from modelforge.logic.training_job import MODEL_KEY_PREFIX
from modelforge.observability import logger, tracer
from modelforge.settings import ReconcileSettings


@dataclass(frozen=True)
class _Dependencies:
    jobs: JobStore
    registry: ModelRegistry
    artifacts: ModelArtifactStore
    key_prefix: str


@cache
def _dependencies(settings: ReconcileSettings) -> _Dependencies:
    return _Dependencies(JobStore(settings.jobs_table_name), ModelRegistry(settings.models_table_name),
                         ModelArtifactStore(settings.models_bucket_name),
                         settings.model_key_prefix or MODEL_KEY_PREFIX)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    change = ExecutionStatusChange.model_validate(event["detail"])
    deps = _dependencies(ReconcileSettings.from_env())
    # The job first: a sweep that fails (its invocation is retried, then queued) must not hold the job `running`.
    reconciled = reconcile_execution(change, jobs=deps.jobs)
    swept = sweep_leftovers(change, jobs=deps.jobs, registry=deps.registry, artifacts=deps.artifacts,
                            key_prefix=deps.key_prefix)
    return {"reconciled": reconciled, "swept": swept}
