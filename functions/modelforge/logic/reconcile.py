"""Reconciliation, when a training execution ends badly (failed, timed out, stopped):

* its job must not stay pending/running when the execution ended outside the state machine's own catch paths
  (stopped by an operator, timed out as a whole, failed in a state that could not record it);
* no object may stay in the models bucket without a registry item. Training deletes what it wrote when a
  write fails, but a process that is killed (out of memory, timed out) between its first write and its
  registry item runs no cleanup at all. The sweep removes every version of such leftovers for good.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from modelforge.errors import JobNotFoundError, JobTransitionError
from modelforge.jobs import TERMINAL_STATUSES, Job
from modelforge.logic.clock import utc_now
from modelforge.logic.training_job import MODEL_KEY_PREFIX, job_prefix
from modelforge.observability import logger
from modelforge.registry import ArtifactRef, ModelName, ModelVersion, ObjectVersion

ENDED_BADLY = ("FAILED", "TIMED_OUT", "ABORTED")


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


class Registry(Protocol):
    def versions_trained_by(self, name: ModelName, process_id: str) -> list[ModelVersion]: ...


class ArtifactVersions(Protocol):
    def versions(self, prefix: str) -> list[ObjectVersion]: ...
    def delete_version(self, uri: str, version_id: str) -> None: ...


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


def sweep_leftovers(change: ExecutionStatusChange, *, jobs: Jobs, registry: Registry, artifacts: ArtifactVersions,
                    key_prefix: str = MODEL_KEY_PREFIX) -> int:
    """Deletes, version by version, every object under the job's folder that none of the job's registry items
    references, and every delete marker there; returns how many. Whatever the job's status: the catch path
    has usually failed the job already, and a killed process leaves the same objects either way. A version
    the registry names is kept (for items without version ids, every version of the keys they name)."""
    if change.status not in ENDED_BADLY:
        return 0
    try:
        job = jobs.get(change.name)
    except JobNotFoundError:
        return 0  # without the job there is no model name to look its registry items up by: delete nothing
    keep = [ref for version in registry.versions_trained_by(ModelName(job.machine_name, job.indicator),
                                                             job.process_id)
            for ref in version.stored_artifacts()]
    stored = artifacts.versions(job_prefix(key_prefix, job.process_id))
    leftovers = [entry for entry in stored if not _referenced(entry, keep)]
    for entry in leftovers:
        artifacts.delete_version(entry.uri, entry.version_id)
    logger.info("leftover artifacts swept", extra={
        "process_id": job.process_id, "execution_status": change.status, "removed": len(leftovers),
        "kept": len(stored) - len(leftovers),
        "removed_uris": sorted({entry.uri for entry in leftovers})})
    return len(leftovers)


def _referenced(entry: ObjectVersion, keep: list[ArtifactRef]) -> bool:
    """A delete marker never is: removing it only makes the version under it current again."""
    return not entry.delete_marker and any(
        ref.uri == entry.uri and ref.version_id in (None, entry.version_id) for ref in keep)
