"""The retraining routes through the real API handler, on moto (executions recorded, not run): the CLI's
contract (modelforge_cli/commands_runbook.py): POST /retrain -> 202 {run_id, execution_arn}; GET
/retrains/{run_id}; GET /triggers; POST /triggers/resolve, recording the caller; bad input -> 422 naming the
field, with nothing written."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from modelforge.adapters.trigger_store import TriggerStore
from modelforge.jobs import Indicator
from modelforge.triggers import Trigger, TriggerStatus
from tests.unit import test_api_handler
from tests.unit.test_api_handler import Cloud

# The API handler tests' fixtures: moto with the stack's resources, and the real handler.
boto_session, cloud, call = test_api_handler.boto_session, test_api_handler.cloud, test_api_handler.call

CALLER = "arn:aws:sts::123456789012:assumed-role/modelforge-client/ci-session"  # tests/events/post_train.json
Call = Callable[[dict[str, Any]], tuple[int, Any]]


def event(load_event: Callable[[str], dict[str, Any]], method: str, path: str, body: Any = None,
          query: dict[str, str] | None = None, path_parameters: dict[str, str] | None = None) -> dict[str, Any]:
    shaped = load_event("post_train")
    route = path if path_parameters is None else "/retrains/{run_id}"
    shaped["routeKey"] = f"{method} {route}"
    shaped["rawPath"] = shaped["requestContext"]["http"]["path"] = path
    shaped["requestContext"]["http"]["method"] = method
    shaped["requestContext"]["routeKey"] = shaped["routeKey"]
    shaped["rawQueryString"] = urlencode(query or {})
    shaped["queryStringParameters"] = query or None
    shaped["pathParameters"] = path_parameters
    if body is None:
        shaped.pop("body", None)
        shaped["headers"].pop("content-length", None)
    else:
        shaped["body"] = json.dumps(body)
        shaped["headers"]["content-length"] = str(len(shaped["body"]))
    return shaped


def store(cloud: Cloud) -> TriggerStore:
    return TriggerStore(cloud.stack.tables["TriggersTable"].name)


def champion(cloud: Cloud, machine: str) -> None:
    cloud.dynamodb.Table(cloud.stack.tables["ModelsTable"].name).put_item(Item={
        "model_name": f"champion#{machine}#status", "version": "current", "champion_version": "v1", "revision": 1})


def test_post_retrain_records_the_run_and_starts_its_execution(cloud: Cloud, call: Call,
                                                               load_event: Callable[[str], dict[str, Any]]) -> None:
    champion(cloud, "PUMP-1")
    status, body = call(event(load_event, "POST", "/retrain", {"machine_name": "PUMP-1", "indicator": "status",
                                                               "force": True}))
    assert status == 202, body
    arn = cloud.stack.state_machines["RetrainStateMachine"].arn
    assert body["execution_arn"].startswith(arn.replace(":stateMachine:", ":execution:"))
    execution = cloud.sfn.describe_execution(executionArn=body["execution_arn"])
    assert execution["name"] == body["run_id"]
    assert json.loads(execution["input"]) == {"run_id": body["run_id"], "machine_name": "PUMP-1",
                                              "indicator": "status", "all": False, "force": True}
    status, run = call(event(load_event, "GET", f"/retrains/{body['run_id']}",
                             path_parameters={"run_id": body["run_id"]}))
    assert status == 200 and run["status"] == "running" and run["triggers"] == []
    status, body = call(event(load_event, "POST", "/retrain", {"all": True}))
    assert status == 202, body


def test_bad_retrain_requests_name_the_field_and_write_nothing(cloud: Cloud, call: Call,
                                                                load_event: Callable[[str], dict[str, Any]]) -> None:
    cases = [({"machine_name": "NOPE", "indicator": "status"}, "machine_name"),
             ({"machine_name": "PUMP-1"}, "indicator"),
             ({"all": True, "machine_name": "PUMP-1", "indicator": "status"}, "all"),
             ({}, "machine_name"), ({"all": True, "everything": 1}, "everything"),
             ({"machine_name": "PUMP-1", "indicator": "speed"}, "indicator")]
    for body, field in cases:
        status, answer = call(event(load_event, "POST", "/retrain", body))
        assert status == 422, (body, answer)
        assert field in json.dumps(answer["detail"]), (body, answer)
    assert cloud.sfn.list_executions(
        stateMachineArn=cloud.stack.state_machines["RetrainStateMachine"].arn)["executions"] == []
    assert cloud.dynamodb.Table(cloud.stack.tables["TriggersTable"].name).scan()["Items"] == []


def add_trigger(cloud: Cloud, trigger_id: str, machine: str, status: TriggerStatus, run_id: str = "run-1") -> None:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    store(cloud).create(Trigger(trigger_id=trigger_id, run_id=run_id, model_name=f"{machine}#status",
                                machine_name=machine, indicator=Indicator.STATUS, reason="drift",
                                figures={"max_psi": 0.4}, status=status, created_at=now, updated_at=now))


def test_triggers_are_listed_by_status_machine_and_run_and_resolved_with_the_caller(
        cloud: Cloud, call: Call, load_event: Callable[[str], dict[str, Any]]) -> None:
    add_trigger(cloud, "t-1", "PUMP-1", TriggerStatus.FAILED)
    add_trigger(cloud, "t-2", "PUMP-2", TriggerStatus.FAILED, run_id="run-2")
    add_trigger(cloud, "t-3", "PUMP-1", TriggerStatus.COMPLETED)
    listed = {query: call(event(load_event, "GET", "/triggers", query=dict(query)))
              for query in ((("status", "failed"),), (("machine_name", "PUMP-1"),), (("run_id", "run-2"),), ())}
    ids = {query: sorted(t["trigger_id"] for t in body["triggers"]) for query, (_, body) in listed.items()}
    assert ids == {(("status", "failed"),): ["t-1", "t-2"], (("machine_name", "PUMP-1"),): ["t-1", "t-3"],
                   (("run_id", "run-2"),): ["t-2"], (): ["t-1", "t-2", "t-3"]}
    status, answer = call(event(load_event, "GET", "/triggers", query={"status": "stuck"}))
    assert status == 422 and "status" in json.dumps(answer["detail"])

    status, answer = call(event(load_event, "POST", "/triggers/resolve", {"trigger_ids": ["t-1", "t-3"],
                                                                          "reason": "fixed by hand"}))
    assert status == 422 and "trigger_ids" in json.dumps(answer["detail"]), answer
    assert store(cloud).get("t-1").status == TriggerStatus.FAILED
    status, answer = call(event(load_event, "POST", "/triggers/resolve", {"all_failed": True,
                                                                          "machine_name": "PUMP-2",
                                                                          "reason": "data fixed upstream"}))
    assert status == 200, answer
    (resolved,) = answer["resolved"]
    assert (resolved["trigger_id"], resolved["status"]) == ("t-2", "resolved_manually")
    assert (resolved["resolved_by"], resolved["resolution_reason"]) == (CALLER, "data fixed upstream")
    status, answer = call(event(load_event, "POST", "/triggers/resolve", {"trigger_ids": ["t-1"]}))
    assert status == 422 and "reason" in json.dumps(answer["detail"])


def test_an_unknown_run_is_a_404(cloud: Cloud, call: Call, load_event: Callable[[str], dict[str, Any]]) -> None:
    status, _ = call(event(load_event, "GET", "/retrains/nope", path_parameters={"run_id": "nope"}))
    assert status == 404
