"""The gate step: promote the new model to champion, or reject it with the reason."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from modelforge.adapters.job_store import JobStore
from modelforge.adapters.model_registry import ModelRegistry
from modelforge.adapters.model_store import ModelArtifactStore
from modelforge.logic.gate import GateDependencies, GateTask, gate_challenger
from modelforge.observability import logger, tracer
from modelforge.settings import GateSettings


@cache
def build_dependencies(settings: GateSettings) -> GateDependencies:
    return GateDependencies(jobs=JobStore(settings.jobs_table_name),
                            registry=ModelRegistry(settings.models_table_name),
                            artifacts=ModelArtifactStore(settings.models_bucket_name))


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    task = GateTask.model_validate(event)
    settings = GateSettings.from_env()
    logger.append_keys(process_id=task.process_id)
    return gate_challenger(task, build_dependencies(settings), settings.gate_config()).model_dump()
