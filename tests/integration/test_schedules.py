"""The template's schedules on the local cloud: DriftSchedule exists where the AWS CLI looks, and firing it (the
command, the HTTP route) runs the real drift function through the local runtime, which records a drift check
on the trained champion."""

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
from tests.conftest import wait_for_job
from tests.integration.conftest import TRAINABLE_MACHINE

DRIFT_SCHEDULE = "DriftFunctionScheduled"
CHAMPION_ROUTE = f"/models/{TRAINABLE_MACHINE}/status"


@pytest.fixture(scope="module")
def champion(cloud: LocalCloud) -> dict[str, Any]:
    answer = requests.post(f"{cloud.api_url}/train", json={"indicator": "status", "machine_name": TRAINABLE_MACHINE},
                           timeout=30)
    assert answer.status_code == 200, answer.text
    job = wait_for_job(cloud.api_url, answer.json()["process_id"], timeout=300)
    assert job["status"] == "completed" and job["gate_decision"] == "promoted", job
    shown = requests.get(f"{cloud.api_url}{CHAMPION_ROUTE}", timeout=30).json()
    assert shown["champion"]["version"] == job["model_id"]
    assert shown.get("last_drift_check") is None  # nothing has checked it yet
    return dict(shown["champion"])


def last_check(cloud: LocalCloud) -> dict[str, Any] | None:
    check = requests.get(f"{cloud.api_url}{CHAMPION_ROUTE}", timeout=30).json().get("last_drift_check")
    return dict(check) if check else None


def test_the_drift_schedule_is_a_rule_aimed_at_the_drift_function(cloud: LocalCloud) -> None:
    spec = cloud.stack.schedules[DRIFT_SCHEDULE]
    events = cloud.client("events")

    (rule,) = [r for r in events.list_rules()["Rules"] if r["Name"] == spec.name]
    (target,) = events.list_targets_by_rule(Rule=spec.name)["Targets"]

    assert (rule["Arn"], rule["ScheduleExpression"], rule["State"]) == (spec.arn, spec.expression, "ENABLED")
    assert target["Arn"] == cloud.stack.functions["DriftFunction"].arn
    assert json.loads(target["Input"]) == {"source": "schedule"}


def test_the_fire_command_checks_the_champion(cloud: LocalCloud, champion: dict[str, Any]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "localcloud", "fire-schedule", "DriftFunction", "--api-url", cloud.api_url],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, env=dict(os.environ), check=False)

    assert done.returncode == 0, done.stdout + done.stderr
    fired = json.loads(done.stdout)
    assert (fired["schedule"], fired["status"], fired["event"]) == (DRIFT_SCHEDULE, "succeeded", {"source": "schedule"})
    (result,) = [r for r in fired["result"]["results"] if r["machine_name"] == TRAINABLE_MACHINE]
    assert result["version"] == champion["version"] and result["status"] in ("stable", "moderate", "drift")
    check = last_check(cloud)
    assert check is not None, "the scheduled check recorded nothing on the champion"
    assert (check["version"], check["status"], check["checked_at"]) == (
        champion["version"], result["status"], result["checked_at"])


def test_the_route_fires_asynchronously_as_eventbridge_does(cloud: LocalCloud, champion: dict[str, Any]) -> None:
    before = last_check(cloud) or {}

    answer = requests.post(f"{cloud.api_url}/_local/schedules/{DRIFT_SCHEDULE}/fire", params={"wait": "false"},
                           timeout=30)

    assert answer.status_code == 202, answer.text
    assert answer.json()["status"] == "accepted"
    deadline = time.monotonic() + 300
    while (check := last_check(cloud)) is None or check["checked_at"] == before.get("checked_at"):
        assert time.monotonic() < deadline, "the asynchronous firing recorded no new check"
        time.sleep(0.5)
    assert check["version"] == champion["version"]


def test_eventbridge_s_own_scheduled_event_is_a_check_of_every_champion(
        cloud: LocalCloud, champion: dict[str, Any]) -> None:
    """A schedule without Input gets EventBridge's Scheduled Event; the drift function takes that as well."""
    assert cloud.runtime is not None
    plain = replace(cloud.stack.schedules[DRIFT_SCHEDULE], input=None)
    before = last_check(cloud) or {}

    firing = LocalSchedules({plain.logical_id: plain}, cloud.runtime.invoke, cloud.stack.account_id,
                            cloud.region).fire(DRIFT_SCHEDULE)

    summary = firing.summary()
    assert summary["event"]["source"] == "aws.events" and summary["event"]["detail-type"] == "Scheduled Event"
    assert summary["event"]["resources"] == [plain.arn]
    assert summary["status"] == "succeeded", summary
    check = last_check(cloud)
    assert check is not None and check["checked_at"] != before.get("checked_at")
