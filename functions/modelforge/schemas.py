"""Request and response bodies of the HTTP API. The OpenAPI document is generated from these."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from modelforge.domain.compute import Compute
from modelforge.domain.names import MACHINE_NAME_PATTERN
from modelforge.jobs import FailureEventSource, Indicator, JobStatus, TrainingOptions
from modelforge.lazy_model import LazyModel

MachineName = Annotated[str, StringConstraints(pattern=MACHINE_NAME_PATTERN)]
ProcessId = Annotated[
    str, StringConstraints(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
]

MAX_FLEET_MACHINES = 500
EARLIEST_DATE = date(1970, 1, 1)
LATEST_DATE = date(2100, 12, 31)


class TrainRequest(LazyModel):
    """Body of ``POST /train`` (the seed's contract)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"indicator": "status", "machine_name": "MOTOBOMBA-007",
                      "start_date": "2025-01-01", "end_date": "2025-08-31"}]})

    indicator: Indicator = Field(description="'status' trains a failure classifier, 'health' a regressor.")
    machine_name: MachineName = Field(
        description="A machine with processed telemetry (see GET /machines); with machine_names, the name of the "
        "fleet model trained on them (not itself a machine with data).")
    start_date: date | None = Field(default=None, description="First day of training data (inclusive).")
    end_date: date | None = Field(default=None, description="Last day of training data (inclusive).")
    machine_names: Annotated[list[MachineName], Field(min_length=2, max_length=MAX_FLEET_MACHINES)] | None = Field(
        default=None, description="A fleet: one model trained on these machines' pooled data.")
    failure_events: FailureEventSource = Field(
        default=FailureEventSource.RPM_DROP,
        description="Where failures come from: 'rpm_drop' (a sharp drop of Eng_RPM_variation_percentage) or "
        "'records' (the failure-events dataset in the data bucket).")
    options: TrainingOptions | None = Field(default=None, description="Overrides of the training settings.")
    compute: Compute = Field(
        default=Compute.AUTO,
        description="Where training runs: 'lambda', 'batch' (AWS Batch CPU), 'gpu' (AWS Batch GPU), or 'auto' "
        "(the Lambda when the job's estimated size fits it with margin, Batch CPU above).")

    @model_validator(mode="after")
    def _machines_holdout_needs_a_fleet(self) -> TrainRequest:
        if self.options is not None and self.options.holdout == "machines" and not self.machine_names:
            raise ValueError("options.holdout 'machines' holds out whole machines: it needs a fleet (machine_names)")
        return self

    @field_validator("machine_names")
    @classmethod
    def _distinct_machines(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            repeated = sorted({name for name in value if value.count(name) > 1})
            if repeated:
                raise ValueError(f"names a machine more than once: {', '.join(repeated)}")
        return value

    @field_validator("start_date", "end_date")
    @classmethod
    def _within_supported_range(cls, value: date | None) -> date | None:
        if value is not None and not EARLIEST_DATE <= value <= LATEST_DATE:
            raise ValueError(f"must be between {EARLIEST_DATE} and {LATEST_DATE}")
        return value

    @field_validator("end_date")
    @classmethod
    def _not_before_start(cls, value: date | None, info: ValidationInfo) -> date | None:
        start = info.data.get("start_date")
        if value is not None and start is not None and value < start:
            raise ValueError(f"must not be before start_date ({start})")
        return value


class TrainResponse(LazyModel):
    process_id: str
    status: JobStatus


class JobStatusResponse(LazyModel):
    """Body of ``GET /status/{process_id}``: the seed's fields, plus the execution and the model's metrics."""

    process_id: str
    indicator: Indicator
    machine_name: str
    status: JobStatus
    error_message: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    bucket_address: str | None
    execution_arn: str | None = None
    start_date: date | None = None
    end_date: date | None = None
    model_id: str | None = None
    gate_decision: str | None = Field(default=None, description="promoted (now the champion) or rejected")
    gate_reason: str | None = Field(default=None, description="Why the gate decided so")
    machine_names: list[str] | None = Field(default=None, description="A fleet model's machines.")
    failure_events: FailureEventSource = FailureEventSource.RPM_DROP
    options: TrainingOptions | None = None
    compute: str | None = Field(default=None, description="Where it ran: lambda, batch or gpu.")
    compute_reason: str | None = Field(default=None, description="Why there (the request, or auto's estimate).")
    compute_estimate: dict[str, float | int] | None = Field(
        default=None, description="The size estimate: machines, rows, features, cells, peak_memory_mb, seconds.")
    compute_class: str | None = Field(
        default=None, description="On Batch CPU, its size class: standard (the Fargate job definition) or large "
        "(the EC2 one, for jobs whose estimated memory exceeds Fargate's).")
    compute_class_reason: str | None = Field(default=None, description="Why that class (the estimated memory "
                                             "against each job definition's).")
    metrics: dict[str, Any] | None = Field(default=None, description="Headline test metrics once completed.")
    # From the execution's history (Step Functions GetExecutionHistory), read on each GET /status: where the job
    # is in the state machine. None when the history cannot be read (not started yet, or no access).
    current_step: str | None = Field(default=None, description="The state machine's state the execution is in "
                                     "(or ended in): MarkJobRunning, TrainModel, GateChallenger, ...")
    steps: list[str] | None = Field(default=None, description="The states the execution entered so far, in order.")


class JobSummary(LazyModel):
    process_id: str
    indicator: Indicator
    machine_name: str
    status: JobStatus
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None
    error_message: str | None = None


class JobListResponse(LazyModel):
    jobs: list[JobSummary]
    next_token: str | None = Field(default=None, description="Pass as ?next_token= to get the next page.")


class MachineSummary(LazyModel):
    machine_name: str
    first_timestamp: datetime
    last_timestamp: datetime
    rows: int
    columns: list[str]


class MachineListResponse(LazyModel):
    machines: list[MachineSummary]


class ErrorResponse(LazyModel):
    """Every 4xx/5xx body: the status again, and either a message or a list of {loc, msg, type} entries."""

    statusCode: int
    detail: str | list[dict[str, Any]]


class HealthResponse(LazyModel):
    status: str = "ok"
    version: str


# ---------------------------------------------------------------- registry

VersionId = Annotated[str, StringConstraints(pattern=r"^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}$")]


class ModelVersionSummary(LazyModel):
    machine_name: str
    indicator: Indicator
    version: str
    status: str = Field(description="candidate, champion, archived or rejected")
    status_reason: str | None = None
    decided_by: str | None = None
    override: bool = Field(default=False, description="Made champion by a person over the gate's decision (see "
                           "POST .../promote); decided_by and status_reason say who and why.")
    trained_at: datetime | None = None
    process_id: str | None = None
    artifact_uri: str
    artifact_sha256: str
    metrics: dict[str, Any] | None = None
    feature_names: list[str] = Field(default_factory=list, description="The model's features, in order: the raw "
                                     "sensors, then '<sensor>__<statistic>_<N>min' (the rolling windows' recipe).")
    report_url: str | None = Field(default=None, description="A presigned HTTPS GET of the model's HTML report, "
                                   "valid for a few minutes; null when the version has no report.")


class ModelListResponse(LazyModel):
    versions: list[ModelVersionSummary]


class PromotionRecord(LazyModel):
    from_version: str | None
    to_version: str
    reason: str
    promoted_by: str
    at: datetime
    override: bool = Field(default=False, description="A person promoted a version the gate had rejected or "
                           "never decided on.")
    overridden_status: str | None = Field(default=None, description="With override: the version's status then "
                                          "(rejected or candidate).")


class LivePerformance(LazyModel):
    """The champion's performance on its captured predictions (as of its latest drift check) beside the same
    figures on its test period at training."""

    checked_at: datetime | None = None
    window_minutes: float | None = Field(default=None, description="The label window a failure is judged on.")
    live_recall: float | None = Field(default=None, description="Failures with an alarm in their label window, "
                                      "over the failures with a captured prediction there.")
    test_recall: float | None = Field(default=None, description="The same on the test period (events caught).")
    live_false_alarm_rate: float | None = Field(default=None, description="Settled alarms no failure followed.")
    test_false_alarm_rate: float | None = Field(default=None, description="1 - precision on the test period.")
    live_failures: int = 0
    test_failures: int | None = None
    recall_floor: float | None = None
    concept_drift: bool = False


class ChampionResponse(LazyModel):
    champion: ModelVersionSummary
    promoted_by: str | None = None
    reason: str | None = None
    updated_at: datetime | None = None
    history: list[PromotionRecord] = Field(default_factory=list)
    last_drift_check: dict[str, Any] | None = Field(
        default=None, description="The champion's latest drift check: PSI of recent data against its training data.")
    live_performance: LivePerformance | None = Field(
        default=None, description="Live recall and false-alarm rate beside the test-time ones (none before the "
        "first drift check that read captured predictions).")


MIN_OVERRIDE_REASON = 20
MIN_OVERRIDE_WORDS = 3


class PromoteRequest(LazyModel):
    """Body of ``POST /models/{machine}/{indicator}/promote``. A former champion (``archived``) comes back
    without more ado: the gate passed it once. A version the gate rejected, or a ``candidate`` it never
    decided on, needs ``override`` and a reason that says why, both recorded with the caller."""

    model_config = ConfigDict(extra="forbid")

    version: VersionId = Field(description="The version to make champion (a rollback names an older one).")
    # Before reason: reason's validator reads it.
    override: bool = Field(default=False, description="Promote over the gate: required for a version whose status "
                           f"is rejected or candidate; the reason must then say why (at least {MIN_OVERRIDE_REASON} "
                           f"characters, {MIN_OVERRIDE_WORDS} distinct words).")
    reason: Annotated[str, StringConstraints(min_length=3, max_length=500, strip_whitespace=True)]

    @field_validator("reason")
    @classmethod
    def _an_override_says_why(cls, value: str, info: ValidationInfo) -> str:
        words = {word.lower() for word in value.split()}
        if info.data.get("override") and (len(value) < MIN_OVERRIDE_REASON or len(words) < MIN_OVERRIDE_WORDS):
            raise ValueError(f"an override must say why: at least {MIN_OVERRIDE_REASON} characters and "
                             f"{MIN_OVERRIDE_WORDS} distinct words")
        return value


class PromoteResponse(LazyModel):
    machine_name: str
    indicator: Indicator
    champion_version: str
    previous_version: str | None


# ---------------------------------------------------------------- inference

# What one request may hold: the records, the keys of each (a model reads its sensors and the timestamp;
# anything else is ignored but still has to be parsed), and the length of a text value (a timestamp, or a
# reading sent as text). Together with the 10 MB payload limit, they bound what a request can make the
# function parse and log.
MAX_PREDICT_RECORDS = 1000
MAX_RECORD_KEYS = 256
MAX_RECORD_KEY_LENGTH = 128
MAX_TEXT_VALUE_LENGTH = 64


def _bounded_text(value: float | int | str | None) -> float | int | str | None:
    if isinstance(value, str) and len(value) > MAX_TEXT_VALUE_LENGTH:
        raise ValueError(f"a text value has at most {MAX_TEXT_VALUE_LENGTH} characters")
    return value


TelemetryValue = Annotated[float | int | str | None, AfterValidator(_bounded_text)]
ColumnName = Annotated[str, StringConstraints(max_length=MAX_RECORD_KEY_LENGTH)]
TelemetryRecord = Annotated[
    dict[ColumnName, TelemetryValue],
    Field(max_length=MAX_RECORD_KEYS, description=f"At most {MAX_RECORD_KEYS} keys; text values at most "
          f"{MAX_TEXT_VALUE_LENGTH} characters.")]


class DataFrameSplit(LazyModel):
    """MLflow's ``dataframe_split`` input (what pandas' ``DataFrame.to_dict(orient="split")`` writes): the column
    names once, then one row of values per record, in time order."""

    model_config = ConfigDict(extra="forbid")

    columns: Annotated[list[ColumnName], Field(min_length=1, max_length=MAX_RECORD_KEYS)]
    data: Annotated[list[Annotated[list[TelemetryValue], Field(max_length=MAX_RECORD_KEYS)]],
                    Field(min_length=1, max_length=MAX_PREDICT_RECORDS, fail_fast=True,
                          description="Rows, each with one value per column.")]
    index: list[int | str] | None = Field(default=None, description="pandas' row labels; ignored (rows are "
                                          "taken in the order sent).")

    @model_validator(mode="after")
    def _rectangular(self) -> DataFrameSplit:
        if len(set(self.columns)) != len(self.columns):
            raise ValueError("columns must not repeat a name")
        width = len(self.columns)
        for position, row in enumerate(self.data):
            if len(row) != width:
                raise ValueError(f"row {position} has {len(row)} values for {width} columns")
        if self.index is not None and len(self.index) != len(self.data):
            raise ValueError(f"index has {len(self.index)} labels for {len(self.data)} rows")
        return self


class PredictRequest(LazyModel):
    """Telemetry in time order (send the last hour or so: rolling features need recent history), either as
    ``records`` (one object per reading, MLflow's ``dataframe_records``) or as ``dataframe_split`` (column names
    and rows, MLflow's column-oriented form)."""

    model_config = ConfigDict(extra="forbid")

    machine_name: MachineName = Field(description="The model's name: the machine's, or the fleet's.")
    indicator: Indicator
    # fail_fast: the first bad record is reported, not every one (a 422 listing each of 1000 bad records
    # could outgrow the response limit).
    records: Annotated[list[TelemetryRecord], Field(min_length=1, max_length=MAX_PREDICT_RECORDS,
                                                    fail_fast=True)] | None = None
    dataframe_split: DataFrameSplit | None = None

    @model_validator(mode="after")
    def _one_form(self) -> PredictRequest:
        if (self.records is None) == (self.dataframe_split is None):
            raise ValueError("send the telemetry either as 'records' or as 'dataframe_split', exactly one of them")
        return self

    def __repr_args__(self) -> Any:
        """What the request is, not its every value: Powertools formats the route's arguments into a debug
        message on every call, logged or not (1,000 records: 14 ms, more than the model)."""
        yield "machine_name", self.machine_name
        yield "indicator", self.indicator
        yield "rows", self.row_count

    @property
    def row_count(self) -> int:
        return len(self.records) if self.records is not None else len(self._split.data)

    def columns(self, names: Sequence[str]) -> dict[str, list[Any]]:
        """The values of each of ``names`` that the request has (a record without the key: None), in row order;
        a name no record has is left out. Nothing else of the request is copied."""
        if self.records is not None:
            records = self.records
            return {name: [record.get(name) for record in records] for name in names
                    if any(name in record for record in records)}
        split = self._split
        positions = {name: split.columns.index(name) for name in names if name in split.columns}
        return {name: [row[at] for row in split.data] for name, at in positions.items()}

    @property
    def _split(self) -> DataFrameSplit:
        assert self.dataframe_split is not None  # _one_form: no records, so a split
        return self.dataframe_split


class Prediction(LazyModel):
    prediction: float = Field(description="status: 1 = pre-failure, 0 = normal; health: minutes to failure")
    probability: float | None = Field(default=None, description="status only: the model's failure score")


class PredictResponse(LazyModel):
    machine_name: str
    indicator: Indicator
    model_version: str
    trained_at: datetime | None
    predictions: list[Prediction]


# ---------------------------------------------------------------- data validation


class ValidateRequest(TrainRequest):
    """Body of ``POST /validate``: what ``POST /train`` takes. The data checks training runs before its search
    (read, clean, label, featurize, pool, split) run on it, and nothing is trained or written."""


class MachineDataCheck(LazyModel):
    machine_name: str
    rows_read: int = Field(description="Telemetry rows in the range.")
    rows_valid: int = Field(description="Rows left after validation (what training would use).")
    invalid_rows: dict[str, int] = Field(description="Rows dropped, by reason.")
    impossible_by_column: dict[str, int] = Field(default_factory=dict,
                                                 description="Impossible values found, by sensor column.")
    failure_events: int | None = Field(default=None, description="Failure episodes found (None: not reached).")
    error: str | None = Field(default=None, description="Why this machine's data cannot train: the error's name "
                              "and message, as a training job would fail with it.")


class ValidateResponse(LazyModel):
    machine_name: str
    indicator: Indicator
    failure_events_source: FailureEventSource
    would_succeed: bool = Field(description="Whether a training job on this data would pass every check made "
                                "before the search (the search itself can still find too few events per fold).")
    error_type: str | None = Field(default=None, description="The error a job would fail with "
                                   "(NoTrainingDataError, NoFailureEventsError, InsufficientDataError, ...).")
    error_message: str | None = None
    rows_usable: int | None = Field(default=None, description="Rows with a known target, pooled.")
    machines: list[MachineDataCheck]


# ---------------------------------------------------------------- retraining (logic.retrain_runs)


class RetrainRequest(LazyModel):
    """``POST /retrain``: one model (``machine_name`` and ``indicator``) or every champion (``all``)."""

    model_config = ConfigDict(extra="forbid")

    machine_name: MachineName | None = None
    indicator: Indicator | None = None
    all: bool = False
    force: bool = Field(default=False, description="Retrain whatever the checks say (the runbook's option 1).")


class RetrainStartResponse(LazyModel):
    run_id: str
    execution_arn: str


class TriggerListResponse(LazyModel):
    triggers: list[dict[str, Any]]


class RetrainRunResponse(LazyModel):
    run_id: str
    status: str  # running | succeeded | failed
    summary: dict[str, Any] | None = None
    error_message: str | None = None
    created_at: str
    triggers: list[dict[str, Any]]


class ResolveTriggersRequest(LazyModel):
    """``POST /triggers/resolve``: the named triggers, or every failed one (of ``machine_name`` if given)."""

    model_config = ConfigDict(extra="forbid")

    trigger_ids: Annotated[list[Annotated[str, StringConstraints(min_length=1, max_length=64)]],
                           Field(min_length=1, max_length=100)] | None = None
    all_failed: bool = False
    machine_name: MachineName | None = None
    reason: Annotated[str, StringConstraints(min_length=3, max_length=1000)]


class ResolveTriggersResponse(LazyModel):
    resolved: list[dict[str, Any]]
