"""Reconciliation: an execution that ends outside the state machine's catch paths still fails its job."""

from __future__ import annotations

import time
from pathlib import Path

import requests

from tests.conftest import wait_for_job
from tests.integration.conftest import TRAINABLE_MACHINE, load_machines, start_cloud

BODY = {"indicator": "status", "machine_name": TRAINABLE_MACHINE}


def test_execution_stopped_mid_training_fails_its_job(tmp_path: Path) -> None:
    # The stop cuts the execution off before its catch path can record anything: only the EventBridge
    # rule's reconciler can move the job out of `running`. (moto honours the stop when the task returns.)
    cloud = start_cloud(tmp_path, handler_overrides={"TrainingFunction": "tests.integration.faulty_handlers.slow"})
    try:
        load_machines(cloud)
        process_id = requests.post(f"{cloud.api_url}/train", json=BODY, timeout=60).json()["process_id"]
        deadline = time.monotonic() + 60
        while (job := requests.get(f"{cloud.api_url}/status/{process_id}", timeout=30).json())["status"] != "running":
            assert time.monotonic() < deadline, "the job never started running"
            time.sleep(0.1)
        cloud.client("stepfunctions").stop_execution(executionArn=job["execution_arn"], error="OperatorStopped",
                                                     cause="stopped by an operator")
        final = wait_for_job(cloud.api_url, process_id, timeout=60)
        assert final["status"] == "failed"
        # The reconciler's wording, not the catch path's ("RuntimeError: ...").
        assert final["error_message"].startswith("execution "), final["error_message"]
        assert final["finished_at"] is not None
    finally:
        cloud.stop()
