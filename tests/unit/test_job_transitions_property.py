"""Every job status write is conditional: a job only moves along modelforge.jobs.ALLOWED_TRANSITIONS, and a
completed or failed job never changes again, whoever writes and in whatever order.

The writers are the three the service has, exercised against moto in-process (no network), with the jobs table
created from template.yaml:
- the state machine's own ``dynamodb:updateItem`` tasks (MarkJobRunning, MarkJobCompleted, MarkJobFailed):
  their ``Parameters`` are taken from the resolved definition and executed as they are, with only the ``.$``
  paths filled in, so the real ConditionExpressions are under test, not a copy of them;
- ``JobStore.mark_failed`` (the API, when StartExecution fails);
- ``reconcile_execution`` (the EventBridge reconciler, for executions that end outside the catch paths).

A hypothesis state machine drives random sequences of these, with duplicates and replays, across several jobs
(and one process_id that never had a job), and checks the invariants after every step."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test
from moto import mock_aws

from localcloud.template import LocalStack, resolve_stack
from modelforge.adapters.job_store import JobStore
from modelforge.errors import JobTransitionError
from modelforge.jobs import ALLOWED_TRANSITIONS, TERMINAL_STATUSES, Indicator, Job, JobStatus
from modelforge.logic.reconcile import ExecutionStatusChange, reconcile_execution
from tests.conftest import isolate_from_aws

STATE_MACHINE = "TrainingStateMachine"
WRITER_STATES = ("MarkJobRunning", "MarkJobCompleted", "MarkJobFailed")
# What each of the state machine's writes moves a job to.
TARGET = {"MarkJobRunning": JobStatus.RUNNING, "MarkJobCompleted": JobStatus.COMPLETED,
          "MarkJobFailed": JobStatus.FAILED}
GHOST_ID = "00000000-0000-4000-8000-00000000dead"  # a process_id no job was ever created with
FROZEN_FIELDS = ("status", "finished_at", "bucket_address", "error_message", "model_id", "updated_at",
                 "gate_decision", "gate_reason")
EXECUTION_STATUSES = ("RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "PENDING_REDRIVE")
T0 = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)


# ------------------------------------------------------------------ the state machine's writes, as written


def _path(document: Any, path: str) -> Any:
    """A reference path (``$.a.b``) into the state input or the context object: all the definition uses."""
    value = document
    for part in path.removeprefix("$").strip(".").split("."):
        if part:
            assert isinstance(value, dict) and part in value, (
                f"the definition reads {path}, which this test's state input does not have: add it")
            value = value[part]
    return value


def fill_parameters(template: Any, state_input: dict[str, Any], context: dict[str, Any]) -> Any:
    """Resolves a Task's Parameters as Step Functions does: a ``"name.$"`` field takes the value its path
    names, ``$.`` in the state input and ``$$.`` in the context object; everything else is passed as is."""
    if isinstance(template, list):
        return [fill_parameters(v, state_input, context) for v in template]
    if not isinstance(template, dict):
        return template
    filled: dict[str, Any] = {}
    for key, value in template.items():
        if key.endswith(".$"):
            assert isinstance(value, str) and value.startswith("$"), (key, value)
            source = context if value.startswith("$$") else state_input
            filled[key[:-2]] = _path(source, value.removeprefix("$"))
        else:
            filled[key] = fill_parameters(value, state_input, context)
    return filled


def writer_states(stack: LocalStack) -> dict[str, dict[str, Any]]:
    states = stack.state_machines[STATE_MACHINE].definition["States"]
    return {name: states[name] for name in WRITER_STATES}


def test_the_writes_under_test_are_the_state_machines_conditional_updates() -> None:
    """Guards the property test below: if the definition renamed or restructured these tasks, the test would
    silently stop exercising them."""
    stack = resolve_stack()
    table_name = stack.tables["JobsTable"].name
    for name, state in writer_states(stack).items():
        assert state["Type"] == "Task"
        assert state["Resource"].endswith(":states:::dynamodb:updateItem"), name
        assert state["Parameters"]["TableName"] == table_name, name
        assert state["Parameters"]["ConditionExpression"], name
        assert state["Parameters"]["ExpressionAttributeValues"][f":{TARGET[name].value}"] == {"S": TARGET[name].value}


# ------------------------------------------------------------------ the model of a job


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    """A low-level DynamoDB item ({"S": "x"}, ...) as plain values."""
    return {k: next(iter(v.values())) for k, v in item.items()}


def _snapshot(item: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if item is None else {k: item.get(k) for k in FROZEN_FIELDS}


class JobTransitions(RuleBasedStateMachine):
    """Random sequences of the three writers' events on a few jobs; every write's outcome is predicted from
    ALLOWED_TRANSITIONS and compared with what DynamoDB did."""

    # Set once by the test below: boto3 clients are slow to make and moto intercepts them in every session.
    stack: LocalStack
    client: Any
    table: Any
    current: JobTransitions | None = None

    jobs = Bundle("jobs")

    def __init__(self) -> None:
        super().__init__()
        self._moto = mock_aws()
        self._moto.start()
        props = self.stack.tables["JobsTable"].properties
        self.client.create_table(TableName=self.table.name, KeySchema=props["KeySchema"],
                                 AttributeDefinitions=props["AttributeDefinitions"],
                                 BillingMode=props["BillingMode"],
                                 GlobalSecondaryIndexes=props["GlobalSecondaryIndexes"])
        self.store = JobStore(self.table.name, table=self.table)
        self.writes: list[tuple[str, dict[str, Any]]] = []  # every write to the table, whoever made it
        JobTransitions.current = self
        self.states = writer_states(self.stack)
        self.clock = T0
        self.history: dict[str, list[JobStatus]] = {}  # the statuses each job went through, in order
        self.frozen: dict[str, dict[str, Any] | None] = {}  # each terminal job's fields when it ended
        self.created = 0
        # The table as the invariant check after the previous step scanned it (hypothesis checks invariants
        # after every step, and nothing else writes meanwhile): what each rule's write starts from.
        self.scanned: dict[str, dict[str, Any]] = {}

    @classmethod
    def connect(cls, stack: LocalStack) -> None:
        session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                        aws_session_token="testing", region_name=stack.region)
        cls.stack = stack
        cls.client = session.client("dynamodb")
        cls.table = session.resource("dynamodb").Table(stack.tables["JobsTable"].name)
        for client in (cls.client, cls.table.meta.client):
            for operation in ("UpdateItem", "PutItem", "DeleteItem"):
                client.meta.events.register(f"provide-client-params.dynamodb.{operation}", cls._recorder(operation))

    @classmethod
    def _recorder(cls, operation: str) -> Any:
        def record(params: dict[str, Any], **_: Any) -> None:
            if cls.current is not None:
                cls.current.writes.append((operation, copy.deepcopy(params)))
        return record

    def teardown(self) -> None:
        JobTransitions.current = None
        self._moto.stop()

    # ------------------------------------------------------------ helpers

    def now(self) -> datetime:
        self.clock += timedelta(seconds=1, microseconds=1234)
        return self.clock

    def item(self, process_id: str) -> dict[str, Any] | None:
        found: dict[str, Any] | None = self.client.get_item(
            TableName=self.table.name, Key={"process_id": {"S": process_id}},
            ConsistentRead=True).get("Item")
        return None if found is None else _plain(found)

    def before(self, process_id: str) -> dict[str, Any] | None:
        return self.scanned.get(process_id)

    def all_items(self) -> dict[str, dict[str, Any]]:
        """Every item in the table, by process_id: one consistent scan instead of one read per job."""
        items: dict[str, dict[str, Any]] = {}
        arguments: dict[str, Any] = {"TableName": self.table.name, "ConsistentRead": True}
        while True:
            page = self.client.scan(**arguments)
            for found in page["Items"]:
                item = _plain(found)
                items[item["process_id"]] = item
            if "LastEvaluatedKey" not in page:
                return items
            arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def expect(self, process_id: str, target: JobStatus, before: dict[str, Any] | None, accepted: bool) -> None:
        """The write was accepted exactly when ALLOWED_TRANSITIONS allows it; a refused one changed nothing."""
        current = None if before is None else JobStatus(before["status"])
        allowed = current is not None and target in ALLOWED_TRANSITIONS[current]
        after = self.item(process_id)
        assert accepted == allowed, f"{current} -> {target}: accepted={accepted}, allowed={allowed}"
        if accepted:
            assert after is not None and after["status"] == target.value
            self.history[process_id].append(target)
        else:
            assert after == before, f"a refused write changed the item: {before} -> {after}"

    # ------------------------------------------------------------ events

    @initialize(target=jobs)
    def first_job(self) -> str:
        return self.create_job()

    @rule(target=jobs)
    def another_job(self) -> str:
        return self.create_job()

    def create_job(self) -> str:
        self.created += 1
        process_id = f"00000000-0000-4000-8000-{self.created:012d}"
        created = self.now()
        self.store.create(Job(process_id=process_id, indicator=Indicator.STATUS, machine_name="MOTOBOMBA-001",
                              status=JobStatus.PENDING, created_at=created, updated_at=created))
        self.history[process_id] = [JobStatus.PENDING]
        return process_id

    @rule(process_id=st.one_of(jobs, st.just(GHOST_ID)), state=st.sampled_from(WRITER_STATES),
          model_id=st.text("0123456789abcdef", min_size=1, max_size=12),
          message=st.text(min_size=1, max_size=60), decision=st.sampled_from(["promoted", "rejected"]))
    def state_machine_writes(self, process_id: str, state: str, model_id: str, message: str,
                             decision: str) -> None:
        """One of the state machine's tasks runs for this job: the first attempt, a retry, or a replayed or
        duplicate execution (the same name or another one)."""
        execution_arn = f"arn:aws:states:us-east-1:123456789012:execution:modelforge-local-{STATE_MACHINE}:{process_id}"
        bucket_address = f"s3://models/model/{process_id}/{model_id}.ubj"
        state_input: dict[str, Any] = {
            "process_id": process_id,
            "training": {"model_id": model_id, "bucket_address": bucket_address},
            "gate": {"decision": decision, "reason": f"{decision} by the property test"},
            "failure": {"message": message},
        }
        context = {"State": {"EnteredTime": self.now().isoformat().replace("+00:00", "Z"), "Name": state},
                   "Execution": {"Id": execution_arn, "Name": process_id}}
        parameters = fill_parameters(self.states[state]["Parameters"], state_input, context)
        before = self.before(process_id)
        try:
            self.client.update_item(**parameters)
            accepted = True
        except ClientError as error:
            assert error.response["Error"]["Code"] == "ConditionalCheckFailedException", error.response
            accepted = False
        if process_id == GHOST_ID:
            assert not accepted and self.item(GHOST_ID) is None
            return
        self.expect(process_id, TARGET[state], before, accepted)
        if accepted and state == "MarkJobCompleted":
            after = self.item(process_id)
            assert after is not None
            assert (after["model_id"], after["bucket_address"]) == (model_id, bucket_address)

    @rule(process_id=st.one_of(jobs, st.just(GHOST_ID)), reason=st.text(min_size=1, max_size=60))
    def api_marks_failed(self, process_id: str, reason: str) -> None:
        """The API fails a job whose execution could not be started (and may race the execution)."""
        before = self.before(process_id)
        try:
            self.store.mark_failed(process_id, reason, self.now())
            accepted = True
        except JobTransitionError as error:
            cause = error.__cause__
            assert isinstance(cause, ClientError)
            assert cause.response["Error"]["Code"] == "ConditionalCheckFailedException"
            accepted = False
        if process_id == GHOST_ID:
            assert not accepted and self.item(GHOST_ID) is None
            return
        self.expect(process_id, JobStatus.FAILED, before, accepted)

    @rule(process_id=st.one_of(jobs, st.just(GHOST_ID)), status=st.sampled_from(EXECUTION_STATUSES),
          error=st.none() | st.text(max_size=20), cause=st.none() | st.text(max_size=60))
    def reconciler_sees_execution_end(self, process_id: str, status: str, error: str | None,
                                      cause: str | None) -> None:
        """EventBridge delivers an execution status change (possibly late, twice, or for a finished job)."""
        change = ExecutionStatusChange.model_validate({
            "executionArn": f"arn:aws:states:us-east-1:123456789012:execution:x:{process_id}",
            "name": process_id, "status": status, "error": error, "cause": cause})
        before = self.before(process_id)
        moved = reconcile_execution(change, jobs=self.store, now=self.now)
        if process_id == GHOST_ID:
            assert not moved and self.item(GHOST_ID) is None
            return
        ends = status in ("FAILED", "TIMED_OUT", "ABORTED")
        current = None if before is None else JobStatus(before["status"])
        if not ends or current in TERMINAL_STATUSES:
            assert not moved
            assert self.item(process_id) == before
            return
        self.expect(process_id, JobStatus.FAILED, before, moved)
        after = self.item(process_id)
        assert after is not None and after["error_message"].startswith("execution ")

    # ------------------------------------------------------------ invariants, after every step

    @invariant()
    def invariants_hold(self) -> None:
        """One scan of the table per step (moto calls are most of this test's time), then every invariant."""
        items = self.scanned = self.all_items()
        assert GHOST_ID not in items, "a refused write created a job"
        assert items.keys() <= self.history.keys(), f"items nobody created: {items.keys() - self.history.keys()}"
        for process_id, seen in self.history.items():
            item = items.get(process_id)
            assert item is not None
            # The status only moved along ALLOWED_TRANSITIONS, and is where the last accepted write put it.
            for current, new in itertools.pairwise(seen):
                assert new in ALLOWED_TRANSITIONS[current], f"{process_id}: {current} -> {new}"
            assert item["status"] == seen[-1].value
            # Completed and failed are final: status, finished_at, bucket_address, error_message, model_id.
            if seen[-1] in TERMINAL_STATUSES:
                snapshot = _snapshot(item)
                self.frozen.setdefault(process_id, snapshot)
                assert snapshot == self.frozen[process_id], f"{process_id} changed after it ended"
                assert item.get("finished_at")
            # A completed job names its model.
            if item["status"] == JobStatus.COMPLETED.value:
                assert str(item.get("bucket_address", "")).startswith("s3://"), item
                assert item.get("model_id"), item
        # Every write to the table carried a condition (creating a job too: only if the process_id is new).
        for operation, params in self.writes:
            assert params.get("ConditionExpression") is not None, (operation, params)


@pytest.fixture
def no_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[None]:
    """moto in-process only: no endpoint another tier left in the environment, no real credentials."""
    isolate_from_aws(monkeypatch, tmp_path)
    yield


def test_job_status_writes_follow_the_allowed_transitions(no_aws: None) -> None:
    JobTransitions.connect(resolve_stack())
    run_state_machine_as_test(JobTransitions, settings=settings(
        max_examples=50, stateful_step_count=20, deadline=None, database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))
