"""The training step, run by the state machine in a container-image Lambda (or a Batch job).

Errors propagate with their class names (NoFailureEventsError, ...), which Lambda reports as ``errorType`` and
the state machine's Catch turns into the job's error_message.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from modelforge.adapters.failure_events import FailureEventStore
from modelforge.adapters.job_store import JobStore
from modelforge.adapters.model_registry import ModelRegistry
from modelforge.adapters.model_store import ModelArtifactStore
from modelforge.adapters.telemetry import TelemetryStore
from modelforge.logic.training_job import TrainingDependencies, TrainingTask, train_for_job
from modelforge.observability import logger, metrics, tracer
from modelforge.settings import TrainingSettings

if TYPE_CHECKING:
    from modelforge.domain.pipeline import PipelineConfig


@cache
def build_dependencies(settings: TrainingSettings) -> TrainingDependencies:
    # model_key_prefix and code_revision only when set: TrainingDependencies holds their defaults.
    optional = {name: value for name in ("model_key_prefix", "code_revision")
                if (value := getattr(settings, name)) is not None}
    return TrainingDependencies(
        jobs=JobStore(settings.jobs_table_name),
        telemetry=TelemetryStore(settings.data_bucket_name, settings.processed_data_prefix),
        artifacts=ModelArtifactStore(settings.models_bucket_name),
        registry=ModelRegistry(settings.models_table_name),
        failure_events=FailureEventStore(settings.data_bucket_name, settings.failure_events_prefix),
        **optional,
    )


def pipeline_config(settings: TrainingSettings) -> PipelineConfig:
    """The domain's pipeline configuration with the deployment's overrides (``TrainingSettings.pipeline_config``)."""
    return settings.pipeline_config()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    task = TrainingTask.model_validate(event)
    settings = TrainingSettings.from_env()
    logger.append_keys(process_id=task.process_id)
    outcome = train_for_job(task, build_dependencies(settings), pipeline_config(settings))
    metrics.add_metric(name="ModelsTrained", unit="Count", value=1)
    return outcome.model_dump()
