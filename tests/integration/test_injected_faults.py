"""Faults injected inside the AWS services themselves (moto's backends, which the in-process local cloud
serves): throttled DynamoDB writes, an S3 write failing once, a registry write failing after the model
was stored. Each time the job ends in the right state, retries happen where they should, and nothing is
left half-written."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from moto.dynamodb.exceptions import DynamodbException
from moto.dynamodb.models import DynamoDBBackend
from moto.s3.models import S3Backend

from localcloud.cloud import LocalCloud
from tests.conftest import wait_for_job
from tests.integration.conftest import TRAINABLE_MACHINE, fresh_state, load_machines, start_cloud

BODY = {"indicator": "status", "machine_name": TRAINABLE_MACHINE}


class Injector:
    """Replaces a backend method; ``fail(call)`` decides per call whether to raise instead."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, owner: type, name: str,
                 fail: Callable[[dict[str, Any]], BaseException | None]) -> None:
        self.calls: list[dict[str, Any]] = []
        self.failures = 0
        original = getattr(owner, name)

        def injected(backend: Any, *args: Any, **kwargs: Any) -> Any:
            call = {"args": args, "kwargs": kwargs}
            self.calls.append(call)
            error = fail(call)
            if error is not None:
                self.failures += 1
                raise error
            return original(backend, *args, **kwargs)

        monkeypatch.setattr(owner, name, injected)


@pytest.fixture(scope="module")
def module_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    local = start_cloud(tmp_path_factory.mktemp("injected"))
    try:
        load_machines(local)
        yield local
    finally:
        local.stop()


@pytest.fixture
def cloud(module_cloud: LocalCloud) -> LocalCloud:
    """The module's cloud as if just started: no job, no model, no registry entry from an earlier test (its
    workers stay warm). Requested before ``monkeypatch``, so each test's injector is undone first."""
    fresh_state(module_cloud)
    return module_cloud


def throttle_first(table: str, times: int) -> Callable[[dict[str, Any]], BaseException | None]:
    """Raises DynamoDB's throttling error for the first ``times`` writes to ``table``."""
    budget = {"left": times}

    def throttle(call: dict[str, Any]) -> BaseException | None:
        if _named(call, table) and budget["left"] > 0:
            budget["left"] -= 1
            return DynamodbException("ProvisionedThroughputExceededException", "injected throttling")
        return None

    return throttle


def _named(call: dict[str, Any], table: str) -> bool:
    return table in (*call["args"][:1], call["kwargs"].get("table_name"))


def test_throttled_status_writes_are_retried_and_the_job_completes(cloud: LocalCloud,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    throttle = throttle_first(cloud.stack.tables["JobsTable"].name, times=3)
    throttled = Injector(monkeypatch, DynamoDBBackend, "update_item", throttle)
    process_id = requests.post(f"{cloud.api_url}/train", json=BODY, timeout=60).json()["process_id"]
    job = wait_for_job(cloud.api_url, process_id)
    assert throttled.failures == 3
    assert job["status"] == "completed", job["error_message"]


def test_throttled_job_creation_is_retried_by_the_api(cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch) -> None:
    throttle = throttle_first(cloud.stack.tables["JobsTable"].name, times=2)
    throttled = Injector(monkeypatch, DynamoDBBackend, "put_item", throttle)
    response = requests.post(f"{cloud.api_url}/train", json=BODY, timeout=60)
    assert response.status_code == 200, response.text
    assert throttled.failures == 2
    assert wait_for_job(cloud.api_url, response.json()["process_id"])["status"] == "completed"


def test_model_write_failing_once_is_retried_and_stored_once(cloud: LocalCloud,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    models_bucket = cloud.stack.buckets["ModelsBucket"]
    budget = {"left": 1}

    def fail_once(call: dict[str, Any]) -> BaseException | None:
        bucket = call["args"][0] if call["args"] else call["kwargs"].get("bucket_name")
        if bucket == models_bucket and budget["left"] > 0:
            budget["left"] -= 1
            return RuntimeError("injected S3 failure")  # the server answers 500, which clients retry
        return None

    failing = Injector(monkeypatch, S3Backend, "put_object", fail_once)
    process_id = requests.post(f"{cloud.api_url}/train", json=BODY, timeout=60).json()["process_id"]
    job = wait_for_job(cloud.api_url, process_id)
    assert failing.failures == 1
    assert job["status"] == "completed", job["error_message"]
    bucket, key = job["bucket_address"].removeprefix("s3://").split("/", 1)
    versions = cloud.client("s3").list_object_versions(Bucket=bucket, Prefix=key).get("Versions", [])
    assert len(versions) == 1  # one model object, written once


def test_registry_write_failure_leaves_no_artifact(cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch) -> None:
    models_table = cloud.stack.tables["ModelsTable"].name

    def refuse(call: dict[str, Any]) -> BaseException | None:
        if _named(call, models_table):
            return DynamodbException("ValidationException", "injected: the registry refused the item")
        return None

    Injector(monkeypatch, DynamoDBBackend, "put_item", refuse)
    process_id = requests.post(f"{cloud.api_url}/train", json=BODY, timeout=60).json()["process_id"]
    job = wait_for_job(cloud.api_url, process_id)
    assert job["status"] == "failed"
    assert "the registry refused the item" in job["error_message"]
    # Versions, not keys: the bucket is versioned, so a delete that only added a delete marker would leave
    # every byte in place and an empty key listing.
    listing = cloud.client("s3").list_object_versions(Bucket=cloud.stack.buckets["ModelsBucket"])
    left = [(v["Key"], v["VersionId"]) for v in listing.get("Versions", [])]
    assert left == [] and listing.get("DeleteMarkers", []) == [], (left, listing.get("DeleteMarkers"))
    items = cloud.client("dynamodb").scan(TableName=models_table)["Items"]
    assert items == []
