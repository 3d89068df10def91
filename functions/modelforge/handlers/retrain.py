"""The retraining state machine's Lambda tasks (state_machine/retrain.asl.json): ``plan_handler`` (Plan),
``item_handler`` (the Distributed Map's item: one model) and ``summary_handler`` (Summary). The item needs the
drift check's pandas; plan and summary only their light modules, so they can run as zip functions."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from modelforge.adapters.model_registry import ModelRegistry
from modelforge.adapters.retrain_items import RetrainItemsFile
from modelforge.adapters.trigger_store import TriggerStore
from modelforge.logic.retrain_runs import PlanRequest, SummaryRequest, plan_run, summarize_run
from modelforge.observability import logger, metrics, tracer
from modelforge.settings import RetrainSettings
from modelforge.triggers import RetrainItem


@cache
def _stores(settings: RetrainSettings) -> tuple[ModelRegistry, TriggerStore]:
    return ModelRegistry(settings.models_table_name), TriggerStore(settings.triggers_table_name)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def plan_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = PlanRequest.model_validate({**(event.get("request") or {}), "run_id": event["run_id"]})
    settings = RetrainSettings.from_env()
    registry, triggers = _stores(settings)
    items = RetrainItemsFile(settings.data_bucket_name, settings.retrain_items_prefix)
    return plan_run(request, registry=registry, triggers=triggers, items=items).model_dump(mode="json")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def item_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    from modelforge.handlers.retrain_item import process

    # RecordItemFailure sends the item with the error DecideModel's Catch added.
    return process(RetrainItem.model_validate(event), RetrainSettings.from_env(), failure=event.get("error"))


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def summary_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    _, triggers = _stores(RetrainSettings.from_env())
    # The Summarize state passes its whole input (the plan's ids, and the map's error if it failed);
    # RecordPlanFailure the run id and the planner's error.
    request = SummaryRequest.model_validate({"run_id": event["plan"]["run_id"], "error": event.get("error")})
    return summarize_run(request, triggers=triggers)
