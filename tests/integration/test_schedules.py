"""The template's schedule on the local cloud: RetrainSchedule exists where the AWS CLI looks (scheduler
get-schedule), no EventBridge rule invokes a function any more, and firing it (the command, the HTTP route)
starts the real retraining state machine, whose item records a drift check on the trained champion."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from typing import Any

import pytest
import requests

from localcloud.cloud import LocalCloud
from localcloud.schedules import LocalSchedules
from localcloud.template import REPO_ROOT
from tests.conftest import poll_pauses
from tests.integration.conftest import TRAINABLE_MACHINE, load_machines, start_cloud, train_champion
from tests.integration.test_retrain_flow import ITEM_SETTINGS

SCHEDULE = "RetrainSchedule"
CHAMPION_ROUTE = f"/models/{TRAINABLE_MACHINE}/status"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Any:
    # The items judge the whole 30 days the champion was trained on (test_retrain_flow's settings), so a
    # scheduled run over the unchanged demo data skips it as stable instead of starting a retrain by chance.
    local = start_cloud(tmp_path_factory.mktemp("schedules"),
                        environment_overrides={"RetrainItemFunction": ITEM_SETTINGS})
    try:
        load_machines(local)
        yield local
    finally:
        local.stop()


@pytest.fixture(scope="module")
def champion(cloud: LocalCloud) -> dict[str, Any]:
    job = train_champion(cloud)
    shown = requests.get(f"{cloud.api_url}{CHAMPION_ROUTE}", timeout=30).json()
    assert shown["champion"]["version"] == job["model_id"]
    assert shown.get("last_drift_check") is None  # nothing has checked it yet
    return dict(shown["champion"])


def last_check(cloud: LocalCloud) -> dict[str, Any] | None:
    check = requests.get(f"{cloud.api_url}{CHAMPION_ROUTE}", timeout=30).json().get("last_drift_check")
    return dict(check) if check else None


def run_id_of(execution_arn: str) -> str:
    return execution_arn.rsplit(":", 1)[-1]  # the execution's name is the run's id


def wait_for_run(cloud: LocalCloud, run_id: str, timeout: float = 400) -> dict[str, Any]:
    """A scheduled run's record is written by its Plan state (no API call wrote it first), so it is 404 until
    the execution gets there."""
    deadline = time.monotonic() + timeout
    pauses = poll_pauses()
    while True:
        answer = requests.get(f"{cloud.api_url}/retrains/{run_id}", timeout=30)
        assert answer.status_code in (200, 404), answer.text
        if answer.status_code == 200 and answer.json()["status"] != "running":
            return dict(answer.json())
        assert time.monotonic() < deadline, f"run {run_id} not finished after {timeout} s: {answer.text}"
        time.sleep(next(pauses))


def test_the_retrain_schedule_is_a_scheduler_schedule_aimed_at_the_retrain_state_machine(cloud: LocalCloud) -> None:
    spec = cloud.stack.schedules[SCHEDULE]

    schedule = cloud.client("scheduler").get_schedule(Name=spec.name)

    assert (schedule["ScheduleExpression"], schedule["State"]) == (spec.expression, "ENABLED")
    assert schedule["Target"]["Arn"] == cloud.stack.state_machines["RetrainStateMachine"].arn
    assert json.loads(schedule["Target"]["Input"]) == {"all": True, "source": "schedule"}
    # No second daily path: no EventBridge rule is left to invoke a function (the drift function's is gone).
    assert cloud.client("events").list_rules()["Rules"] == []
    assert set(cloud.stack.schedules) == {SCHEDULE}


def test_the_fire_command_runs_the_retraining_over_the_champion(cloud: LocalCloud, champion: dict[str, Any]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "localcloud", "fire-schedule", SCHEDULE, "--api-url", cloud.api_url],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, env=dict(os.environ), check=False)

    assert done.returncode == 0, done.stdout + done.stderr
    fired = json.loads(done.stdout)
    assert (fired["schedule"], fired["status"]) == (SCHEDULE, "succeeded")
    assert fired["event"] == {"all": True, "source": "schedule"}
    run = wait_for_run(cloud, run_id_of(fired["result"]["executionArn"]))
    assert run["status"] == "succeeded", run
    assert run["summary"]["models"] == 1 and run["summary"]["by_decision"] == {"skip: stable": 1}, run
    assert run["triggers"] == []  # stable: nothing started
    check = last_check(cloud)
    assert check is not None, "the scheduled run recorded no drift check on the champion"
    assert check["version"] == champion["version"] and check["status"] in ("stable", "moderate")


def test_the_route_starts_the_run_and_answers_before_it_ends(cloud: LocalCloud, champion: dict[str, Any]) -> None:
    """A state machine target is started as the scheduler starts it (StartExecution answers at once), so the
    route answers with the execution, wait or not, and the run goes on without it."""
    before = last_check(cloud) or {}

    answer = requests.post(f"{cloud.api_url}/_local/schedules/{SCHEDULE}/fire", params={"wait": "false"},
                           timeout=30)

    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "succeeded" and answer.json()["result"]["executionArn"]
    deadline = time.monotonic() + 300
    while (check := last_check(cloud)) is None or check["checked_at"] == before.get("checked_at"):
        assert time.monotonic() < deadline, "the asynchronous firing recorded no new check"
        time.sleep(0.5)
    assert check["version"] == champion["version"]


def test_the_scheduler_s_own_notification_is_a_run_over_every_champion(
        cloud: LocalCloud, champion: dict[str, Any]) -> None:
    """A schedule without Input sends EventBridge Scheduler's default notification; the plan takes that as
    a run over every champion."""
    assert cloud.runtime is not None
    plain = replace(cloud.stack.schedules[SCHEDULE], input=None)
    before = last_check(cloud) or {}

    firing = LocalSchedules({plain.logical_id: plain}, cloud.runtime.invoke, cloud.stack.account_id,
                            cloud.region, start_execution=cloud._start_scheduled_execution).fire(SCHEDULE)

    summary = firing.summary()
    assert summary["event"]["source"] == "aws.scheduler" and summary["event"]["detail-type"] == "Scheduled Event"
    assert summary["event"]["resources"] == [plain.arn]
    assert summary["status"] == "succeeded", summary
    run = wait_for_run(cloud, run_id_of(summary["result"]["executionArn"]))
    assert run["status"] == "succeeded" and run["summary"]["models"] == 1, run
    check = last_check(cloud)
    assert check is not None and check["checked_at"] != before.get("checked_at")
