"""The API's use cases: submit a training job, read one, list them, list the machines with data."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable
from datetime import date, datetime
from typing import Protocol

from modelforge.domain.compute import (
    ComputeChoice,
    ComputeConfig,
    choose_compute,
    estimate_size,
    features_per_sensor,
    unavailable,
)
from modelforge.domain.feature_config import FeatureConfig
from modelforge.errors import (
    ComputeUnavailableError,
    ExecutionStartError,
    InvalidRequestError,
    JobTransitionError,
    TooManyJobsError,
)
from modelforge.jobs import Job, JobStatus
from modelforge.logic.clock import utc_now
from modelforge.observability import logger
from modelforge.registry import ModelName, ModelVersion
from modelforge.schemas import (
    JobListResponse,
    JobStatusResponse,
    JobSummary,
    MachineListResponse,
    MachineSummary,
    TrainRequest,
    TrainResponse,
)

# The metrics GET /status shows; the full set stays in the models table.
HEADLINE_METRICS = ("recall", "precision", "f1", "f2", "pr_auc", "roc_auc", "threshold", "rmse", "mae", "r2")
# What a 429 for too many jobs in flight tells the caller to wait: a training takes minutes, so polling faster
# would only spend requests.
RETRY_AFTER_SECONDS = 60


class Jobs(Protocol):
    def create(self, job: Job) -> None: ...
    def get(self, process_id: str) -> Job: ...
    def mark_failed(self, process_id: str, reason: str, now: datetime) -> None: ...
    def count_in_flight(self) -> int: ...
    def list(self, *, machine_name: str | None, status: JobStatus | None, limit: int,
             next_token: str | None) -> tuple[list[Job], str | None]: ...


class Catalog(Protocol):
    def describe(self, machine_name: str) -> MachineSummary | None: ...
    def list_machines(self) -> list[MachineSummary]: ...


class Executions(Protocol):
    def start(self, name: str, payload: dict[str, object]) -> str: ...
    def arn_for(self, name: str) -> str: ...


class Registry(Protocol):
    def get_version(self, name: ModelName, version: str) -> ModelVersion | None: ...


def submit_training(
    request: TrainRequest, *, jobs: Jobs, catalog: Catalog, executions: Executions,
    max_in_flight: int | None = None, now: Callable[[], datetime] = utc_now,
    new_id: Callable[[], str] = lambda: str(uuid.uuid4()), compute_config: ComputeConfig | None = None,
) -> TrainResponse:
    """A new pending job and its execution. ``max_in_flight`` (None: unbounded): at or above that many jobs
    pending or running, TooManyJobsError, after the request is validated (a bad request is told so rather
    than to retry) and before anything is written."""
    check_machines(request, catalog)
    choice = plan_compute(request, catalog, compute_config or ComputeConfig())
    if max_in_flight is not None:
        _check_capacity(jobs, max_in_flight)

    created = now()
    job = Job(process_id=new_id(), indicator=request.indicator, machine_name=request.machine_name,
              status=JobStatus.PENDING, created_at=created, updated_at=created,
              start_date=request.start_date, end_date=request.end_date, machine_names=request.machine_names,
              failure_events=request.failure_events, options=request.options, compute=choice.compute.value,
              compute_reason=choice.reason, compute_estimate=choice.estimate.summary(),
              compute_class=choice.batch_class.value if choice.batch_class else None,
              compute_class_reason=choice.batch_class_reason)
    jobs.create(job)
    try:
        executions.start(job.process_id, _execution_input(job.process_id, choice))
    except Exception as error:
        reason = f"could not start the training execution: {error}"
        # Not logged here: the HTTP error handler logs the 503 once, with this error chained to it.
        # If something else already finished the job, its terminal state stands.
        with contextlib.suppress(JobTransitionError):
            jobs.mark_failed(job.process_id, reason, now())
        raise ExecutionStartError(f"job {job.process_id} failed: {reason}") from error
    logger.info("training job submitted", extra={"process_id": job.process_id, "machine_name": job.machine_name})
    return TrainResponse(process_id=job.process_id, status=job.status)


def _execution_input(process_id: str, choice: ComputeChoice) -> dict[str, object]:
    """Only ids and where to run travel: ChooseCompute routes on ``compute`` and, on Batch CPU, ``compute_class``."""
    payload: dict[str, object] = {"process_id": process_id, "compute": choice.compute.value}
    if choice.batch_class is not None:
        payload["compute_class"] = choice.batch_class.value
    return payload


def plan_compute(request: TrainRequest, catalog: Catalog, config: ComputeConfig) -> ComputeChoice:
    """Where the job runs: its size from the machines' manifests and the recipe's features per sensor.
    InvalidRequestError on ``compute`` when this stack cannot run what was asked."""
    why_not = unavailable(request.compute, config)
    if why_not is not None:
        raise ComputeUnavailableError("compute", why_not)
    summaries = [catalog.describe(name) for name in request.machine_names or [request.machine_name]]
    manifests = [(s.rows, s.columns) for s in summaries if s is not None]
    features = FeatureConfig()
    options = request.options
    windows = (options.feature_windows_minutes if options else None) or features.windows_minutes
    statistics = (options.feature_statistics if options else None) or features.statistics
    per_sensor = features_per_sensor(len(windows), len(statistics), features.trend_window_minutes is not None)
    return choose_compute(request.compute, estimate_size(manifests, per_sensor, config), config)


def check_machines(request: TrainRequest, catalog: Catalog) -> None:
    """The request's machines have data that overlaps its range (InvalidRequestError naming the field if not):
    what POST /train and POST /validate check before anything else."""
    if request.machine_names:
        _check_fleet(request, catalog)
        return
    machine = catalog.describe(request.machine_name)
    if machine is None:
        raise InvalidRequestError("machine_name", f"no processed data for machine '{request.machine_name}' "
                                  "(GET /machines lists the machines that have data)")
    _check_overlap(request, machine.first_timestamp.date(), machine.last_timestamp.date())


def _check_capacity(jobs: Jobs, max_in_flight: int) -> None:
    """The cost guard: no new job while ``max_in_flight`` are pending or running. Soft: submissions racing
    each other (or the index's replication) may each see room, so the bound can be passed by a few."""
    in_flight = jobs.count_in_flight()
    if in_flight >= max_in_flight:
        raise TooManyJobsError(in_flight, max_in_flight, RETRY_AFTER_SECONDS)


def _check_fleet(request: TrainRequest, catalog: Catalog) -> None:
    """A fleet model's name is its own (it would otherwise share a registry entry with a machine's model), and
    every one of its machines has data."""
    assert request.machine_names is not None
    if request.machine_name in request.machine_names or catalog.describe(request.machine_name) is not None:
        raise InvalidRequestError("machine_name", f"'{request.machine_name}' is a machine with data; a fleet model "
                                  "(machine_names given) needs a name of its own")
    described = {name: catalog.describe(name) for name in request.machine_names}
    unknown = [name for name, summary in described.items() if summary is None]
    if unknown:
        raise InvalidRequestError("machine_names", f"no processed data for machine(s) {', '.join(unknown[:10])}"
                                  f"{' ...' if len(unknown) > 10 else ''} (GET /machines lists the machines "
                                  "that have data)")
    summaries = [s for s in described.values() if s is not None]
    _check_overlap(request, min(s.first_timestamp.date() for s in summaries),
                   max(s.last_timestamp.date() for s in summaries))


def _check_overlap(request: TrainRequest, first: date, last: date) -> None:
    if request.start_date is not None and request.start_date > last:
        raise InvalidRequestError("start_date", f"is after the last data ({last}); data covers "
                                  f"{first} to {last}")
    if request.end_date is not None and request.end_date < first:
        raise InvalidRequestError("end_date", f"is before the first data ({first}); data covers "
                                  f"{first} to {last}")


class ExecutionProgress(Protocol):
    def steps(self, execution_arn: str) -> list[str] | None: ...


def get_job_status(process_id: str, *, jobs: Jobs, registry: Registry, executions: Executions,
                   progress: ExecutionProgress | None = None) -> JobStatusResponse:
    """The job, its headline metrics once completed, and (with ``progress``) the states its execution entered:
    what ``modelforge train --wait`` shows as it runs."""
    job = jobs.get(process_id)
    metrics = None
    if job.status is JobStatus.COMPLETED and job.model_id:
        version = registry.get_version(ModelName(job.machine_name, job.indicator), job.model_id)
        all_metrics = (version.metrics if version else None) or {}
        metrics = {k: all_metrics[k] for k in HEADLINE_METRICS if k in all_metrics}
    # Until the state machine records it, the execution's ARN follows from its name (the process_id).
    arn = job.execution_arn or executions.arn_for(job.process_id)
    steps = progress.steps(arn) if progress is not None else None
    return JobStatusResponse(**{**job.model_dump(), "execution_arn": arn}, metrics=metrics, steps=steps,
                             current_step=steps[-1] if steps else None)


def list_jobs(*, jobs: Jobs, machine_name: str | None, status: JobStatus | None, limit: int,
              next_token: str | None) -> JobListResponse:
    try:
        page, token = jobs.list(machine_name=machine_name, status=status, limit=limit, next_token=next_token)
    except ValueError as error:
        raise InvalidRequestError("next_token", str(error), location="query") from error
    summaries = [JobSummary.model_validate(job.model_dump()) for job in page]
    return JobListResponse(jobs=summaries, next_token=token)


def list_machines(*, catalog: Catalog) -> MachineListResponse:
    return MachineListResponse(machines=catalog.list_machines())
