"""The training job: its fields (the seed's contract plus what Step Functions adds) and its life cycle."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from modelforge.lazy_model import LazyModel


class JobStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class Indicator(StrEnum):
    STATUS = "status"  # classifier: will the machine fail within the labeling window?
    HEALTH = "health"  # regressor: how long until the next failure?


class FailureEventSource(StrEnum):
    RPM_DROP = "rpm_drop"  # the seed's rule: a sharp drop of Eng_RPM_variation_percentage in the telemetry
    RECORDS = "records"  # the failure-events dataset in the data bucket (maintenance records, run-to-failure ends)


FeatureStatistic = Literal["mean", "std", "min", "max", "slope"]
MINUTES_PER_YEAR = 366 * 24 * 60


class TrainingOptions(LazyModel):
    """Per-job overrides of the service's training settings (omitted: the deployment's defaults). Stored with
    the job and the model, so every choice behind a model is on record."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    label_window_minutes: int | None = Field(
        default=None, ge=1, le=MINUTES_PER_YEAR,
        description="status: a row is pre-failure when a failure follows within this many minutes.")
    health_horizon_minutes: int | None = Field(
        default=None, ge=10, le=MINUTES_PER_YEAR,
        description="health: the time-to-failure target is capped at this many minutes.")
    feature_windows_minutes: Annotated[list[Annotated[int, Field(ge=1, le=MINUTES_PER_YEAR)]],
                                       Field(min_length=1, max_length=6)] | None = Field(
        default=None, description="Rolling-statistic windows (minutes, backward-looking).")
    feature_statistics: Annotated[list[FeatureStatistic], Field(min_length=1, max_length=5)] | None = Field(
        default=None, description="Statistics over each window.")
    trend_window_minutes: int | None = Field(
        default=None, ge=0, le=MINUTES_PER_YEAR,
        description="Window of the 'reading minus its rolling mean' features (default: 60; 0: none).")
    min_precision: float | None = Field(
        default=None, gt=0, lt=1,
        description="status: the decision threshold maximizes recall at this precision, on validation data.")
    holdout: Literal["auto", "time", "machines"] | None = Field(
        default=None, description="Test on the final period (time) or on whole machines never trained on "
        "(machines); auto: time for one machine, machines for a fleet.")
    test_fraction: float | None = Field(default=None, ge=0.05, le=0.5,
                                        description="Share of the period, or of the machines, held out.")
    operating_settings: Annotated[list[Annotated[str, Field(min_length=1, max_length=128)]],
                                  Field(min_length=1, max_length=10)] | None = Field(
        default=None, description="The columns that describe the operating condition (e.g. setting1..3); "
        "they define the regimes and are not featurized as sensors.")
    regimes: Literal["auto", "none"] | Annotated[int, Field(ge=1, le=50)] | None = Field(
        default=None, description="Operating regimes found on the training rows from operating_settings: "
        "auto (k-means, k by silhouette), a number of regimes, or none (the default). Each sensor is "
        "standardized per regime before its rolling features.")

    @field_validator("feature_windows_minutes", "feature_statistics")
    @classmethod
    def _distinct(cls, value: list[object] | None) -> list[object] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError("must not repeat a value")
        return value

    @field_validator("operating_settings")
    @classmethod
    def _distinct_settings(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError("must not repeat a column")
        return value

    @model_validator(mode="after")
    def _regimes_need_settings(self) -> TrainingOptions:
        if self.regimes not in (None, "none") and not self.operating_settings:
            raise ValueError(f"options.regimes {self.regimes!r} needs options.operating_settings, the columns "
                             "that define the regimes")
        return self


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


class Job(LazyModel):
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
    # Fleet jobs: machine_name names the model, machine_names the machines whose data trains it.
    machine_names: list[str] | None = None
    failure_events: FailureEventSource = FailureEventSource.RPM_DROP
    options: TrainingOptions | None = None
    # Where it runs (lambda | batch | gpu), the size estimate that decided it and why (domain.compute).
    compute: str | None = None
    compute_reason: str | None = None
    compute_estimate: dict[str, float | int] | None = None
    # On Batch CPU, which job definition (standard: Fargate | large: EC2) and why (domain.compute.BatchClass).
    compute_class: str | None = None
    compute_class_reason: str | None = None
