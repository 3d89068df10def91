"""Reconciliation: when an execution ends outside the state machine's own catch paths (stopped by an operator,
timed out as a whole, failed in a state that could not record it), its job must not stay pending/running."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from modelforge.errors import JobNotFoundError, JobTransitionError
from modelforge.jobs import TERMINAL_STATUSES, Job
from modelforge.logic.clock import utc_now
from modelforge.observability import logger


class ExecutionStatusChange(BaseModel):
    """The ``detail`` of an EventBridge "Step Functions Execution Status Change" event."""

    model_config = ConfigDict(extra="ignore")

    execution_arn: str = Field(alias="executionArn")
    name: str
    status: Literal["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "PENDING_REDRIVE"]
    error: str | None = None
    cause: str | None = None


class Jobs(Protocol):
    def get(self, process_id: str) -> Job: ...
    def mark_failed(self, process_id: str, reason: str, now: datetime) -> None: ...


def reconcile_execution(change: ExecutionStatusChange, *, jobs: Jobs,
                        now: Callable[[], datetime] = utc_now) -> bool:
    """Returns True when the job was moved to failed."""
    if change.status in ("RUNNING", "SUCCEEDED", "PENDING_REDRIVE"):
        return False
    try:
        job = jobs.get(change.name)  # executions are named by the job's process_id
    except JobNotFoundError:
        logger.warning("execution without a job", extra={"execution_arn": change.execution_arn})
        return False
    if job.status in TERMINAL_STATUSES:
        return False
    reason = f"execution {change.status.lower().replace('_', ' ')}"
    if change.error:
        reason += f": {change.error}"
    if change.cause:
        reason += f": {change.cause[:1000]}"
    try:
        jobs.mark_failed(job.process_id, reason, now())
    except JobTransitionError:
        return False  # the state machine recorded an outcome in the meantime; it stands
    logger.warning("job reconciled to failed", extra={"process_id": job.process_id, "reason": reason})
    return True
