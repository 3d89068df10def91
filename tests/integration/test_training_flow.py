"""A job through the real API, the real state machine and the real training handler."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
import requests

from localcloud.cloud import LocalCloud
from tests.conftest import wait_for_job
from tests.integration.conftest import QUIET_MACHINE, TRAINABLE_MACHINE

SEED_FIELDS = {"process_id", "indicator", "machine_name", "status", "error_message", "created_at", "updated_at",
               "finished_at", "bucket_address"}


def _submit(cloud: LocalCloud, **body: Any) -> str:
    response = requests.post(f"{cloud.api_url}/train", json=body, timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "pending"
    return str(response.json()["process_id"])


def _states_entered(cloud: LocalCloud, execution_arn: str) -> list[str]:
    events = cloud.client("stepfunctions").get_execution_history(executionArn=execution_arn,
                                                                 maxResults=1000)["events"]
    return [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]


def _lambda_calls(cloud: LocalCloud, execution_arn: str) -> int:
    events = cloud.client("stepfunctions").get_execution_history(executionArn=execution_arn,
                                                                 maxResults=1000)["events"]
    return sum(1 for e in events if e["type"] == "TaskScheduled"
               and e["taskScheduledEventDetails"]["resourceType"] == "lambda")


@pytest.fixture(scope="module")
def completed_job(cloud: LocalCloud) -> dict[str, Any]:
    seen: list[str] = []
    process_id = _submit(cloud, indicator="status", machine_name=TRAINABLE_MACHINE)
    job = wait_for_job(cloud.api_url, process_id, seen=seen)
    job["_seen"] = seen
    return job


def test_job_goes_pending_running_completed(cloud: LocalCloud, completed_job: dict[str, Any]) -> None:
    assert completed_job["status"] == "completed", completed_job["error_message"]
    assert completed_job.keys() >= SEED_FIELDS
    assert completed_job["error_message"] is None
    assert completed_job["finished_at"] is not None
    # Polling can miss a short state, but the order must hold and the execution must have entered each step.
    order = ["pending", "running", "completed"]
    assert [s for s in order if s in completed_job["_seen"]] == completed_job["_seen"]
    assert _states_entered(cloud, completed_job["execution_arn"]) == [
        "MarkJobRunning", "ChooseCompute", "TrainModel", "GateChallenger", "MarkJobCompleted", "TrainingSucceeded"]


def test_model_exists_in_s3_with_the_recorded_sha256(cloud: LocalCloud, completed_job: dict[str, Any]) -> None:
    address = completed_job["bucket_address"]
    bucket, key = address.removeprefix("s3://").split("/", 1)
    # In the job's own folder, which the reconciler's sweep lists when a training dies.
    assert key.startswith(f"model/{completed_job['process_id']}/xgb_model_{TRAINABLE_MACHINE}_")
    assert key.endswith(".ubj")
    body = cloud.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()

    models_table = cloud.stack.tables["ModelsTable"].name
    item = cloud.client("dynamodb").get_item(
        TableName=models_table,
        Key={"model_name": {"S": f"{TRAINABLE_MACHINE}#status"}, "version": {"S": completed_job["model_id"]}},
    )["Item"]
    assert item["artifact_uri"]["S"] == address
    assert hashlib.sha256(body).hexdigest() == item["artifact_sha256"]["S"]
    # It is XGBoost's own format and loads without pickle.
    import xgboost as xgb

    booster = xgb.Booster()
    booster.load_model(bytearray(body))
    assert booster.num_features() > 0


def test_completed_job_shows_headline_metrics(completed_job: dict[str, Any]) -> None:
    metrics = completed_job["metrics"]
    assert {"recall", "precision", "pr_auc", "threshold"} <= metrics.keys()
    assert 0 < metrics["recall"] <= 1 and 0 < metrics["precision"] <= 1


def test_data_error_fails_the_job_with_its_message_and_is_not_retried(cloud: LocalCloud) -> None:
    process_id = _submit(cloud, indicator="status", machine_name=QUIET_MACHINE)
    job = wait_for_job(cloud.api_url, process_id)
    assert job["status"] == "failed"
    assert job["error_message"].startswith("NoFailureEventsError: ")
    assert "no failure event" in job["error_message"]
    assert job["bucket_address"] is None
    assert _lambda_calls(cloud, job["execution_arn"]) == 1  # data errors are final: one attempt
    execution = cloud.client("stepfunctions").describe_execution(executionArn=job["execution_arn"])
    assert execution["status"] == "FAILED"


def test_job_never_moves_backwards(cloud: LocalCloud, completed_job: dict[str, Any]) -> None:
    # A second execution for a finished job (a replay, or a duplicate start) must stop at its first write.
    sfn = cloud.client("stepfunctions")
    arn = sfn.start_execution(stateMachineArn=cloud.outputs["StateMachineArn"], name="replay-of-completed",
                              input=json.dumps({"process_id": completed_job["process_id"]}))["executionArn"]
    import time

    for _ in range(100):
        execution = sfn.describe_execution(executionArn=arn)
        if execution["status"] != "RUNNING":
            break
        time.sleep(0.1)
    assert execution["status"] == "FAILED"
    assert execution.get("error") == "JobNotPending"
    after = requests.get(f"{cloud.api_url}/status/{completed_job['process_id']}", timeout=30).json()
    assert after["status"] == "completed"
    assert after["finished_at"] == completed_job["finished_at"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"indicator": "weather", "machine_name": TRAINABLE_MACHINE}, "indicator"),
        ({"indicator": "status"}, "machine_name"),
        ({"indicator": "status", "machine_name": "NO-SUCH-MACHINE"}, "machine_name"),
        ({"indicator": "status", "machine_name": TRAINABLE_MACHINE, "start_date": "2025-13-01"}, "start_date"),
        ({"indicator": "status", "machine_name": TRAINABLE_MACHINE, "start_date": "2025-02-01",
          "end_date": "2025-01-01"}, "end_date"),
        ({"indicator": "status", "machine_name": TRAINABLE_MACHINE, "start_date": "2030-01-01"}, "start_date"),
        ({"indicator": "status", "machine_name": TRAINABLE_MACHINE, "priority": "high"}, "priority"),
    ],
)
def test_bad_requests_get_422_naming_the_field(cloud: LocalCloud, body: dict[str, Any], field: str) -> None:
    jobs_before = _job_count(cloud)
    response = requests.post(f"{cloud.api_url}/train", json=body, timeout=30)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert any(entry["loc"][-1] == field and entry["msg"] for entry in detail), detail
    assert _job_count(cloud) == jobs_before  # nothing half-written


def test_unknown_job_is_404_and_malformed_id_is_422(cloud: LocalCloud) -> None:
    missing = requests.get(f"{cloud.api_url}/status/00000000-0000-4000-8000-000000000000", timeout=30)
    assert missing.status_code == 404
    malformed = requests.get(f"{cloud.api_url}/status/not-a-uuid", timeout=30)
    assert malformed.status_code == 422
    assert malformed.json()["detail"][0]["loc"] == ["path", "process_id"]


def test_jobs_and_machines_listings(cloud: LocalCloud, completed_job: dict[str, Any]) -> None:
    jobs = requests.get(f"{cloud.api_url}/jobs", params={"machine_name": TRAINABLE_MACHINE}, timeout=30).json()
    assert completed_job["process_id"] in [job["process_id"] for job in jobs["jobs"]]
    created = [job["created_at"] for job in jobs["jobs"]]
    assert created == sorted(created, reverse=True)
    machines = requests.get(f"{cloud.api_url}/machines", timeout=30).json()["machines"]
    assert {m["machine_name"] for m in machines} == {TRAINABLE_MACHINE, QUIET_MACHINE}
    assert all(m["first_timestamp"] < m["last_timestamp"] for m in machines)


def _job_count(cloud: LocalCloud) -> int:
    table = cloud.stack.tables["JobsTable"].name
    return int(cloud.client("dynamodb").scan(TableName=table, Select="COUNT")["Count"])
