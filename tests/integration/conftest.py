"""The integration tier: moto executes the real state machine from template.yaml, Lambda invocations run the
real handlers in worker processes, requests go through the local HTTP API. One cloud at a time per process
(moto's state is process-wide), so each module starts its own and stops it; a module whose tests each need a
cloud as it was just started shares one and empties it between tests (``fresh_state``), which keeps the warm
workers (most of a cloud's start-up) and costs a few requests.

Modules run in random order (pytest-randomly), interleaved with the other tiers, so nothing here may rely on
what ran before: each module loads its own data, and LocalCloud.stop() undoes what start() patched."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import requests

from localcloud.cloud import LocalCloud
from localcloud.demo import data_location
from localcloud.demo_data import generate_machine_telemetry
from modelforge.adapters.telemetry import TelemetryStore
from tests.conftest import TEST_TRAINING_SETTINGS, free_port, one_boto3_session, wait_for_job

pytestmark = pytest.mark.integration

TRAINABLE_MACHINE = "MOTOBOMBA-001"
QUIET_MACHINE = "QUIET-001"  # runs fine for the whole range: no failure event to learn from
DEMO_START = "2025-01-01"
TRAINABLE_DAYS = 30  # 2025-01-01 .. 2025-01-30, six failures: enough for a model that meets the gate's floors

# Each /predict request's capture written at once (the deployed default buffers them in the warm container,
# domain.live.CaptureConfig): the tests read a request's capture object right after it.
TEST_PREDICT_SETTINGS = {"CAPTURE_FLUSH_ROWS": "1"}


def start_cloud(tmp_path: Path, **overrides: Any) -> LocalCloud:
    environment: dict[str, Mapping[str, str]] = dict(overrides.pop("environment_overrides", None) or {})
    environment["TrainingFunction"] = {**TEST_TRAINING_SETTINGS, **environment.get("TrainingFunction", {})}
    environment["PredictFunction"] = {**TEST_PREDICT_SETTINGS, **environment.get("PredictFunction", {})}
    cloud = LocalCloud(aws_port=free_port(), api_port=free_port(), state_dir=tmp_path,
                       environment_overrides=environment, **overrides)
    return cloud.start()


@functools.cache
def _telemetry(machine: str, days: float, seed: int, failures_per_30_days: float) -> pd.DataFrame:
    """Generated once per session (pure, and only ever read): every module writes the same machines."""
    return generate_machine_telemetry(machine, start=DEMO_START, days=days, seed=seed,
                                      failures_per_30_days=failures_per_30_days).telemetry


def load_machines(cloud: LocalCloud) -> None:
    bucket, prefix = data_location(cloud.stack)
    store = TelemetryStore(bucket, prefix)
    with one_boto3_session():
        store.write(TRAINABLE_MACHINE, _telemetry(TRAINABLE_MACHINE, TRAINABLE_DAYS, 7, 6.0))
        store.write(QUIET_MACHINE, _telemetry(QUIET_MACHINE, 20, 3, 0.0))


def train_champion(cloud: LocalCloud, machine: str = TRAINABLE_MACHINE) -> dict[str, Any]:
    """A status model of ``machine`` trained through the API and promoted by the gate (the first model that
    meets the floors): its finished job."""
    answer = requests.post(f"{cloud.api_url}/train", json={"indicator": "status", "machine_name": machine},
                           timeout=30)
    assert answer.status_code == 200, answer.text
    job = wait_for_job(cloud.api_url, answer.json()["process_id"], timeout=300)
    assert job["status"] == "completed" and job["gate_decision"] == "promoted", job
    return job


def fresh_state(cloud: LocalCloud) -> None:
    """Everything the tests write, gone: the cloud as start() and load_machines() left it. Empties every table
    and the models bucket (all object versions); the data bucket keeps the machines. Executions stay in
    moto's history, named by process_ids no table holds any more."""
    dynamodb = cloud.client("dynamodb")
    for table in cloud.stack.tables.values():
        schema = dynamodb.describe_table(TableName=table.name)["Table"]["KeySchema"]
        keys = [k["AttributeName"] for k in schema]
        for page in dynamodb.get_paginator("scan").paginate(TableName=table.name, ConsistentRead=True):
            for item in page["Items"]:
                dynamodb.delete_item(TableName=table.name, Key={k: item[k] for k in keys})
    s3 = cloud.client("s3")
    bucket = cloud.stack.buckets["ModelsBucket"]
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for entry in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
            s3.delete_object(Bucket=bucket, Key=entry["Key"], VersionId=entry["VersionId"])


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    local = start_cloud(tmp_path_factory.mktemp("cloud"))
    try:
        load_machines(local)
        yield local
    finally:
        local.stop()
