"""Retraining runs (state_machine/retrain.asl.json) around the per-model decisions of ``logic.retrain``: the
planner, the summary, the trigger updates from the training state machine's status events, and the API's
use cases (``POST /retrain``, ``GET /retrains/{run_id}``, ``GET /triggers``, ``POST /triggers/resolve``).

Light on purpose (no pandas): the planner, summary and event functions are zip functions."""

from __future__ import annotations

import contextlib
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import ConfigDict

from modelforge.errors import ExecutionStartError, InvalidRequestError, TriggerNotFoundError, TriggerTransitionError
from modelforge.jobs import Indicator
from modelforge.lazy_model import LazyModel
from modelforge.logic.clock import utc_now
from modelforge.observability import emit_retrain_metric, logger
from modelforge.registry import ChampionPointer, ModelName
from modelforge.schemas import (
    ResolveTriggersRequest,
    ResolveTriggersResponse,
    RetrainRequest,
    RetrainRunResponse,
    RetrainStartResponse,
    TriggerListResponse,
)
from modelforge.triggers import (
    OPEN_TRIGGER_STATUSES,
    ItemOutcome,
    RetrainItem,
    RetrainRun,
    RunStatus,
    Trigger,
    TriggerStatus,
)

if TYPE_CHECKING:  # the API imports this module; reconcile (and the training job it reads) it does not need
    from modelforge.logic.reconcile import ExecutionStatusChange


class Triggers(Protocol):
    def create_run(self, run: RetrainRun) -> bool: ...
    def get_run(self, run_id: str) -> RetrainRun | None: ...
    def finish_run(self, run_id: str, status: RunStatus, now: datetime, *, summary: dict[str, Any] | None = None,
                   error_message: str | None = None) -> None: ...
    def outcomes(self, run_id: str) -> list[ItemOutcome]: ...
    def find(self, trigger_id: str) -> Trigger | None: ...
    def get(self, trigger_id: str) -> Trigger: ...
    def list_triggers(self, *, status: TriggerStatus | None = None, machine_name: str | None = None,
             run_id: str | None = None, limit: int = 100) -> list[Trigger]: ...
    def transition(self, trigger_id: str, to: TriggerStatus, allowed_from: tuple[TriggerStatus, ...], now: datetime,
                   **fields: Any) -> Trigger: ...
    def release_lock(self, model_name: str, holder: str) -> bool: ...


class Pointers(Protocol):
    def champion_pointer(self, name: ModelName) -> ChampionPointer | None: ...
    def list_champion_pointers(self) -> list[ChampionPointer]: ...


class ItemsFile(Protocol):
    def put_items(self, run_id: str, items: list[dict[str, Any]]) -> tuple[str, str]: ...


class Executions(Protocol):
    def start(self, name: str, payload: dict[str, object]) -> str: ...


# ---------------------------------------------------------------- the state machine's steps


class PlanRequest(LazyModel):
    """What the Plan state passes: the execution's input (the API's request, or the schedule's event) and the
    execution's name, which is the run id."""

    model_config = ConfigDict(extra="ignore")

    run_id: str
    machine_name: str | None = None
    indicator: Indicator | None = None
    all: bool = False
    force: bool = False
    dry_run: bool = False


class PlanResult(LazyModel):
    run_id: str
    bucket: str
    key: str
    models: int


def plan_run(request: PlanRequest, *, registry: Pointers, triggers: Triggers, items: ItemsFile,
             now: Callable[[], datetime] = utc_now) -> PlanResult:
    """The run's record (unless the API wrote it) and its items file: the one model asked for, else every
    champion."""
    stamp = now()
    triggers.create_run(RetrainRun(run_id=request.run_id, status=RunStatus.RUNNING, created_at=stamp,
                                   updated_at=stamp, request=request.model_dump(mode="json", exclude_none=True)))
    if request.machine_name is not None and request.indicator is not None:
        names = [ModelName(request.machine_name, request.indicator)]
    else:
        names = [pointer.name for pointer in registry.list_champion_pointers()]
    rows = [RetrainItem(run_id=request.run_id, machine_name=n.machine_name, indicator=n.indicator,
                        force=request.force, dry_run=request.dry_run).model_dump(mode="json") for n in names]
    bucket, key = items.put_items(request.run_id, rows)
    logger.info("retraining run planned", extra={"run_id": request.run_id, "models": len(rows)})
    return PlanResult(run_id=request.run_id, bucket=bucket, key=key, models=len(rows))


class SummaryRequest(LazyModel):
    model_config = ConfigDict(extra="ignore")

    run_id: str
    error: dict[str, Any] | None = None  # the map's caught error: the run failed


def summarize_run(request: SummaryRequest, *, triggers: Triggers,
                  now: Callable[[], datetime] = utc_now) -> dict[str, Any]:
    """Counts by decision and by outcome, stored on the run record."""
    outcomes = triggers.outcomes(request.run_id)
    summary = {"models": len(outcomes), "by_decision": dict(Counter(o.decision for o in outcomes)),
               "by_outcome": dict(Counter(o.outcome for o in outcomes)),
               "failed_models": sorted(o.model_name for o in outcomes if o.outcome == "failed")}
    error = None if request.error is None else f"{request.error.get('Error')}: {request.error.get('Cause')}"
    triggers.finish_run(request.run_id, RunStatus.FAILED if error else RunStatus.SUCCEEDED, now(),
                        summary=summary, error_message=error)
    logger.info("retraining run summarized", extra={"run_id": request.run_id, **summary})
    return summary


# ---------------------------------------------------------------- trigger status from the training executions


ENDED = {"SUCCEEDED": TriggerStatus.COMPLETED, "FAILED": TriggerStatus.FAILED,
         "TIMED_OUT": TriggerStatus.FAILED, "ABORTED": TriggerStatus.FAILED}


def apply_execution_event(change: ExecutionStatusChange, *, triggers: Triggers,
                          now: Callable[[], datetime] = utc_now) -> Trigger | None:
    """The trigger of the execution (named by its job's process_id, the trigger's id) follows its status;
    an ended one frees the model's lock. None: not a retrain's execution, or an event already applied."""
    trigger = triggers.find(change.name)
    if trigger is None:
        return None
    stamp = now()
    try:
        if change.status == "RUNNING":
            return triggers.transition(trigger.trigger_id, TriggerStatus.RUNNING, (TriggerStatus.TRIGGERED,), stamp,
                                       execution_arn=change.execution_arn)
        if change.status not in ENDED:
            return None
        to = ENDED[change.status]
        error = None if to == TriggerStatus.COMPLETED else _execution_error(change)
        duration = (stamp - trigger.created_at).total_seconds()
        updated = triggers.transition(trigger.trigger_id, to, OPEN_TRIGGER_STATUSES, stamp,
                                      finished_at=stamp.isoformat(), duration_seconds=round(duration, 1),
                                      error_message=error)
    except TriggerTransitionError:
        return None  # a repeated or late event: the trigger already moved on
    finally:
        if change.status in ENDED:
            triggers.release_lock(trigger.model_name, trigger.trigger_id)
    emit_retrain_metric("RetrainsEnded", 1, reason=updated.reason, outcome=updated.status.value)
    emit_retrain_metric("RetrainDuration", duration, reason=updated.reason, outcome=updated.status.value,
                        unit=MetricUnit.Seconds)
    emit_retrain_metric("RetrainDuration", duration, unit=MetricUnit.Seconds)  # the alarm's one series
    if to == TriggerStatus.FAILED:
        emit_retrain_metric("RetrainsFailed", 1)
    else:
        emit_retrain_metric("RetrainsSucceeded", 1)
    logger.info("retrain ended", extra={"trigger_id": updated.trigger_id, "status": updated.status})
    return updated


def _execution_error(change: ExecutionStatusChange) -> str:
    reason = f"training execution {change.status.lower().replace('_', ' ')}"
    if change.error:
        reason += f": {change.error}"
    if change.cause:
        reason += f": {change.cause[:1000]}"
    return reason


# ---------------------------------------------------------------- the API's use cases


def start_retrain(request: RetrainRequest, *, registry: Pointers, triggers: Triggers, executions: Executions,
                  now: Callable[[], datetime] = utc_now,
                  new_id: Callable[[], str] = lambda: str(uuid.uuid4())) -> RetrainStartResponse:
    """The run's record, then its execution (named by the run id); a start that fails fails the run."""
    if request.all == (request.machine_name is not None or request.indicator is not None):
        field = "all" if request.all else "machine_name"
        raise InvalidRequestError(field, "name one model (machine_name and indicator) or all: true, not both")
    if not request.all:
        if request.machine_name is None or request.indicator is None:
            raise InvalidRequestError("indicator" if request.machine_name else "machine_name",
                                      "a model is named by both machine_name and indicator")
        if registry.champion_pointer(ModelName(request.machine_name, request.indicator)) is None:
            raise InvalidRequestError("machine_name", f"{request.machine_name}/{request.indicator.value} has no "
                                      "champion to retrain (GET /models?machine_name= lists its versions)")
    run_id, stamp = new_id(), now()
    body = request.model_dump(mode="json", exclude_none=True)
    triggers.create_run(RetrainRun(run_id=run_id, status=RunStatus.RUNNING, request=body, created_at=stamp,
                                   updated_at=stamp))
    try:
        arn = executions.start(run_id, {"run_id": run_id, **body})
    except Exception as error:
        reason = f"could not start the retraining execution: {error}"
        triggers.finish_run(run_id, RunStatus.FAILED, now(), error_message=reason)
        raise ExecutionStartError(f"run {run_id} failed: {reason}") from error
    return RetrainStartResponse(run_id=run_id, execution_arn=arn)


def get_run(run_id: str, *, triggers: Triggers) -> RetrainRunResponse:
    """A run is running until its summary is written and every trigger it started has ended; then failed if
    the map or any of its retrains failed, else succeeded."""
    run = triggers.get_run(run_id)
    if run is None:
        raise TriggerNotFoundError(f"no retraining run {run_id}")
    started = triggers.list_triggers(run_id=run_id, limit=10_000)
    status = run.status
    if status == RunStatus.SUCCEEDED:
        if any(t.status in OPEN_TRIGGER_STATUSES for t in started):
            status = RunStatus.RUNNING
        elif any(t.status == TriggerStatus.FAILED for t in started) or (run.summary or {}).get("failed_models"):
            status = RunStatus.FAILED
    return RetrainRunResponse(run_id=run.run_id, status=status.value, summary=run.summary,
                              error_message=run.error_message, created_at=run.created_at.isoformat(),
                              triggers=[t.model_dump(mode="json") for t in started])


def list_triggers(*, triggers: Triggers, status: TriggerStatus | None, machine_name: str | None,
                  run_id: str | None, limit: int) -> TriggerListResponse:
    found = triggers.list_triggers(status=status, machine_name=machine_name, run_id=run_id, limit=limit)
    return TriggerListResponse(triggers=[t.model_dump(mode="json") for t in found])


def resolve_triggers(request: ResolveTriggersRequest, *, triggers: Triggers, caller: str,
                     now: Callable[[], datetime] = utc_now) -> ResolveTriggersResponse:
    """Failed triggers -> resolved_manually, with who and why. Named triggers are all checked first: an
    unknown or unfailed one is refused (422 on trigger_ids) and nothing is written."""
    if bool(request.trigger_ids) == request.all_failed:
        raise InvalidRequestError("trigger_ids", "name the triggers or set all_failed: true, not both or neither")
    if request.machine_name is not None and not request.all_failed:
        raise InvalidRequestError("machine_name", "machine_name goes with all_failed")
    if request.all_failed:
        chosen = triggers.list_triggers(status=TriggerStatus.FAILED, machine_name=request.machine_name, limit=10_000)
    else:
        chosen = []
        for trigger_id in request.trigger_ids or []:
            trigger = triggers.find(trigger_id)
            if trigger is None or trigger.status != TriggerStatus.FAILED:
                what = "no such trigger" if trigger is None else f"it is {trigger.status.value}"
                raise InvalidRequestError("trigger_ids", f"{trigger_id}: only failed triggers can be resolved "
                                          f"({what})")
            chosen.append(trigger)
    resolved = []
    stamp = now()
    for trigger in chosen:
        with contextlib.suppress(TriggerTransitionError):  # resolved meanwhile by another caller
            resolved.append(triggers.transition(
                trigger.trigger_id, TriggerStatus.RESOLVED_MANUALLY, (TriggerStatus.FAILED,), stamp,
                resolved_by=caller, resolution_reason=request.reason, resolved_at=stamp.isoformat()))
    logger.info("triggers resolved", extra={"count": len(resolved), "by": caller})
    return ResolveTriggersResponse(resolved=[t.model_dump(mode="json") for t in resolved])
