"""Retraining runs and their trigger records (the runbook's ``retraining_triggers``).

A **run** is one execution of the retraining state machine: the planner lists the models to consider, each is
decided on (``modelforge.domain.retrain_policy``), and the summary counts the decisions. A **trigger** is the
record of one decision that started a retrain. Its id is the training job's ``process_id`` (and so the
training execution's name), which is how the training state machine's status events find it:
``triggered`` (the job was submitted) -> ``running`` -> ``completed`` | ``failed``, and a failed one may be
``resolved_manually`` by an operator, with who and why.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import ConfigDict, Field

from modelforge.jobs import Indicator
from modelforge.lazy_model import LazyModel


class TriggerStatus(StrEnum):
    TRIGGERED = "triggered"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    RESOLVED_MANUALLY = "resolved_manually"


OPEN_TRIGGER_STATUSES = (TriggerStatus.TRIGGERED, TriggerStatus.RUNNING)


class RunStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Trigger(LazyModel):
    model_config = ConfigDict(frozen=True)

    trigger_id: str  # the training job's process_id
    run_id: str
    model_name: str  # "<machine>#<indicator>"
    machine_name: str
    indicator: Indicator
    reason: str  # domain.retrain_policy.RETRAIN_REASONS
    figures: dict[str, Any] = Field(default_factory=dict)
    status: TriggerStatus
    process_id: str | None = None
    execution_arn: str | None = None
    error_message: str | None = None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None
    duration_seconds: float | None = None
    resolved_by: str | None = None
    resolution_reason: str | None = None
    resolved_at: datetime | None = None


class RetrainItem(LazyModel):
    """One model to consider in a run: an element of the items file the Distributed Map reads."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    run_id: str
    machine_name: str
    indicator: Indicator
    force: bool = False
    dry_run: bool = False  # decide and record, start nothing (the planning benchmark)


class ItemOutcome(LazyModel):
    """What happened to one item: its decision and, for a retrain, its trigger."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    model_name: str
    decision: str  # "drift", "skip: stable", ...
    outcome: str  # started | skipped | failed | planned (dry run)
    trigger_id: str | None = None
    figures: dict[str, Any] = Field(default_factory=dict)
    error_message: str | None = None
    decided_at: datetime


class RetrainRun(LazyModel):
    model_config = ConfigDict(frozen=True)

    run_id: str
    status: RunStatus
    request: dict[str, Any] = Field(default_factory=dict)
    summary: dict[str, Any] | None = None
    error_message: str | None = None
    created_at: datetime
    updated_at: datetime
