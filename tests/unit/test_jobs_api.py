"""The API's use cases (modelforge.logic.jobs_api) against in-memory fakes of their data-access objects."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelforge.errors import ExecutionStartError, InvalidRequestError, JobNotFoundError, JobTransitionError
from modelforge.jobs import Indicator, Job, JobStatus, can_transition
from modelforge.logic import jobs_api
from modelforge.registry import ModelName, ModelVersion
from modelforge.schemas import MachineSummary, TrainRequest

T0 = datetime(2025, 6, 1, 12, 0, 0, 123_456, tzinfo=UTC)
MACHINE = "MOTOBOMBA-007"
DATA_FIRST = datetime(2025, 1, 1, 0, 0, tzinfo=UTC)
DATA_LAST = datetime(2025, 8, 31, 23, 59, tzinfo=UTC)
STATE_MACHINE_ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:training"


# ---------------------------------------------------------------- fakes


class FakeJobs:
    def __init__(self) -> None:
        self.items: dict[str, Job] = {}
        self.list_calls: list[dict[str, Any]] = []
        self.counted = 0

    def create(self, job: Job) -> None:
        assert job.process_id not in self.items, "create must never overwrite a job"
        self.items[job.process_id] = job

    def get(self, process_id: str) -> Job:
        try:
            return self.items[process_id]
        except KeyError:
            raise JobNotFoundError(process_id) from None

    def mark_failed(self, process_id: str, reason: str, now: datetime) -> None:
        job = self.items.get(process_id)
        if job is None or not can_transition(job.status, JobStatus.FAILED):
            raise JobTransitionError(process_id)
        self.items[process_id] = job.model_copy(
            update={
                "status": JobStatus.FAILED,
                "error_message": reason,
                "updated_at": now,
                "finished_at": now,
            }
        )

    def count_in_flight(self) -> int:
        self.counted += 1
        return sum(j.status in (JobStatus.PENDING, JobStatus.RUNNING) for j in self.items.values())

    def list(
        self, *, machine_name: str | None, status: JobStatus | None, limit: int, next_token: str | None
    ) -> tuple[list[Job], str | None]:
        self.list_calls.append(
            {"machine_name": machine_name, "status": status, "limit": limit, "next_token": next_token}
        )
        if next_token is not None and not next_token.isdigit():
            raise ValueError("next_token is not a token this API issued")
        start = int(next_token or 0)
        jobs = sorted(
            (
                j
                for j in self.items.values()
                if machine_name in (None, j.machine_name) and status in (None, j.status)
            ),
            key=lambda j: j.created_at,
            reverse=True,
        )
        page = jobs[start : start + limit]
        return page, str(start + limit) if start + limit < len(jobs) else None


class FakeCatalog:
    def __init__(self, *machines: MachineSummary) -> None:
        self.machines = {m.machine_name: m for m in machines}

    def describe(self, machine_name: str) -> MachineSummary | None:
        return self.machines.get(machine_name)

    def list_machines(self) -> list[MachineSummary]:
        return [self.machines[name] for name in sorted(self.machines)]


class FakeExecutions:
    def __init__(self, jobs: FakeJobs, error: Exception | None = None) -> None:
        self.jobs = jobs
        self.error = error
        self.started: list[tuple[str, dict[str, object], JobStatus | None]] = []

    def start(self, name: str, payload: dict[str, object]) -> str:
        # Record whether the job already existed when its execution was started (it must: the state
        # machine's first step updates it).
        existing = self.jobs.items.get(name)
        self.started.append((name, payload, existing.status if existing else None))
        if self.error is not None:
            raise self.error
        return self.arn_for(name)

    def arn_for(self, name: str) -> str:
        return STATE_MACHINE_ARN.replace(":stateMachine:", ":execution:") + f":{name}"


class FakeRegistry:
    def __init__(self, versions: dict[tuple[ModelName, str], ModelVersion] | None = None) -> None:
        self.versions = versions or {}
        self.requests: list[tuple[ModelName, str]] = []

    def get_version(self, name: ModelName, version: str) -> ModelVersion | None:
        self.requests.append((name, version))
        return self.versions.get((name, version))


def registered(name: ModelName, version: str, metrics: dict[str, Any]) -> dict[tuple[ModelName, str], ModelVersion]:
    """A registry holding one version of ``name`` with these metrics."""
    typed = ModelVersion(model_name=name, version=version, machine_name=name.machine_name, indicator=name.indicator,
                         artifact_uri=f"s3://models/model/{version}.ubj", artifact_sha256="0" * 64, metrics=metrics)
    return {(name, version): typed}


def machine(name: str = MACHINE, first: datetime = DATA_FIRST, last: datetime = DATA_LAST) -> MachineSummary:
    return MachineSummary(
        machine_name=name,
        first_timestamp=first,
        last_timestamp=last,
        rows=1000,
        columns=["timestamp", "Eng_RPM_variation_percentage"],
    )


def request(**fields: Any) -> TrainRequest:
    return TrainRequest.model_validate({"indicator": "status", "machine_name": MACHINE, **fields})


def ids(*values: str) -> Any:
    remaining = list(values)
    return lambda: remaining.pop(0)


def clock(*instants: datetime) -> Any:
    remaining = list(instants)
    return lambda: remaining.pop(0) if len(remaining) > 1 else remaining[0]


@pytest.fixture
def jobs() -> FakeJobs:
    return FakeJobs()


def submit(
    jobs: FakeJobs,
    req: TrainRequest,
    *,
    executions: FakeExecutions | None = None,
    catalog: FakeCatalog | None = None,
    process_id: str = "job-1",
    now: Any = None,
) -> jobs_api.TrainResponse:
    return jobs_api.submit_training(
        req,
        jobs=jobs,
        catalog=catalog or FakeCatalog(machine()),
        executions=executions or FakeExecutions(jobs),
        now=now or clock(T0),
        new_id=ids(process_id),
    )


# ---------------------------------------------------------------- submit_training: jobs in flight


def _in_flight(jobs: FakeJobs, *statuses: JobStatus) -> None:
    for i, status in enumerate(statuses):
        jobs.items[f"old-{i}"] = Job(process_id=f"old-{i}", indicator=Indicator.STATUS, machine_name=MACHINE,
                                     status=status, created_at=T0, updated_at=T0)


def test_at_the_bound_of_jobs_in_flight_nothing_is_written_or_started(jobs: FakeJobs) -> None:
    from modelforge.errors import TooManyJobsError

    _in_flight(jobs, JobStatus.PENDING, JobStatus.RUNNING, JobStatus.COMPLETED, JobStatus.FAILED)
    executions = FakeExecutions(jobs)

    with pytest.raises(TooManyJobsError, match=r"2 training jobs are pending or running.* at most 2") as refused:
        jobs_api.submit_training(request(), jobs=jobs, catalog=FakeCatalog(machine()), executions=executions,
                                 max_in_flight=2, new_id=ids("job-1"))

    assert refused.value.retry_after_seconds == jobs_api.RETRY_AFTER_SECONDS > 0
    assert "job-1" not in jobs.items
    assert executions.started == []


def test_below_the_bound_a_job_is_submitted(jobs: FakeJobs) -> None:
    _in_flight(jobs, JobStatus.RUNNING, JobStatus.COMPLETED, JobStatus.FAILED)

    response = jobs_api.submit_training(request(), jobs=jobs, catalog=FakeCatalog(machine()),
                                        executions=FakeExecutions(jobs), max_in_flight=2, new_id=ids("job-1"))

    assert response.process_id == "job-1" and jobs.items["job-1"].status is JobStatus.PENDING


def test_without_a_bound_jobs_in_flight_are_not_counted(jobs: FakeJobs) -> None:
    _in_flight(jobs, *[JobStatus.RUNNING] * 20)

    submit(jobs, request())

    assert jobs.counted == 0


def test_a_bad_request_at_the_bound_is_told_what_is_wrong_not_to_retry(jobs: FakeJobs) -> None:
    _in_flight(jobs, JobStatus.RUNNING)

    with pytest.raises(InvalidRequestError) as invalid:
        jobs_api.submit_training(request(machine_name="MOTOBOMBA-404"), jobs=jobs, catalog=FakeCatalog(machine()),
                                 executions=FakeExecutions(jobs), max_in_flight=1)
    assert invalid.value.field == "machine_name"


# ---------------------------------------------------------------- submit_training


def test_submit_creates_a_pending_job_and_starts_an_execution_named_by_its_process_id(jobs: FakeJobs) -> None:
    executions = FakeExecutions(jobs)
    req = request(indicator="health", start_date="2025-02-01", end_date="2025-03-01")

    response = submit(jobs, req, executions=executions, process_id="a1b2")

    assert response.process_id == "a1b2"
    assert response.status is JobStatus.PENDING
    job = jobs.items["a1b2"]
    assert job.status is JobStatus.PENDING
    assert job.indicator is Indicator.HEALTH
    assert job.machine_name == MACHINE
    assert (job.start_date, job.end_date) == (date(2025, 2, 1), date(2025, 3, 1))
    assert job.created_at == job.updated_at == T0
    assert job.finished_at is None and job.error_message is None
    # Exactly one execution, named by the process_id, carrying only the id and where it runs, started after
    # the job existed; the job says where and why.
    assert executions.started == [("a1b2", {"process_id": "a1b2", "compute": "lambda"}, JobStatus.PENDING)]
    assert job.compute == "lambda" and job.compute_reason and job.compute_estimate is not None


def test_each_submission_gets_its_own_job_and_execution(jobs: FakeJobs) -> None:
    executions = FakeExecutions(jobs)
    submit(jobs, request(), executions=executions, process_id="first")
    submit(jobs, request(), executions=executions, process_id="second")

    assert set(jobs.items) == {"first", "second"}
    assert [name for name, _, _ in executions.started] == ["first", "second"]


def test_the_default_id_is_a_fresh_uuid(jobs: FakeJobs) -> None:
    catalog, executions = FakeCatalog(machine()), FakeExecutions(jobs)
    first = jobs_api.submit_training(request(), jobs=jobs, catalog=catalog, executions=executions)
    second = jobs_api.submit_training(request(), jobs=jobs, catalog=catalog, executions=executions)

    assert first.process_id != second.process_id
    assert all(len(pid) == 36 and pid.count("-") == 4 for pid in (first.process_id, second.process_id))


def test_an_unknown_machine_is_an_invalid_machine_name_and_creates_nothing(jobs: FakeJobs) -> None:
    executions = FakeExecutions(jobs)
    with pytest.raises(InvalidRequestError) as raised:
        submit(jobs, request(machine_name="MOTOBOMBA-999"), executions=executions)

    assert raised.value.field == "machine_name"
    assert raised.value.location == "body"
    assert "MOTOBOMBA-999" in raised.value.reason
    assert jobs.items == {}
    assert executions.started == []


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"start_date": "2025-09-01"}, "start_date"),  # starts the day after the last data
        ({"start_date": "2026-01-01", "end_date": "2026-02-01"}, "start_date"),
        ({"end_date": "2024-12-31"}, "end_date"),  # ends the day before the first data
        ({"start_date": "2024-01-01", "end_date": "2024-06-30"}, "end_date"),
    ],
)
def test_a_range_outside_the_data_names_the_offending_field(
    jobs: FakeJobs, fields: dict[str, str], field: str
) -> None:
    executions = FakeExecutions(jobs)
    with pytest.raises(InvalidRequestError) as raised:
        submit(jobs, request(**fields), executions=executions)

    assert raised.value.field == field
    assert "2025-01-01" in raised.value.reason and "2025-08-31" in raised.value.reason  # says what exists
    assert jobs.items == {} and executions.started == []


@pytest.mark.parametrize(
    "fields",
    [
        {"start_date": "2025-08-31"},  # the last day of data
        {"end_date": "2025-01-01"},  # the first day of data
        {"start_date": "2024-01-01", "end_date": "2026-12-31"},  # covers all of it
        {},
    ],
)
def test_a_range_touching_the_data_is_accepted(jobs: FakeJobs, fields: dict[str, str]) -> None:
    assert submit(jobs, request(**fields)).status is JobStatus.PENDING


@given(
    start=st.one_of(st.none(), st.dates(date(2024, 6, 1), date(2026, 6, 1))),
    length=st.one_of(st.none(), st.integers(0, 400)),
)
def test_overlap_rule_property(start: date | None, length: int | None) -> None:
    end = start + timedelta(days=length) if start is not None and length is not None else None
    jobs = FakeJobs()
    req = TrainRequest(indicator=Indicator.STATUS, machine_name=MACHINE, start_date=start, end_date=end)
    overlaps = (start is None or start <= DATA_LAST.date()) and (end is None or end >= DATA_FIRST.date())
    if overlaps:
        assert submit(jobs, req).status is JobStatus.PENDING
    else:
        with pytest.raises(InvalidRequestError):
            submit(jobs, req)
        assert jobs.items == {}


def test_a_failed_start_fails_the_job_with_the_reason_and_raises(jobs: FakeJobs) -> None:
    executions = FakeExecutions(jobs, error=RuntimeError("StateMachineDoesNotExist: no such machine"))
    failed_at = T0 + timedelta(seconds=2)

    with pytest.raises(ExecutionStartError) as raised:
        submit(jobs, request(), executions=executions, process_id="p1", now=clock(T0, failed_at))

    job = jobs.items["p1"]
    assert job.status is JobStatus.FAILED  # never left pending
    assert job.error_message is not None and "StateMachineDoesNotExist: no such machine" in job.error_message
    assert job.finished_at == job.updated_at == failed_at
    assert "p1" in str(raised.value)
    assert isinstance(raised.value.__cause__, RuntimeError)


def test_a_failed_start_never_overwrites_a_job_that_already_finished(jobs: FakeJobs) -> None:
    class CompletesThenFails(FakeExecutions):
        def start(self, name: str, payload: dict[str, object]) -> str:
            # The execution did start and finish, but the response was lost: the job is terminal already.
            job = self.jobs.items[name]
            self.jobs.items[name] = job.model_copy(update={"status": JobStatus.COMPLETED})
            raise TimeoutError("read timed out")

    with pytest.raises(ExecutionStartError):
        submit(jobs, request(), executions=CompletesThenFails(jobs), process_id="p2")

    assert jobs.items["p2"].status is JobStatus.COMPLETED
    assert jobs.items["p2"].error_message is None


# ---------------------------------------------------------------- get_job_status


def make_job(
    process_id: str = "p",
    *,
    status: JobStatus = JobStatus.PENDING,
    created: datetime = T0,
    machine_name: str = MACHINE,
    **fields: Any,
) -> Job:
    return Job(
        process_id=process_id,
        indicator=fields.pop("indicator", Indicator.STATUS),
        machine_name=machine_name,
        status=status,
        created_at=created,
        updated_at=created,
        **fields,
    )


ALL_METRICS = {
    "recall": 0.8,
    "precision": 0.5,
    "f1": 0.61,
    "f2": 0.71,
    "pr_auc": 0.66,
    "roc_auc": 0.9,
    "threshold": 0.35,
    "confusion_matrix": [[90, 2], [1, 7]],
    "support": 100,
}


def test_status_of_a_completed_job_carries_its_headline_metrics(jobs: FakeJobs) -> None:
    jobs.create(
        make_job(
            "done",
            status=JobStatus.COMPLETED,
            model_id="20250601T120000Z-done",
            bucket_address="s3://models/model/xgb.ubj",
            finished_at=T0,
        )
    )
    name = ModelName(MACHINE, Indicator.STATUS)
    registry = FakeRegistry(registered(name, "20250601T120000Z-done", ALL_METRICS))

    response = jobs_api.get_job_status("done", jobs=jobs, registry=registry, executions=FakeExecutions(jobs))

    assert registry.requests == [(name, "20250601T120000Z-done")]
    assert response.metrics == {k: v for k, v in ALL_METRICS.items() if k in jobs_api.HEADLINE_METRICS}
    assert "confusion_matrix" not in response.metrics
    assert response.status is JobStatus.COMPLETED
    assert response.bucket_address == "s3://models/model/xgb.ubj"
    assert response.model_id == "20250601T120000Z-done"


@pytest.mark.parametrize("status", [JobStatus.PENDING, JobStatus.RUNNING, JobStatus.FAILED])
def test_status_of_an_unfinished_or_failed_job_has_no_metrics(jobs: FakeJobs, status: JobStatus) -> None:
    jobs.create(make_job("p", status=status, model_id="v1"))
    registry = FakeRegistry(registered(ModelName(MACHINE, Indicator.STATUS), "v1", ALL_METRICS))

    response = jobs_api.get_job_status("p", jobs=jobs, registry=registry, executions=FakeExecutions(jobs))

    assert response.metrics is None
    assert registry.requests == []
    assert response.status is status


def test_status_derives_the_execution_arn_from_the_process_id_until_one_is_recorded(jobs: FakeJobs) -> None:
    jobs.create(make_job("pending-one"))
    executions = FakeExecutions(jobs)

    response = jobs_api.get_job_status(
        "pending-one", jobs=jobs, registry=FakeRegistry(), executions=executions
    )

    assert response.execution_arn == executions.arn_for("pending-one")
    assert response.execution_arn.endswith(":execution:training:pending-one")


def test_status_prefers_the_recorded_execution_arn(jobs: FakeJobs) -> None:
    recorded = "arn:aws:states:us-east-1:123456789012:execution:training:other-name"
    jobs.create(make_job("running-one", status=JobStatus.RUNNING, execution_arn=recorded))

    response = jobs_api.get_job_status(
        "running-one", jobs=jobs, registry=FakeRegistry(), executions=FakeExecutions(jobs)
    )

    assert response.execution_arn == recorded


def test_status_of_an_unknown_job_raises_not_found(jobs: FakeJobs) -> None:
    with pytest.raises(JobNotFoundError):
        jobs_api.get_job_status("nope", jobs=jobs, registry=FakeRegistry(), executions=FakeExecutions(jobs))


# ---------------------------------------------------------------- list_jobs / list_machines


def test_list_jobs_passes_filters_through_and_returns_summaries_with_the_next_token(jobs: FakeJobs) -> None:
    for i in range(3):
        jobs.create(make_job(f"j{i}", created=T0 + timedelta(minutes=i)))
    jobs.create(make_job("other", machine_name="OTHER-1", created=T0 + timedelta(hours=1)))

    first = jobs_api.list_jobs(
        jobs=jobs, machine_name=MACHINE, status=JobStatus.PENDING, limit=2, next_token=None
    )
    second = jobs_api.list_jobs(
        jobs=jobs, machine_name=MACHINE, status=JobStatus.PENDING, limit=2, next_token=first.next_token
    )

    assert jobs.list_calls[0] == {
        "machine_name": MACHINE,
        "status": JobStatus.PENDING,
        "limit": 2,
        "next_token": None,
    }
    assert [j.process_id for j in first.jobs] == ["j2", "j1"]
    assert first.next_token is not None
    assert [j.process_id for j in second.jobs] == ["j0"]
    assert second.next_token is None
    assert first.jobs[0].machine_name == MACHINE and first.jobs[0].status is JobStatus.PENDING


def test_list_jobs_maps_a_bad_next_token_to_an_invalid_query_parameter(jobs: FakeJobs) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        jobs_api.list_jobs(jobs=jobs, machine_name=None, status=None, limit=10, next_token="not-a-token")

    assert raised.value.field == "next_token"
    assert raised.value.location == "query"


def test_list_machines_returns_the_catalog(jobs: FakeJobs) -> None:
    catalog = FakeCatalog(machine("B-2"), machine("A-1"))

    response = jobs_api.list_machines(catalog=catalog)

    assert [m.machine_name for m in response.machines] == ["A-1", "B-2"]


# ---------------------------------------------------------------- fleets


def fleet_request(**fields: Any) -> TrainRequest:
    body = {"indicator": "status", "machine_name": "PUMP-FLEET", "machine_names": [MACHINE, "MOTOBOMBA-008"],
            "failure_events": "records", **fields}
    return TrainRequest.model_validate(body)


def test_a_fleet_job_records_its_machines_event_source_and_options(jobs: FakeJobs) -> None:
    catalog = FakeCatalog(machine(), machine("MOTOBOMBA-008"))
    req = fleet_request(options={"label_window_minutes": 300, "holdout": "machines"})
    jobs_api.submit_training(req, jobs=jobs, catalog=catalog, executions=FakeExecutions(jobs), new_id=lambda: "f1")

    job = jobs.items["f1"]
    assert job.machine_name == "PUMP-FLEET"
    assert job.machine_names == [MACHINE, "MOTOBOMBA-008"]
    assert job.failure_events.value == "records"
    assert job.options is not None and job.options.label_window_minutes == 300


@pytest.mark.parametrize(("fields", "field", "words"), [
    ({"machine_names": [MACHINE, "MOTOBOMBA-404"]}, "machine_names", "MOTOBOMBA-404"),
    ({"machine_name": MACHINE}, "machine_name", "needs a name of its own"),
    ({"machine_name": "MOTOBOMBA-008"}, "machine_name", "needs a name of its own"),
])
def test_a_bad_fleet_names_the_field_and_creates_nothing(jobs: FakeJobs, fields: dict[str, Any], field: str,
                                                         words: str) -> None:
    catalog = FakeCatalog(machine(), machine("MOTOBOMBA-008"))
    executions = FakeExecutions(jobs)
    with pytest.raises(InvalidRequestError) as raised:
        jobs_api.submit_training(fleet_request(**fields), jobs=jobs, catalog=catalog, executions=executions)
    assert raised.value.field == field and words in raised.value.reason
    assert jobs.items == {} and executions.started == []


def test_holding_out_machines_needs_a_fleet() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=r"options\.holdout 'machines' holds out whole machines"):
        request(options={"holdout": "machines"})
    assert fleet_request(options={"holdout": "machines"}).options is not None


@pytest.mark.parametrize(("fields", "where"), [
    ({"machine_names": [MACHINE, MACHINE]}, "machine_names"),
    ({"machine_names": [MACHINE]}, "machine_names"),
    ({"failure_events": "rumours"}, "failure_events"),
    ({"options": {"label_window_minutes": 0}}, "label_window_minutes"),
    ({"options": {"feature_statistics": ["mean", "mean"]}}, "feature_statistics"),
    ({"options": {"feature_statistics": ["median"]}}, "feature_statistics"),
    ({"options": {"holdout": "random"}}, "holdout"),
    ({"options": {"learning_rate": 0.3}}, "learning_rate"),
])
def test_fleet_fields_are_validated_by_the_request_model(fields: dict[str, Any], where: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as raised:
        fleet_request(**fields)
    assert any(where in map(str, error["loc"]) for error in raised.value.errors())


@pytest.mark.parametrize("compute", ["gpu", "batch"])
def test_compute_this_stack_lacks_is_refused_on_compute_before_anything_is_written(jobs: FakeJobs,
                                                                                   compute: str) -> None:
    executions = FakeExecutions(jobs)
    with pytest.raises(InvalidRequestError) as refused:
        submit(jobs, request(compute=compute), executions=executions, process_id="a1b2")
    assert refused.value.field == "compute"
    assert not jobs.items and not executions.started


def test_a_batch_job_records_its_size_class_and_the_execution_routes_on_it(jobs: FakeJobs) -> None:
    from modelforge.domain.compute import ComputeConfig

    executions = FakeExecutions(jobs)
    # Fargate's memory as small as the interpreter alone: any job's estimate is above it.
    for process_id, memory_mib, expected in (("fits", 30_720.0, "standard"), ("large", 1.0, "large")):
        jobs_api.submit_training(request(compute="batch"), jobs=jobs, catalog=FakeCatalog(machine()),
                                 executions=executions, now=clock(T0), new_id=ids(process_id),
                                 compute_config=ComputeConfig(batch_available=True, batch_cpu_memory_mib=memory_mib))
        job = jobs.items[process_id]
        assert (job.compute, job.compute_reason, job.compute_class) == ("batch", "requested 'batch'", expected)
        assert job.compute_class_reason and "Fargate" in job.compute_class_reason
        assert executions.started[-1][1] == {"process_id": process_id, "compute": "batch", "compute_class": expected}
