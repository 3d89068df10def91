"""Idempotent submissions: retries and duplicates from flaky networks never start a second job."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator

import pytest
import requests

from localcloud.cloud import LocalCloud
from tests.integration.conftest import TRAINABLE_MACHINE, load_machines, start_cloud

BODY = {"indicator": "status", "machine_name": TRAINABLE_MACHINE}


@pytest.fixture(scope="module")
def hanging_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    # Training never finishes here, so executions stay RUNNING until something stops them.
    cloud = start_cloud(tmp_path_factory.mktemp("hanging"),
                        handler_overrides={"TrainingFunction": "tests.integration.faulty_handlers.hang"})
    try:
        load_machines(cloud)
        yield cloud
    finally:
        cloud.stop()


def _executions(cloud: LocalCloud) -> list[dict[str, object]]:
    sfn = cloud.client("stepfunctions")
    return list(sfn.list_executions(stateMachineArn=cloud.outputs["StateMachineArn"])["executions"])


def test_same_key_and_body_is_one_job_and_one_execution(hanging_cloud: LocalCloud) -> None:
    before = len(_executions(hanging_cloud))
    headers = {"Idempotency-Key": "retry-from-a-flaky-network"}
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(
            lambda _: requests.post(f"{hanging_cloud.api_url}/train", json=BODY, headers=headers, timeout=60),
            range(6)))
    accepted = [a for a in answers if a.status_code == 200]
    assert accepted, [a.text for a in answers]
    assert all(a.status_code in (200, 409) for a in answers), [a.text for a in answers]
    assert len({a.json()["process_id"] for a in accepted}) == 1
    for conflict in (a for a in answers if a.status_code == 409):
        assert conflict.headers["Retry-After"] == "1"  # a concurrent duplicate is told to retry
    again = requests.post(f"{hanging_cloud.api_url}/train", json=BODY, headers=headers, timeout=60)
    assert again.json()["process_id"] == accepted[0].json()["process_id"]
    assert len(_executions(hanging_cloud)) == before + 1


def test_same_key_with_another_body_is_refused(hanging_cloud: LocalCloud) -> None:
    headers = {"Idempotency-Key": "one-key-one-request"}
    first = requests.post(f"{hanging_cloud.api_url}/train", json=BODY, headers=headers, timeout=60)
    assert first.status_code == 200
    other = requests.post(f"{hanging_cloud.api_url}/train", json={**BODY, "indicator": "health"},
                          headers=headers, timeout=60)
    assert other.status_code == 422
    assert other.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]
