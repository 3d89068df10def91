"""Target of the EventBridge rule on the training state machine's status changes: a retrain's trigger record
follows its execution (running, completed, failed) and an ended one frees its model's in-flight lock."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from modelforge.adapters.trigger_store import TriggerStore
from modelforge.logic.reconcile import ExecutionStatusChange
from modelforge.logic.retrain_runs import apply_execution_event
from modelforge.observability import logger, tracer
from modelforge.settings import TriggerEventsSettings


@cache
def _triggers(settings: TriggerEventsSettings) -> TriggerStore:
    return TriggerStore(settings.triggers_table_name)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    change = ExecutionStatusChange.model_validate(event["detail"])
    updated = apply_execution_event(change, triggers=_triggers(TriggerEventsSettings.from_env()))
    return {"trigger_id": None if updated is None else updated.trigger_id,
            "status": None if updated is None else updated.status.value}
