"""compute "batch" end to end on the local cloud: the real API and state machine (ChooseCompute ->
TrainOnBatch -> ReadBatchOutcome), the job run by localcloud/batch.py as a local process with the template's
job definition, and its failures (a crash, out of memory, past its attempt duration, stuck RUNNABLE) each
reaching ``failed`` with a reason a user can read in GET /status; a job above the Fargate job's memory routed
to the large EC2 class (TrainOnBatchLarge) and run with that definition's limits."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import requests

from localcloud.cloud import LocalCloud
from tests.conftest import free_port, wait_for_job
from tests.integration.conftest import TEST_TRAINING_SETTINGS, TRAINABLE_MACHINE, fresh_state, load_machines

BATCH_PARAMETERS = {"BatchEnabled": "true", "BatchImageUri": "local", "BatchSubnetIds": "subnet-0123456789abcdef0",
                    "BatchSecurityGroupIds": "sg-0123456789abcdef0"}
DEFINITION = "BatchCpuJobDefinition"
LARGE = "BatchLargeJobDefinition"  # the EC2 size class, above the Fargate job's memory


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    local = LocalCloud(aws_port=free_port(), api_port=free_port(), state_dir=tmp_path_factory.mktemp("batch"),
                       parameter_overrides=BATCH_PARAMETERS,
                       environment_overrides={"TrainingFunction": TEST_TRAINING_SETTINGS})
    for name in (DEFINITION, LARGE):
        spec = local.stack.batch_job_definitions[name]
        local.stack.batch_job_definitions[name] = replace(
            spec, environment={**spec.environment, **TEST_TRAINING_SETTINGS})
    local.start()
    try:
        load_machines(local)
        yield local
    finally:
        local.stop()


@pytest.fixture
def definition(cloud: LocalCloud) -> Iterator[Any]:
    """The CPU job definition, restored after a test changes it."""
    assert cloud.batch is not None
    name = cloud.stack.batch_job_definitions[DEFINITION].name
    original = cloud.batch.definition(name)
    yield original
    cloud.batch.replace_definition(original)
    fresh_state(cloud)


def _train(cloud: LocalCloud, compute: str) -> dict[str, Any]:
    response = requests.post(f"{cloud.api_url}/train", timeout=30, json={
        "indicator": "status", "machine_name": TRAINABLE_MACHINE, "compute": compute})
    assert response.status_code == 200, response.text
    return wait_for_job(cloud.api_url, response.json()["process_id"], timeout=600)


def _states(cloud: LocalCloud, arn: str) -> list[str]:
    events = cloud.client("stepfunctions").get_execution_history(executionArn=arn, maxResults=1000)["events"]
    return [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]


def _batch_jobs(cloud: LocalCloud, queue_id: str = "BatchCpuJobQueue") -> list[dict[str, Any]]:
    batch = cloud.client("batch")
    queue = cloud.stack.batch_queues[queue_id].name
    ids = [j["jobId"] for status in ("SUCCEEDED", "FAILED")
           for j in batch.list_jobs(jobQueue=queue, jobStatus=status)["jobSummaryList"]]
    return batch.describe_jobs(jobs=ids)["jobs"] if ids else []


def _run_as(cloud: LocalCloud, definition: Any, **changes: Any) -> None:
    assert cloud.batch is not None
    cloud.batch.replace_definition(replace(definition, **changes))


def test_batch_and_lambda_train_the_same_model(cloud: LocalCloud, definition: Any) -> None:
    on_lambda = _train(cloud, "lambda")
    on_batch = _train(cloud, "batch")
    assert on_lambda["status"] == on_batch["status"] == "completed", (on_lambda, on_batch)
    assert (on_lambda["compute"], on_batch["compute"]) == ("lambda", "batch")
    assert on_batch["compute_reason"] == "requested 'batch'" and on_batch["compute_estimate"]["cells"] > 0
    assert _states(cloud, on_batch["execution_arn"])[:4] == [
        "MarkJobRunning", "ChooseCompute", "TrainOnBatch", "ReadBatchOutcome"]
    assert "TrainModel" not in _states(cloud, on_batch["execution_arn"])
    # The same data, features and seed on both hosts: metrics within noise (threads may reorder float sums).
    for metric, value in on_lambda["metrics"].items():
        assert on_batch["metrics"][metric] == pytest.approx(value, abs=0.05), metric
    (job,) = [j for j in _batch_jobs(cloud) if j["jobName"] == on_batch["process_id"]]
    assert job["status"] == "SUCCEEDED" and job["parameters"]["process_id"] == on_batch["process_id"]
    assert on_batch["bucket_address"].startswith(f"s3://{cloud.stack.buckets['ModelsBucket']}/model/"
                                                 f"{on_batch['process_id']}/")


CRASH = (sys.executable, "-c", "import sys; print('starting'); print('ValueError: boom', file=sys.stderr); "
         "sys.exit(3)")
HOG = (sys.executable, "-c", "import time; blob = bytearray(400 * 2**20); time.sleep(30)")
SLEEPER = (sys.executable, "-c", "import time; time.sleep(60)")


@pytest.mark.parametrize(("changes", "expected"), [
    ({"command": CRASH}, ["ValueError: boom", "exit code 3", "Essential container in task exited"]),
    ({"command": HOG, "memory_mib": 200}, ["exit code 137", "OutOfMemoryError"]),
    ({"command": SLEEPER, "attempt_duration_s": 2}, ["exit code 137", "Job attempt duration exceeded timeout"]),
], ids=["crash", "out-of-memory", "attempt-duration"])
def test_a_failing_batch_job_fails_the_job_with_its_reason(cloud: LocalCloud, definition: Any,
                                                           changes: dict[str, Any], expected: list[str]) -> None:
    _run_as(cloud, definition, **changes)
    job = _train(cloud, "batch")
    assert job["status"] == "failed"
    for part in expected:
        assert part in job["error_message"], job["error_message"]
    assert job["bucket_address"] is None and job["model_id"] is None


def test_a_job_stuck_runnable_is_cancelled_with_the_queues_reason(cloud: LocalCloud, definition: Any,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    assert cloud.batch is not None
    queue_name = cloud.stack.batch_queues["BatchCpuJobQueue"].name
    queue = cloud.batch._queues[queue_name]
    monkeypatch.setitem(cloud.batch._queues, queue_name, replace(queue, runnable_timeout_s=1))
    _run_as(cloud, definition, vcpus=4096)  # no environment here can place it
    job = _train(cloud, "batch")
    assert job["status"] == "failed"
    assert "without running" in job["error_message"] and "RUNNABLE" in job["error_message"], job["error_message"]


def test_describe_jobs_shows_the_jobs_as_batch_would(cloud: LocalCloud, definition: Any) -> None:
    # A job of its own (one that fails fast): pytest-randomly may run this test before any other here.
    _run_as(cloud, definition, command=CRASH)
    ran = _train(cloud, "batch")
    jobs = _batch_jobs(cloud)
    assert ran["process_id"] in {j["jobName"] for j in jobs}
    assert {j["status"] for j in jobs} <= {"SUCCEEDED", "FAILED"}
    logs = cloud.client("logs")
    for job in jobs:
        if "logStreamName" in job.get("container", {}):
            logs.get_log_events(logGroupName="/aws/batch/job", logStreamName=job["container"]["logStreamName"])




def test_stopping_the_execution_terminates_its_batch_job(cloud: LocalCloud, definition: Any) -> None:
    _run_as(cloud, definition, command=SLEEPER)
    response = requests.post(f"{cloud.api_url}/train", timeout=30, json={
        "indicator": "status", "machine_name": TRAINABLE_MACHINE, "compute": "batch"})
    process_id = response.json()["process_id"]
    batch = cloud.client("batch")
    queue = cloud.stack.batch_queues["BatchCpuJobQueue"].name
    deadline = time.monotonic() + 60
    while not batch.list_jobs(jobQueue=queue, jobStatus="RUNNING")["jobSummaryList"]:
        assert time.monotonic() < deadline, "the job never ran"
        time.sleep(0.2)
    arn = requests.get(f"{cloud.api_url}/status/{process_id}", timeout=30).json()["execution_arn"]
    cloud.client("stepfunctions").stop_execution(executionArn=arn)
    (job,) = [j for j in _batch_jobs_waiting(cloud, process_id)]
    assert job["status"] == "FAILED" and "stopped" in job["statusReason"]


def _batch_jobs_waiting(cloud: LocalCloud, process_id: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        jobs = [j for j in _batch_jobs(cloud) if j["jobName"] == process_id]
        if jobs:
            return jobs
        time.sleep(0.2)
    return []


# It restarts the API worker twice (its settings changed, then restored: later tests see the template's).
# The command says where it ran and fails fast: the large class's routing and limits without a second training
# here (the real command is the Fargate one's, which test_batch_and_lambda_train_the_same_model runs; the
# template tests check both run the same image and command).
WHERE = (sys.executable, "-c", "import os, sys; print('ValueError: ran on', os.environ['AWS_BATCH_JQ_NAME'], "
         "file=sys.stderr); sys.exit(3)")


def test_a_job_above_the_fargate_memory_runs_on_the_large_ec2_class(cloud: LocalCloud, definition: Any) -> None:
    assert cloud.batch is not None and cloud.runtime is not None
    large = cloud.batch.definition(cloud.stack.batch_job_definitions[LARGE].name)
    parameters = cloud.stack.parameters
    # The template's limits are what the job runs under here.
    assert (large.vcpus, large.memory_mib) == (float(parameters["BatchLargeVcpus"]),
                                               int(parameters["BatchLargeMemoryMiB"]))
    # Fargate's memory as small as no job fits, for this job only: the API's settings, as the template wires them.
    api = cloud.stack.functions["ApiFunction"]
    saved = cloud.runtime.set_environment("ApiFunction", {**api.environment, "BATCH_CPU_MEMORY_MIB": "1"})
    cloud.batch.replace_definition(replace(large, command=WHERE))
    try:
        job = _train(cloud, "batch")
    finally:
        cloud.runtime.set_environment("ApiFunction", saved)
        cloud.batch.replace_definition(large)
    assert (job["compute"], job["compute_reason"], job["compute_class"]) == ("batch", "requested 'batch'", "large")
    assert "exceed the Fargate job's 0 MB and fit the large EC2 job's" in job["compute_class_reason"]
    states = _states(cloud, job["execution_arn"])
    assert states[:3] == ["MarkJobRunning", "ChooseCompute", "TrainOnBatchLarge"] and "TrainOnBatch" not in states
    large_queue = cloud.stack.batch_queues["BatchLargeJobQueue"].name
    assert job["status"] == "failed" and f"ran on {large_queue}" in job["error_message"], job["error_message"]
    (ran,) = [j for j in _batch_jobs(cloud, "BatchLargeJobQueue") if j["jobName"] == job["process_id"]]
    assert ran["jobDefinition"].split("/")[-1].split(":")[0] == large.name
