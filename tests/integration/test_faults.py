"""Failures outside the handler's control end the job `failed` with a readable reason, never stuck."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from localcloud.cloud import LocalCloud
from tests.conftest import wait_for_job
from tests.integration.conftest import TRAINABLE_MACHINE, load_machines, start_cloud

FAULTY_TRAINING = "tests.integration.faulty_handlers.chosen"  # fails as FAULT_FILE says, per invocation
TRAINING_MEMORY_MB = 512  # what exhaust_memory runs past
# What hang runs past. Not 2 s: exhaust_memory must reach the memory size first, and in a full run on a busy
# machine the runtime's watch loop was once starved past 2 s and reported its timeout instead.
TRAINING_TIMEOUT_S = 6


@pytest.fixture(scope="module")
def faulty_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalCloud, Path]]:
    """One cloud for every training-process fault: its training function fails as a file says, and has the
    memory size and timeout the faults exceed. Nothing here ever trains a model."""
    state = tmp_path_factory.mktemp("faults")
    fault_file = state / "fault"
    cloud = start_cloud(state, handler_overrides={"TrainingFunction": FAULTY_TRAINING},
                        environment_overrides={"TrainingFunction": {"FAULT_FILE": str(fault_file)}},
                        parameter_overrides={"TrainingMemorySize": TRAINING_MEMORY_MB,
                                             "TrainingTimeout": TRAINING_TIMEOUT_S})
    try:
        load_machines(cloud)
        yield cloud, fault_file
    finally:
        cloud.stop()


@pytest.mark.parametrize(
    ("fault", "error_type"),
    [("crash", "Runtime.ExitError"), ("exhaust_memory", "Runtime.OutOfMemory"), ("hang", "Sandbox.Timedout")],
    ids=["crash", "out-of-memory", "timeout"],
)
def test_training_process_failure_fails_the_job(faulty_cloud: tuple[LocalCloud, Path], fault: str,
                                                error_type: str) -> None:
    cloud, fault_file = faulty_cloud
    fault_file.write_text(fault)
    response = requests.post(f"{cloud.api_url}/train", timeout=30,
                             json={"indicator": "status", "machine_name": TRAINABLE_MACHINE})
    job = wait_for_job(cloud.api_url, response.json()["process_id"], timeout=120)
    assert job["status"] == "failed"
    assert job["error_message"].startswith(f"{error_type}: "), job["error_message"]
    # The local cloud keeps serving after the training process died.
    assert requests.get(f"{cloud.api_url}/health", timeout=30).status_code == 200
    models = cloud.client("s3").list_objects_v2(Bucket=cloud.stack.buckets["ModelsBucket"])
    assert models.get("KeyCount", 0) == 0  # no artifact left behind
