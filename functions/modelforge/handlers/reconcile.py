"""Target of the EventBridge rule on the training state machine's status changes (FAILED, TIMED_OUT,
ABORTED): fails the job if the execution ended without recording it."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from modelforge.adapters.job_store import JobStore
from modelforge.logic.reconcile import ExecutionStatusChange, reconcile_execution
from modelforge.observability import logger, tracer
from modelforge.settings import ReconcileSettings


@cache
def _jobs(table_name: str) -> JobStore:
    return JobStore(table_name)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    change = ExecutionStatusChange.model_validate(event["detail"])
    settings = ReconcileSettings.from_env()
    return {"reconciled": reconcile_execution(change, jobs=_jobs(settings.jobs_table_name))}
