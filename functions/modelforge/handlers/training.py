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
    return TrainingDependencies(
        jobs=JobStore(settings.jobs_table_name),
        telemetry=TelemetryStore(settings.data_bucket_name, settings.processed_data_prefix),
        artifacts=ModelArtifactStore(settings.models_bucket_name),
        registry=ModelRegistry(settings.models_table_name),
        failure_events=FailureEventStore(settings.data_bucket_name, settings.failure_events_prefix),
        model_key_prefix=settings.model_key_prefix,
        code_revision=settings.code_revision,
    )


def pipeline_config(settings: TrainingSettings) -> PipelineConfig:
    """Every training setting, mapped into the domain's configuration (domain code never reads env)."""
    from modelforge.domain.labeling import LabelingConfig
    from modelforge.domain.pipeline import PipelineConfig
    from modelforge.domain.search import SearchConfig
    from modelforge.domain.telemetry import ValidationConfig

    return PipelineConfig(
        labeling=LabelingConfig(window_minutes=settings.label_window_minutes,
                                drop_threshold_pct=settings.failure_drop_threshold_pct,
                                post_failure_exclusion_minutes=settings.post_failure_exclusion_minutes,
                                episode_gap_minutes=settings.failure_episode_gap_minutes,
                                health_horizon_minutes=settings.health_horizon_minutes),
        search=SearchConfig(strategy=settings.search_strategy, budget=settings.search_budget,
                            cv_folds=settings.search_cv_folds, selection_metric=settings.selection_metric,
                            min_precision=settings.min_precision, max_rounds=settings.max_boost_rounds,
                            early_stopping_rounds=settings.early_stopping_rounds,
                            validation_fraction=settings.validation_fraction, device=settings.training_device,
                            nthread=settings.training_nthread, seed=settings.training_seed),
        validation=ValidationConfig(min_rows=settings.min_training_rows),
        test_fraction=settings.test_fraction,
        lead_minutes=settings.alert_lead_minutes,
        memory_budget_mb=settings.training_memory_budget_mb,
    )


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
