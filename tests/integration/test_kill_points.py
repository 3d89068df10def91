"""Kill points (issue 16, finding 6): the real training handler is killed with SIGKILL after each of its writes
(the 1st, 2nd, 3rd and 4th artifact put, then the registry item), so no in-process cleanup runs. Afterwards
the models bucket holds no object version and no delete marker that a registry item does not name: the
reconciler, run on the execution's FAILED status change, swept the job's folder.

The killing wrapper is tests/integration/kill_points.py; the state machine, the catch path, the EventBridge
delivery and the reconciler are the real ones."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from boto3.dynamodb.types import TypeDeserializer

from localcloud.cloud import LocalCloud
from localcloud.demo import data_location
from localcloud.demo_data import generate_machine_telemetry
from modelforge.adapters.dynamo import from_dynamo
from modelforge.adapters.telemetry import TelemetryStore
from modelforge.registry import ModelVersion
from tests.conftest import wait_for_job
from tests.integration.conftest import TRAINABLE_MACHINE, fresh_state, start_cloud
from tests.integration.kill_points import KILL_AFTER

KILLING_HANDLER = "tests.integration.kill_points.lambda_handler"
ARTIFACT_PUTS = 5  # model, report, profile, holdout, feature recipe
REGISTRY_WRITE = ARTIFACT_PUTS + 1
# A quick model is enough: what matters is where the process dies, not what it learnt.
QUICK_TRAINING = {"SEARCH_BUDGET": "1", "MAX_BOOST_ROUNDS": "10"}


@pytest.fixture(scope="module")
def killing_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    """One cloud for every kill point (a cloud's start is most of a kill point's cost): the killed worker is
    gone after each job anyway, and fresh_state empties the tables and the models bucket between them."""
    state = tmp_path_factory.mktemp("kill-points")
    kill_after = state / "kill-after-writes"
    kill_after.write_text("0")
    cloud = start_cloud(state, handler_overrides={"TrainingFunction": KILLING_HANDLER},
                        environment_overrides={"TrainingFunction": {KILL_AFTER: str(kill_after), **QUICK_TRAINING}})
    try:
        bucket, prefix = data_location(cloud.stack)
        TelemetryStore(bucket, prefix).write(
            TRAINABLE_MACHINE, generate_machine_telemetry(TRAINABLE_MACHINE, days=30, seed=7).telemetry)
        yield cloud
    finally:
        cloud.stop()


@pytest.fixture(params=range(1, REGISTRY_WRITE + 1), ids=["after-model", "after-report", "after-profile",
                                                            "after-holdout", "after-recipe", "after-registry-item"])
def killed_after(request: pytest.FixtureRequest, killing_cloud: LocalCloud) -> tuple[LocalCloud, int]:
    writes = int(request.param)
    fresh_state(killing_cloud)
    assert _object_versions(killing_cloud) == ([], []) and _registry_items(killing_cloud) == []
    (killing_cloud.state_dir / "kill-after-writes").write_text(str(writes))
    return killing_cloud, writes


def test_a_training_killed_at_any_write_leaves_nothing_unregistered(killed_after: tuple[LocalCloud, int]) -> None:
    cloud, writes = killed_after
    response = requests.post(f"{cloud.api_url}/train", timeout=30,
                             json={"indicator": "status", "machine_name": TRAINABLE_MACHINE})
    process_id = response.json()["process_id"]
    job = wait_for_job(cloud.api_url, process_id, timeout=240)
    assert job["status"] == "failed"
    assert job["error_message"].startswith("Runtime.ExitError: "), job["error_message"]  # killed, not raised
    swept = _sweep_of(cloud, process_id)

    versions, markers = _object_versions(cloud)
    items = _registry_items(cloud)
    named = {(ref.uri, ref.version_id) for item in items for ref in item.stored_artifacts()}
    assert markers == []  # none hides bytes: a delete marker is no deletion in a versioned bucket
    assert set(versions) <= named, f"left without a registry item: {sorted(set(versions) - named)}"
    assert swept is not None, f"the reconciler never swept {process_id}"
    if writes < REGISTRY_WRITE:
        assert versions == [] and items == []
        assert swept["removed"] == writes  # the sweep, not an in-process cleanup, removed them
    else:
        (item,) = items  # registered before the kill: a whole candidate, never judged by the gate
        assert item.process_id == process_id and item.status == "candidate"
        assert set(versions) == named and len(named) == ARTIFACT_PUTS
        assert swept["removed"] == 0


def _sweep_of(cloud: LocalCloud, process_id: str, timeout: float = 60) -> dict[str, Any] | None:
    """The reconciler's log line for this job's sweep (the sweep is over once it is written); None if none came
    within ``timeout``, so that the bucket's state, not a missing line, is what a failure shows first."""
    log = cloud.state_dir / "logs" / "ReconcileFunction.log"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in log.read_text().splitlines() if log.exists() else []:
            if line.startswith("{"):
                record = json.loads(line)
                if record.get("message") == "leftover artifacts swept" and record.get("process_id") == process_id:
                    return dict(record)
        time.sleep(0.2)
    return None


def _object_versions(cloud: LocalCloud) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    bucket = cloud.stack.buckets["ModelsBucket"]
    listing = cloud.client("s3").list_object_versions(Bucket=bucket)
    return ([(f"s3://{bucket}/{v['Key']}", v["VersionId"]) for v in listing.get("Versions", [])],
            [(m["Key"], m["VersionId"]) for m in listing.get("DeleteMarkers", [])])


def _registry_items(cloud: LocalCloud) -> list[ModelVersion]:
    scan = cloud.client("dynamodb").scan(TableName=cloud.stack.tables["ModelsTable"].name)
    plain = [{k: TypeDeserializer().deserialize(v) for k, v in item.items()} for item in scan["Items"]]
    return [ModelVersion.model_validate(from_dynamo(item)) for item in plain]
