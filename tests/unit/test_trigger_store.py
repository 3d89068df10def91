"""The triggers table on moto (adapters/trigger_store.py) and the retraining use cases over it
(logic.retrain, logic.retrain_runs) with fake registry, catalog and training submission: the lock under two
racing runs, trigger transitions from execution events, resolving, and a run's derived status."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pandas as pd
import pytest
from moto import mock_aws

from localcloud.template import LocalStack
from modelforge.adapters.trigger_store import LOCK_TTL, TriggerStore
from modelforge.domain.retrain_policy import RetrainPolicy
from modelforge.errors import InvalidRequestError, TriggerTransitionError
from modelforge.jobs import Indicator
from modelforge.logic.reconcile import ExecutionStatusChange
from modelforge.logic.retrain import RetrainDependencies, process_item, record_failure
from modelforge.logic.retrain_runs import (
    SummaryRequest,
    apply_execution_event,
    get_run,
    resolve_triggers,
    summarize_run,
)
from modelforge.registry import ModelName, ModelVersion
from modelforge.schemas import MachineSummary, ResolveTriggersRequest, TrainRequest, TrainResponse
from modelforge.triggers import RetrainItem, RetrainRun, RunStatus, Trigger, TriggerStatus

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
POLICY = RetrainPolicy()


@pytest.fixture
def store(local_stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[TriggerStore]:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": local_stack.region}.items():
        monkeypatch.setenv(name, value)
    spec = local_stack.tables["TriggersTable"]
    with mock_aws():
        dynamodb = boto3.resource("dynamodb", region_name=local_stack.region)
        props = spec.properties
        table = dynamodb.create_table(TableName=spec.name, KeySchema=props["KeySchema"],
                                      AttributeDefinitions=props["AttributeDefinitions"],
                                      BillingMode="PAY_PER_REQUEST",
                                      GlobalSecondaryIndexes=props["GlobalSecondaryIndexes"])
        yield TriggerStore(spec.name, table=table)


def champion(machine: str = "M-1", trained_days_ago: float = 10, data_end_days_ago: float = 1) -> ModelVersion:
    return ModelVersion(model_name=ModelName(machine, Indicator.STATUS), version="v1", machine_name=machine,
                        indicator=Indicator.STATUS, artifact_uri="s3://b/k", artifact_sha256="0" * 64,
                        trained_at=NOW - timedelta(days=trained_days_ago),
                        data={"last_timestamp": (NOW - timedelta(days=data_end_days_ago)).isoformat()})


class Fakes:
    def __init__(self, champions: dict[str, ModelVersion], drift: dict[str, dict[str, Any]] | None = None,
                 fail_submit: bool = False, failures: dict[str, list[datetime]] | None = None) -> None:
        self.champions, self.drift, self.fail_submit = champions, drift or {}, fail_submit
        self.failures = failures or {}
        self.submitted: list[tuple[str, str]] = []
        self.telemetry_reads: list[tuple[str, Any, Any]] = []
        self.lock = threading.Lock()

    def champion(self, name: ModelName) -> ModelVersion | None:
        return self.champions.get(name.machine_name)

    def describe(self, machine_name: str) -> MachineSummary | None:
        return MachineSummary(machine_name=machine_name, first_timestamp=NOW - timedelta(days=60),
                              last_timestamp=NOW, rows=1000, columns=["timestamp"])

    def submit(self, request: TrainRequest, process_id: str) -> TrainResponse:
        if self.fail_submit:
            raise RuntimeError("the state machine is gone")
        with self.lock:
            self.submitted.append((request.machine_name, process_id))
        return TrainResponse(process_id=process_id, status="pending")

    def check(self, version: ModelVersion) -> dict[str, Any]:
        return self.drift.get(version.machine_name, {"status": "stable", "max_psi": 0.01, "drift_share": 0.0})

    def deps(self, store: TriggerStore) -> RetrainDependencies:
        return RetrainDependencies(registry=self, catalog=self, triggers=store, submit_training=self.submit,
                                   check_drift=self.check, telemetry=Telemetry(self), failure_events=Failures(self))


class Telemetry:
    """A reading a minute for 60 days up to NOW on every machine (what describe says)."""

    def __init__(self, fakes: Fakes) -> None:
        self.fakes = fakes

    def read(self, machine_name: str, start: Any, end: Any) -> pd.DataFrame:
        self.fakes.telemetry_reads.append((machine_name, start, end))
        first = max(NOW - timedelta(days=60), datetime.combine(start, datetime.min.time(), UTC))
        return pd.DataFrame({"timestamp": pd.date_range(first, NOW, freq="min")})


class Failures:
    def __init__(self, fakes: Fakes) -> None:
        self.fakes = fakes

    def read(self, machine_names: list[str], start: Any = None, end: Any = None) -> pd.DataFrame:
        stamps = [t for m in machine_names for t in self.fakes.failures.get(m, []) if start is None or
                  t.date() >= start]
        return pd.DataFrame({"machine_name": "x", "timestamp": pd.to_datetime(stamps, utc=True)})


def item(machine: str = "M-1", run_id: str = "run-1", **extra: Any) -> RetrainItem:
    return RetrainItem(run_id=run_id, machine_name=machine, indicator=Indicator.STATUS, **extra)


def test_a_drifted_model_gets_a_trigger_a_job_and_a_lock_a_stable_one_a_skip(store: TriggerStore) -> None:
    fakes = Fakes({"M-1": champion("M-1"), "M-2": champion("M-2")},
                  drift={"M-1": {"status": "drift", "max_psi": 0.8, "drift_share": 0.6}})
    drifted = process_item(item("M-1"), fakes.deps(store), POLICY, now=lambda: NOW)
    stable = process_item(item("M-2"), fakes.deps(store), POLICY, now=lambda: NOW)
    assert (drifted.decision, drifted.outcome) == ("drift", "started")
    assert (stable.decision, stable.outcome) == ("skip: stable", "skipped")
    trigger = store.get(str(drifted.trigger_id))
    assert trigger.status == TriggerStatus.TRIGGERED and trigger.reason == "drift"
    assert trigger.figures["max_psi"] == 0.8 and trigger.process_id == trigger.trigger_id
    assert fakes.submitted == [("M-1", trigger.trigger_id)]
    assert store.lock_holder("M-1#status", NOW) == trigger.trigger_id and store.lock_holder("M-2#status", NOW) is None
    assert {o.model_name: o.decision for o in store.outcomes("run-1")} == {"M-1#status": "drift",
                                                                           "M-2#status": "skip: stable"}


def test_age_and_new_data_come_from_the_champion_and_the_catalog(store: TriggerStore) -> None:
    fakes = Fakes({"OLD": champion("OLD", trained_days_ago=120), "NEW": champion("NEW", data_end_days_ago=45),
                   "RECENT": champion("RECENT", data_end_days_ago=1)})
    assert process_item(item("OLD"), fakes.deps(store), POLICY, now=lambda: NOW).decision == "age"
    outcome = process_item(item("NEW"), fakes.deps(store), POLICY, now=lambda: NOW)
    # 45 days of a reading a minute after the champion's data ended: over the default 43,200 rows.
    assert outcome.decision == "new_data" and outcome.figures["new_rows"] == 45 * 1440
    assert (outcome.figures["new_failures"], outcome.figures["min_new_rows"]) == (0, 43_200)
    recent = process_item(item("RECENT"), fakes.deps(store), POLICY, now=lambda: NOW)
    assert recent.decision == "skip: stable" and recent.figures["new_rows"] == 1440
    # Only what is newer is read: from the day the champion's data ended.
    ended = (NOW - timedelta(days=1)).date()
    assert ("RECENT", ended, None) in fakes.telemetry_reads


def test_new_failure_events_alone_are_new_data(store: TriggerStore) -> None:
    ended = NOW - timedelta(days=1)
    failures = {"F-1": [ended - timedelta(hours=2), ended - timedelta(hours=1)]  # before: the champion saw them
                + [ended + timedelta(hours=h) for h in (1, 2, 3)]}
    fakes = Fakes({"F-1": champion("F-1", data_end_days_ago=1)}, failures=failures)
    outcome = process_item(item("F-1"), fakes.deps(store), POLICY, now=lambda: NOW)
    assert outcome.decision == "new_data" and outcome.outcome == "started", outcome
    assert (outcome.figures["new_failures"], outcome.figures["min_new_failures"]) == (3, 3)
    assert outcome.figures["new_rows"] == 1440  # not enough rows on their own
    fakes.failures["F-1"].pop()
    assert store.release_lock("F-1#status", str(outcome.trigger_id))
    fewer = process_item(item("F-1", run_id="run-2"), fakes.deps(store), POLICY, now=lambda: NOW)
    assert fewer.decision == "skip: stable" and fewer.figures["new_failures"] == 2


def test_a_champion_that_did_not_record_when_its_data_ended_has_no_new_data_figures(store: TriggerStore) -> None:
    unknown = champion("U-1").model_copy(update={"data": {}})
    fakes = Fakes({"U-1": unknown})
    outcome = process_item(item("U-1"), fakes.deps(store), POLICY, now=lambda: NOW)
    assert outcome.decision == "skip: stable"
    assert not {"new_rows", "new_failures"} & set(outcome.figures) and fakes.telemetry_reads == []


def test_two_racing_runs_start_one_retrain(store: TriggerStore) -> None:
    fakes = Fakes({"M-1": champion()}, drift={"M-1": {"status": "drift", "max_psi": 0.8}})
    barrier = threading.Barrier(2)
    outcomes = []

    def run(run_id: str) -> None:
        barrier.wait()
        outcomes.append(process_item(item(run_id=run_id, force=True), fakes.deps(store), POLICY, now=lambda: NOW))

    threads = [threading.Thread(target=run, args=(f"run-{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(o.outcome for o in outcomes) == ["skipped", "started"]
    assert [o.decision for o in outcomes if o.outcome == "skipped"] == ["skip: already_in_flight"]
    assert len(fakes.submitted) == 1
    assert len(store.list_triggers(machine_name="M-1")) == 1


def test_the_lock_is_freed_when_the_training_ends_and_expires_if_it_never_does(store: TriggerStore) -> None:
    fakes = Fakes({"M-1": champion()})
    first = process_item(item(force=True), fakes.deps(store), POLICY, now=lambda: NOW)
    assert process_item(item(run_id="run-2", force=True), fakes.deps(store), POLICY,
                        now=lambda: NOW).decision == "skip: already_in_flight"
    ended = apply_execution_event(change(str(first.trigger_id), "SUCCEEDED"), triggers=store,
                                  now=lambda: NOW + timedelta(minutes=5))
    assert ended is not None and ended.status == TriggerStatus.COMPLETED and ended.duration_seconds == 300
    assert store.lock_holder("M-1#status", NOW) is None
    again = process_item(item(run_id="run-3", force=True), fakes.deps(store), POLICY, now=lambda: NOW)
    assert again.outcome == "started"
    # A lock whose release was lost expires.
    assert store.lock_holder("M-1#status", NOW + LOCK_TTL + timedelta(seconds=1)) is None
    assert store.acquire_lock("M-1#status", "late", NOW + LOCK_TTL + timedelta(seconds=1))
    assert not store.release_lock("M-1#status", str(again.trigger_id))


def change(name: str, status: str, **extra: Any) -> ExecutionStatusChange:
    return ExecutionStatusChange.model_validate({"executionArn": f"arn:x:{name}", "name": name, "status": status,
                                                 **extra})


def test_the_trigger_follows_its_execution_and_never_moves_backwards(store: TriggerStore) -> None:
    fakes = Fakes({"M-1": champion()})
    trigger_id = str(process_item(item(force=True), fakes.deps(store), POLICY, now=lambda: NOW).trigger_id)
    running = apply_execution_event(change(trigger_id, "RUNNING"), triggers=store, now=lambda: NOW)
    assert running is not None and running.status == TriggerStatus.RUNNING
    failed = apply_execution_event(change(trigger_id, "FAILED", error="InsufficientDataError", cause="too few"),
                                   triggers=store, now=lambda: NOW)
    assert failed is not None and failed.status == TriggerStatus.FAILED
    assert failed.error_message == "training execution failed: InsufficientDataError: too few"
    assert apply_execution_event(change(trigger_id, "RUNNING"), triggers=store, now=lambda: NOW) is None
    assert store.get(trigger_id).status == TriggerStatus.FAILED
    assert apply_execution_event(change("not-a-retrain", "FAILED"), triggers=store) is None
    with pytest.raises(TriggerTransitionError):
        store.transition(trigger_id, TriggerStatus.COMPLETED, (TriggerStatus.RUNNING,), NOW)


def test_a_job_that_cannot_start_fails_its_trigger_and_frees_the_lock(store: TriggerStore) -> None:
    fakes = Fakes({"M-1": champion()}, fail_submit=True)
    outcome = process_item(item(force=True), fakes.deps(store), POLICY, now=lambda: NOW)
    assert outcome.outcome == "failed" and "state machine is gone" in str(outcome.error_message)
    trigger = store.get(str(outcome.trigger_id))
    assert trigger.status == TriggerStatus.FAILED and "state machine is gone" in str(trigger.error_message)
    assert store.lock_holder("M-1#status", NOW) is None


def test_dry_runs_decide_and_start_nothing(store: TriggerStore) -> None:
    fakes = Fakes({"M-1": champion()})
    outcome = process_item(item(force=True, dry_run=True), fakes.deps(store), POLICY, now=lambda: NOW)
    assert (outcome.decision, outcome.outcome) == ("forced", "planned")
    assert fakes.submitted == [] and store.lock_holder("M-1#status", NOW) is None


def test_resolving_records_who_and_why_and_refuses_what_is_not_failed(store: TriggerStore) -> None:
    for machine, status in (("M-1", TriggerStatus.FAILED), ("M-2", TriggerStatus.FAILED),
                            ("M-3", TriggerStatus.RUNNING)):
        store.create(Trigger(trigger_id=f"t-{machine}", run_id="run-1", model_name=f"{machine}#status",
                             machine_name=machine, indicator=Indicator.STATUS, reason="drift", status=status,
                             created_at=NOW, updated_at=NOW))
    with pytest.raises(InvalidRequestError, match="t-M-3: only failed triggers") as refused:
        resolve_triggers(ResolveTriggersRequest(trigger_ids=["t-M-1", "t-M-3"], reason="fixed by hand"),
                         triggers=store, caller="me")
    assert refused.value.field == "trigger_ids"
    assert store.get("t-M-1").status == TriggerStatus.FAILED  # nothing half-written
    answer = resolve_triggers(ResolveTriggersRequest(all_failed=True, machine_name="M-2", reason="data fixed"),
                              triggers=store, caller="arn:aws:sts::1:assumed-role/ops/ana", now=lambda: NOW)
    assert [t["trigger_id"] for t in answer.resolved] == ["t-M-2"]
    resolved = store.get("t-M-2")
    assert resolved.status == TriggerStatus.RESOLVED_MANUALLY
    assert (resolved.resolved_by, resolved.resolution_reason) == ("arn:aws:sts::1:assumed-role/ops/ana", "data fixed")
    assert [t.trigger_id for t in store.list_triggers(status=TriggerStatus.FAILED)] == ["t-M-1"]
    with pytest.raises(InvalidRequestError):
        resolve_triggers(ResolveTriggersRequest(reason="neither"), triggers=store, caller="me")


def test_a_run_is_running_until_its_retrains_end_then_failed_if_one_failed(store: TriggerStore) -> None:
    store.create_run(RetrainRun(run_id="run-1", status=RunStatus.RUNNING, created_at=NOW, updated_at=NOW))
    fakes = Fakes({"M-1": champion("M-1"), "M-2": champion("M-2"), "M-3": champion("M-3")})
    started = [process_item(item(m, force=True), fakes.deps(store), POLICY, now=lambda: NOW) for m in ("M-1", "M-2")]
    record_failure(item("M-3"), {"Error": "Lambda.Unknown", "Cause": "boom"}, fakes.deps(store), now=lambda: NOW)
    assert get_run("run-1", triggers=store).status == "running"
    summary = summarize_run(SummaryRequest(run_id="run-1"), triggers=store, now=lambda: NOW)
    assert summary["by_decision"] == {"forced": 2, "error": 1}
    assert summary["by_outcome"] == {"started": 2, "failed": 1} and summary["failed_models"] == ["M-3#status"]
    assert get_run("run-1", triggers=store).status == "running"  # its retrains have not ended
    for outcome in started:
        apply_execution_event(change(str(outcome.trigger_id), "SUCCEEDED"), triggers=store)
    shown = get_run("run-1", triggers=store)
    assert shown.status == "failed" and len(shown.triggers) == 2  # M-3 could not be decided on
