"""The training job: its fields (the seed's contract plus what Step Functions adds) and its life cycle."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class JobStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class Indicator(StrEnum):
    STATUS = "status"  # classifier: will the machine fail within the labeling window?
    HEALTH = "health"  # regressor: how long until the next failure?


TERMINAL_STATUSES = frozenset({JobStatus.COMPLETED, JobStatus.FAILED})

# A job only moves forward. The state machine's conditional writes and JobStore enforce the same table.
ALLOWED_TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.PENDING: frozenset({JobStatus.RUNNING, JobStatus.FAILED}),
    JobStatus.RUNNING: frozenset({JobStatus.COMPLETED, JobStatus.FAILED}),
    JobStatus.COMPLETED: frozenset(),
    JobStatus.FAILED: frozenset(),
}


def can_transition(current: JobStatus, new: JobStatus) -> bool:
    return new in ALLOWED_TRANSITIONS[current]


class Job(BaseModel):
    """One row of the jobs table."""

    model_config = ConfigDict(frozen=True)

    process_id: str
    indicator: Indicator
    machine_name: str
    status: JobStatus
    created_at: datetime
    updated_at: datetime
    start_date: date | None = None
    end_date: date | None = None
    error_message: str | None = None
    finished_at: datetime | None = None
    bucket_address: str | None = None
    execution_arn: str | None = None
    model_id: str | None = None
    gate_decision: str | None = None  # promoted | rejected
    gate_reason: str | None = None
