"""One model of a retraining run (the Distributed Map's item): check it with its champion's own recipe (data
drift, concept drift: ``logic.drift.check_champion``; age; new rows and new failure events), decide
(``domain.retrain_policy``), and
for a retrain take the model's in-flight lock (a conditional put: two racing runs start one retrain), write
the trigger record and start the training job through the same use case as ``POST /train``. Whatever happens
is recorded as the item's outcome on the run, so a fan-out's failures are visible item by item."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

from modelforge.domain.retrain_policy import (
    IN_FLIGHT,
    SKIP,
    ModelEvidence,
    RetrainDecision,
    RetrainPolicy,
    decide,
    drift_without_recent_retrain,
)
from modelforge.logic.clock import utc_now
from modelforge.observability import emit_retrain_metric, logger
from modelforge.registry import ModelName, ModelVersion
from modelforge.schemas import MachineSummary, TrainRequest, TrainResponse
from modelforge.triggers import ItemOutcome, RetrainItem, Trigger, TriggerStatus

DAY_SECONDS = 86400.0


class Registry(Protocol):
    def champion(self, name: ModelName) -> ModelVersion | None: ...


class Catalog(Protocol):
    def describe(self, machine_name: str) -> MachineSummary | None: ...


class Telemetry(Protocol):
    def read(self, machine_name: str, start: date | None, end: date | None) -> Any: ...


class FailureEvents(Protocol):
    def read(self, machine_names: list[str], start: date | None = None, end: date | None = None) -> Any: ...


class Triggers(Protocol):
    def acquire_lock(self, model_name: str, holder: str, now: datetime) -> bool: ...
    def release_lock(self, model_name: str, holder: str) -> bool: ...
    def lock_holder(self, model_name: str, now: datetime) -> str | None: ...
    def create(self, trigger: Trigger) -> None: ...
    def transition(self, trigger_id: str, to: TriggerStatus, allowed_from: tuple[TriggerStatus, ...], now: datetime,
                   **fields: Any) -> Trigger: ...
    def record_outcome(self, outcome: ItemOutcome) -> None: ...


@dataclass(frozen=True)
class RetrainDependencies:
    registry: Registry
    catalog: Catalog
    triggers: Triggers
    # TrainRequest, process_id -> the job (jobs_api.submit_training with new_id fixed to the trigger's id)
    submit_training: Callable[[TrainRequest, str], TrainResponse]
    # The champion's drift and live-performance figures: logic.drift.check_champion, bound to its
    # dependencies and the deployment's DriftConfig (a DriftCheckResult as JSON).
    check_drift: Callable[[ModelVersion], dict[str, Any]]
    # What new_data counts after the champion's data ended (the drift check's own stores).
    telemetry: Telemetry
    failure_events: FailureEvents


def process_item(item: RetrainItem, deps: RetrainDependencies, policy: RetrainPolicy,
                 now: Callable[[], datetime] = utc_now,
                 new_id: Callable[[], str] = lambda: str(uuid.uuid4())) -> ItemOutcome:
    name = ModelName(item.machine_name, item.indicator)
    champion = deps.registry.champion(name)
    if champion is None:
        return _record(deps, item, name, "skip: no_champion", "skipped", now(), error="the model has no champion")
    evidence = gather_evidence(champion, item, deps, now())
    decision = decide(evidence, policy)
    if drift_without_recent_retrain(evidence, policy):
        emit_retrain_metric("DriftWithoutRecentRetrain", 1)
    if not decision.retrain or item.dry_run:
        outcome = "planned" if decision.retrain else "skipped"
        return _record(deps, item, name, decision.label, outcome, now(), figures=decision.figures)
    return start_retrain(champion, item, decision, deps, now, new_id)


def gather_evidence(champion: ModelVersion, item: RetrainItem, deps: RetrainDependencies,
                    at: datetime) -> ModelEvidence:
    """A forced retrain skips the checks (nothing they find would change the decision)."""
    in_flight = deps.triggers.lock_holder(champion.model_name.key, at) is not None
    if item.force or in_flight:
        return ModelEvidence(forced=item.force, in_flight=in_flight)
    summaries = [s for s in (deps.catalog.describe(m) for m in champion.machines) if s is not None]
    if not summaries:
        return ModelEvidence(has_data=False)
    check = deps.check_drift(champion)
    new_rows, new_failures = new_data(champion, summaries, deps)
    return ModelEvidence(
        drift_status=check.get("status"), drift_share=check.get("drift_share"), max_psi=check.get("max_psi"),
        concept_drift=bool(check.get("concept_drift")), live_recall=check.get("live_recall"),
        live_failures=int(check.get("live_failures") or 0),
        age_days=None if champion.trained_at is None else (at - champion.trained_at).total_seconds() / DAY_SECONDS,
        new_rows=new_rows, new_failures=new_failures)


def new_data(champion: ModelVersion, summaries: list[MachineSummary],
             deps: RetrainDependencies) -> tuple[int | None, int | None]:
    """Telemetry rows (over the model's machines) and recorded failure events after the champion's training
    data ended (its newest row); (None, None) for a champion that did not record when that was. Only what is
    newer is read: from the day the data ended, and no telemetry at all for a machine with nothing newer."""
    recorded = (champion.data or {}).get("last_timestamp")
    if not recorded:
        return None, None
    ended = datetime.fromisoformat(str(recorded))
    rows = 0
    for summary in summaries:
        if summary.last_timestamp > ended:
            frame = deps.telemetry.read(summary.machine_name, ended.date(), None)
            rows += int((frame["timestamp"] > ended).sum()) if len(frame) else 0
    events = deps.failure_events.read(champion.machines, ended.date(), None)
    failures = int((events["timestamp"] > ended).sum()) if len(events) else 0
    return rows, failures


def start_retrain(champion: ModelVersion, item: RetrainItem, decision: RetrainDecision, deps: RetrainDependencies,
                  now: Callable[[], datetime], new_id: Callable[[], str]) -> ItemOutcome:
    """The lock, the trigger, the job. A job that cannot be submitted fails its trigger and frees the lock."""
    from modelforge.logic.drift import retrain_request

    name, trigger_id = champion.model_name, new_id()
    if not deps.triggers.acquire_lock(name.key, trigger_id, now()):
        figures = {**decision.figures, "wanted": decision.reason}
        return _record(deps, item, name, f"{SKIP}: {IN_FLIGHT}", "skipped", now(), figures=figures)
    stamp = now()
    deps.triggers.create(Trigger(
        trigger_id=trigger_id, run_id=item.run_id, model_name=name.key, machine_name=name.machine_name,
        indicator=name.indicator, reason=decision.reason, figures=decision.figures, status=TriggerStatus.TRIGGERED,
        process_id=trigger_id, created_at=stamp, updated_at=stamp))
    try:
        deps.submit_training(retrain_request(champion), trigger_id)
    except Exception as error:
        message = f"{type(error).__name__}: {error}"
        deps.triggers.transition(trigger_id, TriggerStatus.FAILED, (TriggerStatus.TRIGGERED,), now(),
                                 error_message=message, finished_at=now().isoformat())
        deps.triggers.release_lock(name.key, trigger_id)
        logger.warning("retrain not started", extra={"model_name": name.key, "error": message})
        emit_retrain_metric("RetrainsTriggered", 1, reason=decision.reason, outcome="failed")
        emit_retrain_metric("RetrainsFailed", 1)
        return _record(deps, item, name, decision.label, "failed", now(), trigger_id=trigger_id,
                       figures=decision.figures, error=message)
    emit_retrain_metric("RetrainsTriggered", 1, reason=decision.reason, outcome="started")
    logger.info("retrain started", extra={"model_name": name.key, "reason": decision.reason,
                                          "trigger_id": trigger_id})
    return _record(deps, item, name, decision.label, "started", now(), trigger_id=trigger_id,
                   figures=decision.figures)


def record_failure(item: RetrainItem, error: dict[str, Any], deps: RetrainDependencies,
                   now: Callable[[], datetime] = utc_now) -> ItemOutcome:
    """The outcome of an item whose decision failed (after its retries): its error, on the run."""
    message = f"{error.get('Error')}: {str(error.get('Cause'))[:1000]}"
    return _record(deps, item, ModelName(item.machine_name, item.indicator), "error", "failed", now(), error=message)


def _record(deps: RetrainDependencies, item: RetrainItem, name: ModelName, decision: str, outcome: str,
            at: datetime, *, figures: dict[str, Any] | None = None, trigger_id: str | None = None,
            error: str | None = None) -> ItemOutcome:
    result = ItemOutcome(run_id=item.run_id, model_name=name.key, decision=decision, outcome=outcome,
                         trigger_id=trigger_id, figures=figures or {}, error_message=error, decided_at=at)
    deps.triggers.record_outcome(result)
    return result
