"""Issue 4 on the local cloud: two trainings, the gate's decision, predictions from the champion, a manual
rollback picked up without a restart, and a tampered artifact refused while the old model keeps serving (an
overwritten key is never what is served: the registry names the object version it hashed).

The tests run in any order: each starts with the gate's champion serving and the registered artifacts intact
(``as_the_gate_left_it``), whatever the one before it promoted or tampered with."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from localcloud.cloud import LocalCloud
from localcloud.demo_data import generate_machine_telemetry
from tests.conftest import wait_for_job
from tests.integration.conftest import TRAINABLE_MACHINE, load_machines, start_cloud

REFRESH_SECONDS = 1
MODELS_ROUTE = f"/models/{TRAINABLE_MACHINE}/status"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    local = start_cloud(tmp_path_factory.mktemp("registry"), environment_overrides={
        "PredictFunction": {"CHAMPION_REFRESH_SECONDS": str(REFRESH_SECONDS)}})
    try:
        load_machines(local)
        yield local
    finally:
        local.stop()


@pytest.fixture(scope="module")
def two_jobs(cloud: LocalCloud) -> list[dict[str, Any]]:
    jobs = []
    # The first model sees the data up to 2025-01-26 (of 2025-01-30), the second all of it.
    for body in ({"indicator": "status", "machine_name": TRAINABLE_MACHINE, "end_date": "2025-01-26"},
                 {"indicator": "status", "machine_name": TRAINABLE_MACHINE}):
        process_id = requests.post(f"{cloud.api_url}/train", json=body, timeout=30).json()["process_id"]
        jobs.append(wait_for_job(cloud.api_url, process_id))
    return jobs


def _gate_champion(two_jobs: list[dict[str, Any]]) -> str:
    first, second = two_jobs
    return str((second if second["gate_decision"] == "promoted" else first)["model_id"])


@pytest.fixture(scope="module")
def artifacts(cloud: LocalCloud, two_jobs: list[dict[str, Any]]) -> dict[str, bytes]:
    """Each job's model file as the training stored it (by bucket address)."""
    s3 = cloud.client("s3")
    stored = {}
    for job in two_jobs:
        bucket, key = job["bucket_address"].removeprefix("s3://").split("/", 1)
        stored[job["bucket_address"]] = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return stored


@pytest.fixture(autouse=True)
def as_the_gate_left_it(cloud: LocalCloud, two_jobs: list[dict[str, Any]], artifacts: dict[str, bytes]) -> None:
    """Before each test: the registered artifacts as trained, and the gate's champion in the registry and in
    what /predict serves (a test before may have rolled back, or tampered with a file)."""
    s3 = cloud.client("s3")
    for address, body in artifacts.items():
        bucket, key = address.removeprefix("s3://").split("/", 1)
        if s3.get_object(Bucket=bucket, Key=key)["Body"].read() != body:
            s3.put_object(Bucket=bucket, Key=key, Body=body)
    champion = _gate_champion(two_jobs)
    current = requests.get(f"{cloud.api_url}{MODELS_ROUTE}", timeout=30).json()["champion"]["version"]
    if current != champion:
        restored = requests.post(f"{cloud.api_url}{MODELS_ROUTE}/promote", timeout=30,
                                 json={"version": champion, "reason": "test set-up: the gate's champion"})
        assert restored.status_code == 200, restored.text
    _wait_until_served(cloud, champion)


def _wait_until_served(cloud: LocalCloud, version: str, timeout: float = 10 * REFRESH_SECONDS + 20) -> None:
    """Polls /predict until it names ``version`` (it re-reads the champion every REFRESH_SECONDS)."""
    deadline = time.monotonic() + timeout
    while (served := _predict(cloud).json().get("model_version")) != version:
        assert time.monotonic() < deadline, f"/predict still serves {served}, not {version}, after {timeout} s"
        time.sleep(0.2)


def _records(rows: int = 30) -> list[dict[str, Any]]:
    frame = generate_machine_telemetry(TRAINABLE_MACHINE, days=1, seed=11).telemetry.head(rows)
    frame = frame.assign(timestamp=frame["timestamp"].astype(str))
    return [{k: (None if v != v else v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


def _predict(cloud: LocalCloud) -> requests.Response:
    return requests.post(f"{cloud.api_url}/predict", timeout=60, json={
        "machine_name": TRAINABLE_MACHINE, "indicator": "status", "records": _records()})


def test_first_model_becomes_champion_and_second_is_decided_with_a_reason(
        cloud: LocalCloud, two_jobs: list[dict[str, Any]]) -> None:
    first, second = two_jobs
    assert first["status"] == "completed", first["error_message"]
    assert first["gate_decision"] == "promoted"
    assert "first model" in first["gate_reason"]
    assert second["status"] == "completed", second["error_message"]
    assert second["gate_decision"] in ("promoted", "rejected")
    assert second["gate_reason"]
    champion = requests.get(f"{cloud.api_url}{MODELS_ROUTE}", timeout=30).json()
    expected = second if second["gate_decision"] == "promoted" else first
    assert champion["champion"]["version"] == expected["model_id"] == _gate_champion(two_jobs)
    versions = requests.get(f"{cloud.api_url}/models", params={"machine_name": TRAINABLE_MACHINE}, timeout=30)
    statuses = {v["version"]: v["status"] for v in versions.json()["versions"]}
    assert list(statuses.values()).count("champion") == 1


def test_predictions_name_the_champion(cloud: LocalCloud, two_jobs: list[dict[str, Any]]) -> None:
    champion = requests.get(f"{cloud.api_url}{MODELS_ROUTE}", timeout=30).json()["champion"]
    answer = _predict(cloud)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model_version"] == champion["version"]
    assert len(body["predictions"]) == len(_records())
    assert all(p["prediction"] in (0.0, 1.0) and 0 <= p["probability"] <= 1 for p in body["predictions"])


def test_a_rejected_version_needs_an_override(cloud: LocalCloud, two_jobs: list[dict[str, Any]]) -> None:
    rejected = [j["model_id"] for j in two_jobs if j["gate_decision"] == "rejected"]
    if not rejected:
        pytest.skip("the gate promoted both versions: none is rejected")
    refused = requests.post(f"{cloud.api_url}{MODELS_ROUTE}/promote", timeout=30,
                            json={"version": rejected[0], "reason": "bring it back"})
    assert refused.status_code == 409, refused.text
    assert "rejected" in refused.json()["detail"] and '"override": true' in refused.json()["detail"]


def test_manual_rollback_reaches_predict_without_a_restart(cloud: LocalCloud,
                                                           two_jobs: list[dict[str, Any]]) -> None:
    current = requests.get(f"{cloud.api_url}{MODELS_ROUTE}", timeout=30).json()["champion"]["version"]
    other = next(j["model_id"] for j in two_jobs if j["model_id"] != current)
    assert _predict(cloud).json()["model_version"] == current
    pids_before = _predict_worker_pids(cloud)
    promoted = requests.post(f"{cloud.api_url}{MODELS_ROUTE}/promote", timeout=30, json={
        "version": other, "reason": "rollback: too many false alarms", **_override_if_needed(cloud, other)})
    assert promoted.status_code == 200, promoted.text
    _wait_until_served(cloud, other)  # within a refresh period or so: polled, not slept
    assert _predict(cloud).json()["model_version"] == other
    assert _predict_worker_pids(cloud) == pids_before  # the same warm process: nothing restarted
    history = requests.get(f"{cloud.api_url}{MODELS_ROUTE}", timeout=30).json()["history"]
    assert history[0]["reason"] == "rollback: too many false alarms"


def test_tampered_artifact_is_refused_and_the_old_model_keeps_serving(
        cloud: LocalCloud, two_jobs: list[dict[str, Any]]) -> None:
    serving = _predict(cloud).json()["model_version"]
    target = next(j for j in two_jobs if j["model_id"] != serving)
    bucket, key = target["bucket_address"].removeprefix("s3://").split("/", 1)
    s3, dynamodb = cloud.client("s3"), cloud.client("dynamodb")
    # A write behind the registry's back is a new version of the key; the registry names the one it hashed.
    planted = s3.put_object(Bucket=bucket, Key=key, Body=b"not the model that was registered")["VersionId"]
    item_key = {"model_name": {"S": f"{TRAINABLE_MACHINE}#status"}, "version": {"S": target["model_id"]}}
    table = cloud.stack.tables["ModelsTable"].name
    recorded = dynamodb.get_item(TableName=table, Key=item_key)["Item"]["artifact_version_id"]["S"]
    assert planted != recorded

    # Serving the planted bytes takes pointing the record at them too: then the sha256 refuses them.
    _set_artifact_version(dynamodb, table, item_key, planted)
    refused = requests.post(f"{cloud.api_url}{MODELS_ROUTE}/promote", timeout=30,
                            json={"version": target["model_id"], "reason": "try the tampered one, it should be refused",
                                  **_override_if_needed(cloud, target["model_id"])})
    assert refused.status_code == 409
    assert "sha256" in refused.json()["detail"]
    # For longer than a refresh period (so /predict has re-read the champion at least once), every
    # prediction still comes from the model that was serving.
    watch_until = time.monotonic() + REFRESH_SECONDS + 0.5
    while True:
        answer = _predict(cloud)
        assert answer.status_code == 200
        assert answer.json()["model_version"] == serving
        if time.monotonic() > watch_until:
            break
        time.sleep(0.1)

    # The overwrite alone changes nothing: the recorded version is still the one promoted and served.
    _set_artifact_version(dynamodb, table, item_key, recorded)
    promoted = requests.post(f"{cloud.api_url}{MODELS_ROUTE}/promote", timeout=30,
                             json={"version": target["model_id"], "reason": "the key was overwritten, not the model",
                                   **_override_if_needed(cloud, target["model_id"])})
    assert promoted.status_code == 200, promoted.text
    time.sleep(REFRESH_SECONDS + 0.5)
    answer = _predict(cloud)
    assert answer.status_code == 200, answer.text
    assert answer.json()["model_version"] == target["model_id"]
    requests.post(f"{cloud.api_url}{MODELS_ROUTE}/promote", timeout=30,
                  json={"version": serving, "reason": "back to the champion the other tests expect",
                        **_override_if_needed(cloud, serving)})


def _set_artifact_version(dynamodb: Any, table: str, key: dict[str, Any], version_id: str) -> None:
    dynamodb.update_item(TableName=table, Key=key, UpdateExpression="SET artifact_version_id = :v",
                         ExpressionAttributeValues={":v": {"S": version_id}})


def _override_if_needed(cloud: LocalCloud, version: str) -> dict[str, Any]:
    """A version the gate rejected comes back only with an override (a former champion needs none)."""
    versions = requests.get(f"{cloud.api_url}/models", params={"machine_name": TRAINABLE_MACHINE}, timeout=30)
    status = next(v["status"] for v in versions.json()["versions"] if v["version"] == version)
    return {"override": True} if status in ("rejected", "candidate") else {}


def _predict_worker_pids(cloud: LocalCloud) -> set[int]:
    assert cloud.runtime is not None
    pool = cloud.runtime.pool(cloud.stack.functions["PredictFunction"].name)
    return {worker.process.pid for worker in pool.idle}


def test_predictions_are_captured_in_the_data_bucket_and_a_check_scores_them_against_later_failures(
        cloud: LocalCloud, two_jobs: list[dict[str, Any]]) -> None:
    """Issue 12, concept drift on the local cloud: /predict writes one capture object per request to moto's S3
    (the template's data bucket, capture/ prefix); failure events recorded later make the drift check report the
    champion's live recall, and GET /models shows it beside the test-time recall."""
    import json

    import pandas as pd

    from modelforge.adapters.failure_events import FailureEventStore

    # The champion now: the gate's, or the version test_manual_rollback promoted if random order ran it first.
    champion = requests.get(f"{cloud.api_url}{MODELS_ROUTE}", timeout=30).json()["champion"]["version"]
    assert champion in {job["model_id"] for job in two_jobs}
    _wait_until_served(cloud, champion)
    answer = _predict(cloud)
    assert answer.status_code == 200, answer.text
    alarms = [p["prediction"] == 1.0 for p in answer.json()["predictions"]]
    bucket, s3 = cloud.stack.buckets["DataBucket"], cloud.client("s3")
    prefix = f"capture/{TRAINABLE_MACHINE}#status/"
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for o in page.get("Contents", [])]
    assert keys and all(k.endswith(".jsonl") for k in keys)
    newest = max(keys, key=lambda k: s3.head_object(Bucket=bucket, Key=k)["LastModified"])
    lines = [json.loads(line) for line in s3.get_object(Bucket=bucket, Key=newest)["Body"].read().splitlines()]
    assert len(lines) == len(_records()) and {line["model_version"] for line in lines} == {champion}
    # Two failures inside the captured half hour: each caught only if one of the 30 minutes before it alarmed.
    records = _records()
    onsets = [pd.Timestamp(records[i]["timestamp"]) + pd.Timedelta(seconds=30) for i in (14, 29)]
    caught = [any(a for a, r in zip(alarms, records, strict=True) if onset - pd.Timedelta(minutes=30)
                  <= pd.Timestamp(r["timestamp"]) < onset) for onset in onsets]
    FailureEventStore(bucket).write(TRAINABLE_MACHINE, pd.DataFrame({
        "machine_name": TRAINABLE_MACHINE, "timestamp": onsets, "component": None, "failure_type": None}))
    try:
        invoked = cloud.client("lambda").invoke(
            FunctionName=cloud.stack.functions["DriftFunction"].name,
            Payload=json.dumps({"machine_name": TRAINABLE_MACHINE, "indicator": "status"}).encode())
        result = json.loads(invoked["Payload"].read())  # one model's check, by hand
    finally:
        FailureEventStore(bucket).write(TRAINABLE_MACHINE, pd.DataFrame(
            columns=["machine_name", "timestamp", "component", "failure_type"]))
    assert result["live_failures"] == 2 and result["live_recall"] == sum(caught) / 2
    assert result["concept_drift"] is (sum(caught) / 2 < 0.5)
    shown = requests.get(f"{cloud.api_url}{MODELS_ROUTE}", timeout=30).json()["live_performance"]
    assert shown["live_recall"] == result["live_recall"] and shown["live_failures"] == 2
    assert "test_recall" in shown and shown["concept_drift"] is result["concept_drift"]
