"""The template's schedules in the local stack, and localcloud.schedules firing them: what EventBridge (a
function's Schedule event) or EventBridge Scheduler (RetrainSchedule) would deliver, through the runtime's invoke
or start_execution, by hand (the command and the HTTP route) or by the clock.

The template's one schedule is RetrainSchedule (an AWS::Scheduler::Schedule aimed at the retraining state
machine). The local cloud still supports a function's ``Schedule`` event, SAM's other kind, so those tests run
on the template plus one synthetic event: ReconcileFunction's ``Scheduled``, on a ``SweepSchedule`` parameter."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from localcloud import __main__ as cli
from localcloud.http_api import LOCAL_PREFIX, LocalHttpApi, Route
from localcloud.runtime import InvocationResult
from localcloud.schedules import LocalSchedules, cron_matches, rate_seconds, scheduled_event
from localcloud.template import REPO_ROOT, LocalStack, load_template, resolve_stack
from modelforge.logic.retrain_runs import PlanRequest

ACCOUNT, REGION = "123456789012", "us-east-1"
RULE = "ReconcileFunctionScheduled"  # SAM's rule for the synthetic event: <function><event>
RULE_FUNCTION = "ReconcileFunction"
RULE_INPUT = '{"source": "schedule"}'


class FakeInvoke:
    def __init__(self, result: Any = None, error: str | None = None) -> None:
        self.result = InvocationResult(json.dumps(result if result is not None else {"checked": 0}).encode(), error)
        self.calls: list[tuple[str, Any]] = []
        self.called = threading.Event()

    def __call__(self, function_name: str, payload: bytes) -> InvocationResult:
        self.calls.append((function_name, json.loads(payload)))
        self.called.set()
        return self.result


def rule_template(tmp: Path) -> Path:
    """template.yaml plus a function Schedule event whose expression is a parameter (as an operator's would be)."""
    template = load_template()
    template["Parameters"]["SweepSchedule"] = {"Type": "String", "Default": "rate(1 day)"}
    template["Resources"][RULE_FUNCTION]["Properties"]["Events"] = {"Scheduled": {"Type": "Schedule", "Properties": {
        "Schedule": {"Ref": "SweepSchedule"}, "Input": RULE_INPUT}}}
    path = tmp / "template.yaml"
    path.write_text(json.dumps(template))  # JSON is YAML
    (tmp / "state_machine").symlink_to(REPO_ROOT / "state_machine")
    return path


@pytest.fixture(scope="module")
def rule_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return rule_template(tmp_path_factory.mktemp("rule"))


@pytest.fixture(scope="module")
def rule_stack(rule_path: Path) -> LocalStack:
    """The template with the synthetic rule, resolved (never mutate it)."""
    return resolve_stack(template_path=rule_path)


# ---------------------------------------------------------------- the template's schedules, resolved


def test_the_retrain_schedule_is_the_templates_only_schedule(local_stack: LocalStack) -> None:
    """No second daily path: nothing else in the template loops over the champions or starts retrains."""
    assert set(local_stack.schedules) == {"RetrainSchedule"}
    assert "DriftSchedule" not in load_template()["Parameters"]
    assert all(not spec.get("Properties", {}).get("Events", {}) or all(
        event["Type"] not in ("Schedule", "ScheduleV2") for event in spec["Properties"]["Events"].values())
        for spec in load_template()["Resources"].values())
    assert local_stack.functions["DriftFunction"].event_patterns == ()
    assert local_stack.functions["DriftFunction"].http_routes == ()


def test_a_function_schedule_event_is_in_the_local_stack(rule_stack: LocalStack) -> None:
    assert set(rule_stack.schedules) == {RULE, "RetrainSchedule"}
    spec = rule_stack.schedules[RULE]
    function = rule_stack.functions[RULE_FUNCTION]

    assert spec.logical_id == RULE and spec.kind == "Schedule" and spec.event_name == "Scheduled"
    assert (spec.function_logical_id, spec.function_name) == (RULE_FUNCTION, function.name)
    assert spec.expression == "rate(1 day)"  # the parameter's default
    assert spec.input == RULE_INPUT and json.loads(spec.input) == {"source": "schedule"}
    assert spec.arn == f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{rule_stack.stack_name}-{RULE}"
    assert spec.enabled is True


def test_the_schedule_follows_its_parameter(rule_path: Path) -> None:
    stack = resolve_stack(template_path=rule_path, parameter_overrides={"SweepSchedule": "cron(0 3 * * ? *)"})

    assert stack.schedules[RULE].expression == "cron(0 3 * * ? *)"


@pytest.mark.parametrize("name", [RULE, RULE_FUNCTION, f"modelforge-local-{RULE_FUNCTION}", f"modelforge-local-{RULE}"])
def test_a_schedule_is_found_by_its_id_its_rule_or_its_function(rule_stack: LocalStack, name: str) -> None:
    assert rule_stack.schedule(name).logical_id == RULE
    assert rule_stack.schedule(rule_stack.schedules[RULE].arn).logical_id == RULE


@pytest.mark.parametrize("name", ["RetrainSchedule", "modelforge-local-RetrainSchedule"])
def test_the_retrain_schedule_is_found_by_its_id_or_its_name(local_stack: LocalStack, name: str) -> None:
    assert local_stack.schedule(name).logical_id == "RetrainSchedule"
    assert local_stack.schedule(local_stack.schedules["RetrainSchedule"].arn).logical_id == "RetrainSchedule"


def test_an_unknown_schedule_names_the_known_ones(local_stack: LocalStack) -> None:
    with pytest.raises(KeyError, match="RetrainSchedule"):
        local_stack.schedule("ApiFunction")


def test_schedule_v2_events_and_disabled_schedules_are_resolved(tmp_path: Any) -> None:
    template = load_template()
    events = template["Resources"]["ReconcileFunction"]["Properties"].setdefault("Events", {})
    events["Nightly"] = {"Type": "ScheduleV2", "Properties": {
        "ScheduleExpression": "rate(5 minutes)", "GroupName": "ops", "State": "DISABLED"}}
    events["Hourly"] = {"Type": "Schedule", "Properties": {"Schedule": "rate(1 hour)", "Name": "hourly",
                                                          "Enabled": False}}
    path = tmp_path / "template.yaml"
    path.write_text(json.dumps(template))  # JSON is YAML
    (tmp_path / "state_machine").symlink_to(REPO_ROOT / "state_machine")

    stack = resolve_stack(template_path=path)
    nightly, hourly = stack.schedules["ReconcileFunctionNightly"], stack.schedules["ReconcileFunctionHourly"]

    assert (nightly.kind, nightly.expression, nightly.input, nightly.enabled, nightly.group) == (
        "ScheduleV2", "rate(5 minutes)", None, False, "ops")
    assert nightly.arn == f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/ops/modelforge-local-ReconcileFunctionNightly"
    assert (hourly.name, hourly.enabled) == ("hourly", False)
    assert hourly.arn == f"arn:aws:events:{REGION}:{ACCOUNT}:rule/hourly"
    with pytest.raises(KeyError, match="several schedules"):
        stack.schedule("ReconcileFunction")


# ---------------------------------------------------------------- what a firing delivers


def test_a_target_with_input_gets_its_input_verbatim(local_stack: LocalStack, rule_stack: LocalStack) -> None:
    spec = local_stack.schedules["RetrainSchedule"]

    assert scheduled_event(spec, ACCOUNT, REGION) == spec.input.encode()  # type: ignore[union-attr]
    # The plan takes it: every champion, decided (not forced).
    request = PlanRequest.model_validate({**json.loads(spec.input or ""), "run_id": "r"})
    assert request.all is True and request.force is False and request.machine_name is None
    rule = rule_stack.schedules[RULE]
    assert scheduled_event(rule, ACCOUNT, REGION) == RULE_INPUT.encode()


def test_without_input_eventbridge_sends_its_scheduled_event(rule_stack: LocalStack) -> None:
    spec = replace(rule_stack.schedules[RULE], input=None)
    now = datetime(2025, 3, 1, 6, 0, tzinfo=UTC)

    event = json.loads(scheduled_event(spec, ACCOUNT, REGION, now))

    assert event.pop("id")
    assert event == {"version": "0", "detail-type": "Scheduled Event", "source": "aws.events", "account": ACCOUNT,
                     "time": "2025-03-01T06:00:00Z", "region": REGION, "resources": [spec.arn], "detail": {}}
    request = PlanRequest.model_validate({**event, "run_id": "r"})  # EventBridge's own fields are ignored
    assert request.machine_name is None and request.indicator is None and request.all is False


def test_without_input_scheduler_sends_its_default_notification(local_stack: LocalStack) -> None:
    spec = replace(local_stack.schedules["RetrainSchedule"], input=None,
                   arn=f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/default/retrain")

    event = json.loads(scheduled_event(spec, ACCOUNT, REGION))

    assert (event["source"], event["detail-type"], event["resources"], event["detail"]) == (
        "aws.scheduler", "Scheduled Event", [spec.arn], "{}")


@pytest.mark.parametrize(("expression", "seconds"), [
    ("rate(1 minute)", 60), ("rate(5 minutes)", 300), ("rate(1 hour)", 3600), ("rate(2 days)", 172800),
    ("cron(0 3 * * ? *)", None)])
def test_rate_expressions(expression: str, seconds: float | None) -> None:
    assert rate_seconds(expression) == seconds


@pytest.mark.parametrize("expression", ["rate(1 minutes)", "rate(5 minute)", "rate(0 minutes)", "daily"])
def test_malformed_expressions_are_refused(expression: str) -> None:
    with pytest.raises(ValueError):
        rate_seconds(expression)


# ---------------------------------------------------------------- firing by hand and on a rate


def schedules(stack: LocalStack, invoke: FakeInvoke, **kwargs: Any) -> LocalSchedules:
    return LocalSchedules(stack.schedules, invoke, ACCOUNT, REGION, **kwargs)


def test_fire_invokes_the_function_with_the_event_and_waits(rule_stack: LocalStack) -> None:
    invoke = FakeInvoke({"checked": 2, "drifted": 0, "results": []})

    firing = schedules(rule_stack, invoke).fire(RULE_FUNCTION)

    assert invoke.calls == [(rule_stack.functions[RULE_FUNCTION].name, {"source": "schedule"})]
    summary = firing.summary()
    assert summary["status"] == "succeeded" and summary["result"]["checked"] == 2
    assert summary["event"] == {"source": "schedule"} and summary["schedule"] == RULE


def test_a_failed_function_is_reported(rule_stack: LocalStack) -> None:
    invoke = FakeInvoke({"errorType": "ReconcileFailedError", "errorMessage": "M: boom"}, error="Unhandled")

    summary = schedules(rule_stack, invoke).fire(RULE).summary()

    assert summary["status"] == "failed" and summary["error"]["errorType"] == "ReconcileFailedError"


def test_fire_without_waiting_delivers_asynchronously(rule_stack: LocalStack) -> None:
    invoke = FakeInvoke()

    firing = schedules(rule_stack, invoke).fire(RULE, wait=False)

    assert firing.result is None and firing.summary()["status"] == "accepted"
    assert invoke.called.wait(5)


def test_rate_schedules_fire_on_their_period_only_when_asked(rule_path: Path) -> None:
    stack = resolve_stack(template_path=rule_path, parameter_overrides={"SweepSchedule": "rate(1 minute)"})
    stack = replace(stack, schedules={RULE: stack.schedules[RULE]})  # RetrainSchedule's cron is not under test
    now = [1000.0]
    idle, ticking = FakeInvoke(), FakeInvoke()
    off = schedules(stack, idle, clock=lambda: now[0])
    on = schedules(stack, ticking, run=True, clock=lambda: now[0])
    off.start()
    on.start()
    try:
        time.sleep(1.5)
        assert ticking.calls == []  # as in AWS, a rate schedule first fires one period after its creation
        now[0] += 61
        assert ticking.called.wait(5)
        assert ticking.calls == [(stack.functions[RULE_FUNCTION].name, {"source": "schedule"})]
        assert idle.calls == [] and not off.running and on.running
    finally:
        on.stop()
        off.stop()


# ---------------------------------------------------------------- the HTTP route and the command


@pytest.fixture
def front(rule_stack: LocalStack) -> tuple[LocalHttpApi, FakeInvoke, FakeInvoke]:
    api_invoke, rule_invoke = FakeInvoke({"statusCode": 200, "body": "{}"}), FakeInvoke({"checked": 1})
    spec = rule_stack.functions["ApiFunction"]
    routes = [Route(method, path, spec.name) for method, path in spec.http_routes]
    api = LocalHttpApi(routes, api_invoke, "127.0.0.1", 0, ACCOUNT, schedules=schedules(rule_stack, rule_invoke))
    return api, api_invoke, rule_invoke


def test_no_template_route_is_under_the_local_prefix(local_stack: LocalStack) -> None:
    """So a deployed API has none of the local tooling's routes (API Gateway answers them 403/404)."""
    paths = [path for spec in local_stack.functions.values() for _, path in spec.http_routes]
    assert paths and not [p for p in paths if p.startswith(LOCAL_PREFIX.rstrip("/"))]


def test_the_route_lists_the_schedules(front: tuple[LocalHttpApi, FakeInvoke, FakeInvoke]) -> None:
    api, api_invoke, _ = front

    status, _, body = api.handle("GET", "/_local/schedules", {}, b"", "127.0.0.1")

    assert status == 200
    listed = {entry["schedule"]: entry for entry in json.loads(body)["schedules"]}
    assert listed[RULE]["period_seconds"] == 86400
    assert listed["RetrainSchedule"]["period_seconds"] is None  # cron: fired at the minutes it names
    assert api_invoke.calls == []


@pytest.mark.parametrize(("target", "status", "state"), [
    (f"/_local/schedules/{RULE}/fire", 200, "succeeded"),
    (f"/_local/schedules/{RULE_FUNCTION}/fire?wait=false", 202, "accepted")])
def test_the_route_fires_a_schedule(front: tuple[LocalHttpApi, FakeInvoke, FakeInvoke], target: str, status: int,
                                    state: str) -> None:
    api, api_invoke, rule_invoke = front

    answer, _, body = api.handle("POST", target, {}, b"", "127.0.0.1")

    assert answer == status and json.loads(body)["status"] == state
    assert rule_invoke.called.wait(5)
    assert rule_invoke.calls[0][1] == {"source": "schedule"} and api_invoke.calls == []


@pytest.mark.parametrize(("method", "target"), [
    ("POST", "/_local/schedules/Nope/fire"), ("GET", f"/_local/schedules/{RULE}/fire"),
    ("POST", "/_local/anything")])
def test_other_local_requests_are_404(front: tuple[LocalHttpApi, FakeInvoke, FakeInvoke], method: str,
                                      target: str) -> None:
    api, api_invoke, rule_invoke = front

    status, _, _ = api.handle(method, target, {}, b"", "127.0.0.1")

    assert status == 404 and api_invoke.calls == [] and rule_invoke.calls == []


def test_a_failed_scheduled_function_is_a_502(rule_stack: LocalStack) -> None:
    failing = FakeInvoke({"errorType": "ReconcileFailedError", "errorMessage": "boom"}, error="Unhandled")
    api = LocalHttpApi([], FakeInvoke(), "127.0.0.1", 0, ACCOUNT, schedules=schedules(rule_stack, failing))

    status, _, body = api.handle("POST", f"/_local/schedules/{RULE}/fire", {}, b"", "127.0.0.1")

    assert status == 502 and json.loads(body)["error"]["errorMessage"] == "boom"


def test_the_command_fires_through_a_running_front(rule_stack: LocalStack, capsys: pytest.CaptureFixture[str]) -> None:
    rule_invoke = FakeInvoke({"checked": 1})
    api = LocalHttpApi([], FakeInvoke(), "127.0.0.1", 0, ACCOUNT, schedules=schedules(rule_stack, rule_invoke))
    api.start()
    url = f"http://127.0.0.1:{api.port}"
    try:
        assert cli.main(["fire-schedule", RULE_FUNCTION, "--api-url", url]) == 0
        fired = json.loads(capsys.readouterr().out)
        assert fired["status"] == "succeeded" and fired["result"] == {"checked": 1}
        assert rule_invoke.calls == [(rule_stack.functions[RULE_FUNCTION].name, {"source": "schedule"})]

        assert cli.main(["fire-schedule", "Nope", "--api-url", url]) == 2
        assert "no schedule named Nope" in capsys.readouterr().out
        assert cli.main(["schedules", "--api-url", url]) == 0
        assert json.loads(capsys.readouterr().out)["schedules"][0]["schedule"] == RULE
    finally:
        api.stop()
    assert cli.main(["fire-schedule", RULE_FUNCTION, "--api-url", url]) == 2  # nothing listens any more


def test_the_retrain_schedule_is_a_scheduler_schedule_that_starts_the_retrain_state_machine(
        local_stack: LocalStack) -> None:
    spec = local_stack.schedules["RetrainSchedule"]
    props = load_template()["Resources"]["RetrainSchedule"]["Properties"]
    assert (spec.kind, spec.target_kind) == ("ScheduleV2", "state_machine")
    assert spec.target_arn == local_stack.state_machines["RetrainStateMachine"].arn
    assert spec.expression == load_template()["Parameters"]["RetrainScheduleExpression"]["Default"]
    assert json.loads(str(spec.input)) == json.loads(props["Target"]["Input"]) == {"all": True, "source": "schedule"}
    assert spec.enabled is True and spec.timezone == "UTC"
    assert resolve_stack(parameter_overrides={"RetrainScheduleState": "DISABLED"}).schedules[
        "RetrainSchedule"].enabled is False


def test_firing_a_state_machine_schedule_starts_an_execution_with_its_input(local_stack: LocalStack) -> None:
    started: list[tuple[str, bytes]] = []

    def start(arn: str, payload: bytes) -> str:
        started.append((arn, payload))
        return f"{arn}:run-1"

    schedules = LocalSchedules(local_stack.schedules, lambda name, event: InvocationResult(b"{}"), ACCOUNT, REGION,
                               start_execution=start)
    firing = schedules.fire("RetrainSchedule")
    arn = local_stack.state_machines["RetrainStateMachine"].arn
    assert started == [(arn, b'{"all": true, "source": "schedule"}')]
    assert firing.summary()["status"] == "succeeded" and firing.summary()["result"] == {"executionArn": f"{arn}:run-1"}


@pytest.mark.parametrize(("expression", "when", "fires"), [
    ("cron(0 3 * * ? *)", datetime(2026, 1, 1, 3, 0), True),
    ("cron(0 3 * * ? *)", datetime(2026, 1, 1, 3, 1), False),
    ("cron(0/15 * ? * MON-FRI *)", datetime(2026, 12, 2, 10, 45), True),  # a Wednesday
    ("cron(0/15 * ? * MON-FRI *)", datetime(2026, 12, 6, 10, 45), False),  # a Sunday
    ("cron(30 8,20 1 JAN,JUL ? 2026)", datetime(2026, 7, 1, 20, 30), True),
    ("cron(30 8,20 1 JAN,JUL ? 2027)", datetime(2026, 7, 1, 20, 30), False),
])
def test_cron_expressions_fire_at_the_minutes_they_name(expression: str, when: datetime, fires: bool) -> None:
    assert cron_matches(expression, when) is fires


def test_cron_schedules_fire_by_the_clock_in_their_time_zone(local_stack: LocalStack) -> None:
    minutes = iter([datetime(2026, 1, 1, 2, 59, tzinfo=UTC), datetime(2026, 1, 1, 3, 0, tzinfo=UTC)])
    started: list[str] = []
    only = {"RetrainSchedule": local_stack.schedules["RetrainSchedule"]}
    schedules = LocalSchedules(only, lambda name, event: InvocationResult(b"{}"), ACCOUNT, REGION, run=True,
                               start_execution=lambda arn, payload: started.append(arn) or "x",
                               wall_clock=lambda: next(minutes, datetime(2026, 1, 1, 3, 0, tzinfo=UTC)))
    schedules.start()
    try:
        for _ in range(50):
            if started:
                break
            time.sleep(0.1)
    finally:
        schedules.stop()
    assert started == [local_stack.state_machines["RetrainStateMachine"].arn]
    with pytest.raises(ValueError, match="L, W and #"):
        cron_matches("cron(0 3 L * ? *)", datetime(2026, 1, 31, 3, 0))
