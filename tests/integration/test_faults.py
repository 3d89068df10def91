"""Failures outside the handler's control end the job `failed` with a readable reason, never stuck."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from tests.conftest import wait_for_job
from tests.integration.conftest import TRAINABLE_MACHINE, load_machines, start_cloud


@pytest.mark.parametrize(
    ("overrides", "error_type"),
    [
        ({"handler_overrides": {"TrainingFunction": "tests.integration.faulty_handlers.crash"}},
         "Runtime.ExitError"),
        ({"handler_overrides": {"TrainingFunction": "tests.integration.faulty_handlers.exhaust_memory"},
          "parameter_overrides": {"TrainingMemorySize": 512}}, "Runtime.OutOfMemory"),
        ({"handler_overrides": {"TrainingFunction": "tests.integration.faulty_handlers.hang"},
          "parameter_overrides": {"TrainingTimeout": 2}}, "Sandbox.Timedout"),
    ],
    ids=["crash", "out-of-memory", "timeout"],
)
def test_training_process_failure_fails_the_job(tmp_path: Path, overrides: dict[str, object],
                                                error_type: str) -> None:
    cloud = start_cloud(tmp_path, **overrides)
    try:
        load_machines(cloud)
        response = requests.post(f"{cloud.api_url}/train", timeout=30,
                                 json={"indicator": "status", "machine_name": TRAINABLE_MACHINE})
        job = wait_for_job(cloud.api_url, response.json()["process_id"], timeout=120)
        assert job["status"] == "failed"
        assert job["error_message"].startswith(f"{error_type}: "), job["error_message"]
        # The local cloud keeps serving after the training process died.
        assert requests.get(f"{cloud.api_url}/health", timeout=30).status_code == 200
        models = cloud.client("s3").list_objects_v2(Bucket=cloud.stack.buckets["ModelsBucket"])
        assert models.get("KeyCount", 0) == 0  # no artifact left behind
    finally:
        cloud.stop()


def test_failed_start_execution_fails_the_job(tmp_path: Path) -> None:  # StartExecution fails after the job is written
    missing_machine = "arn:aws:states:us-east-1:123456789012:stateMachine:does-not-exist"
    cloud = start_cloud(tmp_path, environment_overrides={"ApiFunction": {"STATE_MACHINE_ARN": missing_machine}})
    try:
        load_machines(cloud)
        response = requests.post(f"{cloud.api_url}/train", timeout=30,
                                 json={"indicator": "status", "machine_name": TRAINABLE_MACHINE})
        assert response.status_code == 503
        jobs = requests.get(f"{cloud.api_url}/jobs", timeout=30).json()["jobs"]
        assert len(jobs) == 1
        assert jobs[0]["status"] == "failed"  # never left pending
        assert "could not start the training execution" in jobs[0]["error_message"]
        assert jobs[0]["process_id"] in response.json()["detail"]
    finally:
        cloud.stop()
