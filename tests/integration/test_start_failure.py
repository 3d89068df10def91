"""A job whose execution cannot be started ends `failed` with a readable reason, never stuck pending.

Its own module (so its own cloud): the API function here is deployed with a state machine that does not exist,
and moto holds one cloud per process, so it cannot share test_faults.py's."""

from __future__ import annotations

from pathlib import Path

import requests

from tests.integration.conftest import TRAINABLE_MACHINE, load_machines, start_cloud


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
