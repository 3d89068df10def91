"""The registry's promotion invariants, on moto's DynamoDB (in-process) with the table from template.yaml."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws

from localcloud.moto_fidelity import serialized_dynamodb_writes
from localcloud.template import resolve_stack
from modelforge.adapters.model_registry import ModelRegistry, model_name
from modelforge.errors import ModelNotFoundError, PromotionConflictError

NAME = model_name("MOTOBOMBA-001", "status")
NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModelRegistry]:
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    table = resolve_stack().tables["ModelsTable"]
    # DynamoDB's isolation, which moto lacks (see localcloud/moto_fidelity.py), for this test only.
    with serialized_dynamodb_writes(), mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        dynamodb.create_table(TableName=table.name, KeySchema=table.properties["KeySchema"],
                              AttributeDefinitions=table.properties["AttributeDefinitions"],
                              BillingMode="PAY_PER_REQUEST")
        resource = boto3.resource("dynamodb", region_name="us-east-1")
        yield ModelRegistry(table.name, table=resource.Table(table.name), dynamodb=dynamodb)


def _add(registry: ModelRegistry, version: str) -> None:
    registry.put_version({"model_name": NAME, "version": version, "machine_name": "MOTOBOMBA-001",
                          "indicator": "status", "artifact_uri": f"s3://b/{version}.ubj", "artifact_sha256": "0" * 64,
                          "metrics": {"recall": 0.9}})


def _champions(registry: ModelRegistry) -> list[str]:
    return [v["version"] for v in registry.list_versions(NAME) if v["status"] == "champion"]


def test_new_versions_are_candidates_and_are_never_overwritten(registry: ModelRegistry) -> None:
    _add(registry, "20260101T000000Z-aaaaaaaa")
    assert registry.get_version(NAME, "20260101T000000Z-aaaaaaaa")["status"] == "candidate"  # type: ignore[index]
    with pytest.raises(Exception, match="ConditionalCheckFailed"):
        _add(registry, "20260101T000000Z-aaaaaaaa")


def test_promotion_moves_the_champion_and_archives_the_old_one(registry: ModelRegistry) -> None:
    first, second = "20260101T000000Z-aaaaaaaa", "20260102T000000Z-bbbbbbbb"
    _add(registry, first)
    _add(registry, second)
    registry.promote(NAME, first, reason="first model", by="gate", now=NOW)
    assert _champions(registry) == [first]
    result = registry.promote(NAME, second, reason="better F2", by="gate", now=NOW)
    assert result["previous_version"] == first
    assert _champions(registry) == [second]
    assert registry.get_version(NAME, first)["status"] == "archived"  # type: ignore[index]
    # Rollback: an archived version can come back, recorded with its reason.
    registry.promote(NAME, first, reason="rollback: false alarms", by="alice", now=NOW)
    assert _champions(registry) == [first]
    history = registry.history(NAME)
    assert [(h["from_version"], h["to_version"]) for h in history][::-1] == [
        (None, first), (first, second), (second, first)]
    assert history[0]["promoted_by"] == "alice"


def test_unknown_version_cannot_be_promoted(registry: ModelRegistry) -> None:
    with pytest.raises(ModelNotFoundError):
        registry.promote(NAME, "20260101T000000Z-ffffffff", reason="?", by="x", now=NOW)


def test_racing_promotions_leave_exactly_one_champion(registry: ModelRegistry) -> None:
    versions = [f"2026010{i}T000000Z-{i:08x}" for i in range(1, 7)]
    for version in versions:
        _add(registry, version)
    registry.promote(NAME, versions[0], reason="initial", by="gate", now=NOW)
    barrier = threading.Barrier(len(versions) - 1)
    outcomes: list[Any] = []

    def race(version: str) -> None:
        barrier.wait()
        try:
            outcomes.append(registry.promote(NAME, version, reason="race", by="racer", now=NOW))
        except PromotionConflictError as error:
            outcomes.append(error)

    threads = [threading.Thread(target=race, args=(v,)) for v in versions[1:]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [o for o in outcomes if isinstance(o, dict)]
    assert len(winners) >= 1
    champions = _champions(registry)
    assert len(champions) == 1
    assert registry.champion_pointer(NAME)["champion_version"] == champions[0]  # type: ignore[index]
    # Every successful promotion is in the history, and the history chains from one champion to the next.
    history = registry.history(NAME)[::-1]
    assert len(history) == 1 + len(winners)
    for before, after in itertools.pairwise(history):
        assert after["from_version"] == before["to_version"]


def test_reject_only_touches_candidates(registry: ModelRegistry) -> None:
    champion, challenger = "20260101T000000Z-aaaaaaaa", "20260102T000000Z-bbbbbbbb"
    _add(registry, champion)
    _add(registry, challenger)
    registry.promote(NAME, champion, reason="first", by="gate", now=NOW)
    registry.reject(NAME, challenger, reason="recall below floor", by="gate", now=NOW)
    assert registry.get_version(NAME, challenger)["status_reason"] == "recall below floor"  # type: ignore[index]
    with pytest.raises(PromotionConflictError):
        registry.reject(NAME, champion, reason="no", by="gate", now=NOW)
    assert _champions(registry) == [champion]
