"""The registry's promotion invariants and its item layout, on moto's DynamoDB (in-process) with the table from
template.yaml."""

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
from modelforge.adapters.dynamo import from_dynamo, to_dynamo
from modelforge.adapters.model_registry import ModelRegistry, version_item
from modelforge.errors import ModelNotFoundError, PromotionConflictError
from modelforge.jobs import FailureEventSource, Indicator
from modelforge.registry import ModelName, ModelVersion, PromotionResult, VersionStatus

NAME = ModelName("MOTOBOMBA-001", Indicator.STATUS)
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
    registry.put_version(ModelVersion(model_name=NAME, version=version, machine_name="MOTOBOMBA-001",
                                      indicator=Indicator.STATUS, artifact_uri=f"s3://b/{version}.ubj",
                                      artifact_sha256="0" * 64, metrics={"recall": 0.9}))


def _champions(registry: ModelRegistry) -> list[str]:
    return [v.version for v in registry.list_versions(NAME) if v.status == "champion"]


def test_new_versions_are_candidates_and_are_never_overwritten(registry: ModelRegistry) -> None:
    _add(registry, "20260101T000000Z-aaaaaaaa")
    assert registry.get_version(NAME, "20260101T000000Z-aaaaaaaa").status == "candidate"  # type: ignore[union-attr]
    with pytest.raises(Exception, match="ConditionalCheckFailed"):
        _add(registry, "20260101T000000Z-aaaaaaaa")


def test_promotion_moves_the_champion_and_archives_the_old_one(registry: ModelRegistry) -> None:
    first, second = "20260101T000000Z-aaaaaaaa", "20260102T000000Z-bbbbbbbb"
    _add(registry, first)
    _add(registry, second)
    registry.promote(NAME, first, reason="first model", by="gate", now=NOW)
    assert _champions(registry) == [first]
    result = registry.promote(NAME, second, reason="better F2", by="gate", now=NOW)
    assert result.previous_version == first
    assert _champions(registry) == [second]
    assert registry.get_version(NAME, first).status == "archived"  # type: ignore[union-attr]
    # Rollback: an archived version can come back, recorded with its reason.
    registry.promote(NAME, first, reason="rollback: false alarms", by="alice", now=NOW)
    assert _champions(registry) == [first]
    history = registry.history(NAME)
    assert [(h.from_version, h.to_version) for h in history][::-1] == [
        (None, first), (first, second), (second, first)]
    assert history[0].promoted_by == "alice"


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
    winners = [o for o in outcomes if isinstance(o, PromotionResult)]
    assert len(winners) >= 1
    champions = _champions(registry)
    assert len(champions) == 1
    assert registry.champion_pointer(NAME).champion_version == champions[0]  # type: ignore[union-attr]
    # Every successful promotion is in the history, and the history chains from one champion to the next.
    history = registry.history(NAME)[::-1]
    assert len(history) == 1 + len(winners)
    for before, after in itertools.pairwise(history):
        assert after.from_version == before.to_version


def test_reject_only_touches_candidates(registry: ModelRegistry) -> None:
    champion, challenger = "20260101T000000Z-aaaaaaaa", "20260102T000000Z-bbbbbbbb"
    _add(registry, champion)
    _add(registry, challenger)
    registry.promote(NAME, champion, reason="first", by="gate", now=NOW)
    registry.reject(NAME, challenger, reason="recall below floor", by="gate", now=NOW)
    assert registry.get_version(NAME, challenger).status_reason == "recall below floor"  # type: ignore[union-attr]
    with pytest.raises(PromotionConflictError):
        registry.reject(NAME, champion, reason="no", by="gate", now=NOW)
    assert _champions(registry) == [champion]


# ---------------------------------------------------------------- the item layout

TRAINED = "20250927T101500Z-0f8fad5b"
# A version as training and then the registry wrote it before the types existed: the 27 attributes of the
# training step's item, its holdout, and what the registry adds later (status, decision, drift check).
STORED = {
    "model_name": "MOTOBOMBA-001#status", "version": TRAINED, "machine_name": "MOTOBOMBA-001",
    "machine_names": ["MOTOBOMBA-001"], "failure_events": "rpm_drop", "options": None, "indicator": "status",
    "process_id": "0f8fad5b-d9cb-469f-a165-70867728950e", "artifact_uri": "s3://m/model/x.ubj",
    "artifact_sha256": "a" * 64, "model_format": "ubj", "report_uri": "s3://m/model/x.report.html",
    "report_sha256": "b" * 64, "profile_uri": "s3://m/model/x.profile.json", "profile_sha256": "c" * 64,
    "holdout_uri": "s3://m/model/x.holdout.parquet", "holdout_sha256": "d" * 64,
    "feature_names": ["rpm", "rpm__mean_30min"], "metrics": {"recall": 0.75, "threshold": 0.0, "pr_auc": None},
    "baseline_metrics": {"pr_auc": 0.1}, "params": {"max_depth": 6, "device": "cpu"},
    "data": {"rows": 1000, "start_date": "2025-01-01", "end_date": None}, "lineage": {"code_version": "0.1.0"},
    "feature_importance": {"rpm": 0.25}, "device": "cpu", "code_version": "0.1.0",
    "library_versions": {"xgboost": "3.0.0"}, "timings": {"train_seconds": 1.5},
    "trained_at": "2025-09-27T10:15:00+00:00", "status": "archived", "status_reason": "better F2",
    "decided_by": "gate:0f8fad5b", "decided_at": "2025-09-27T10:20:00.250000+00:00",
    "archived_at": "2025-10-01T00:00:00+00:00", "last_drift_check": {"status": "stable", "max_psi": 0.01},
}


def _raw(name: str, version: str) -> dict[str, Any]:
    table = boto3.resource("dynamodb", region_name="us-east-1").Table(resolve_stack().tables["ModelsTable"].name)
    return from_dynamo(table.get_item(Key={"model_name": name, "version": version})["Item"])


def test_a_stored_item_reads_back_typed_and_writes_back_the_same_attributes(registry: ModelRegistry) -> None:
    table = boto3.resource("dynamodb", region_name="us-east-1").Table(resolve_stack().tables["ModelsTable"].name)
    table.put_item(Item=to_dynamo(STORED))

    version = registry.get_version(NAME, TRAINED)
    assert version is not None
    assert version.model_name == NAME and version.indicator is Indicator.STATUS
    assert version.status is VersionStatus.ARCHIVED and version.failure_events is FailureEventSource.RPM_DROP
    assert version.trained_at == datetime(2025, 9, 27, 10, 15, tzinfo=UTC)
    assert version.decision_threshold == 0.0 and version.machines == ["MOTOBOMBA-001"] and not version.is_fleet
    assert version.profile_artifact() == ("s3://m/model/x.profile.json", "c" * 64, None)  # registered unversioned
    assert version_item(version) == STORED  # same attribute names, same values, same date-time strings

    registry.put_version(version.model_copy(update={"version": "20250928T000000Z-0f8fad5b"}))
    assert _raw(NAME.key, "20250928T000000Z-0f8fad5b") == {**STORED, "version": "20250928T000000Z-0f8fad5b"}


def test_promotion_writes_the_pointer_and_history_attributes_it_always_wrote(registry: ModelRegistry) -> None:
    first, second = "20260101T000000Z-aaaaaaaa", "20260102T000000Z-bbbbbbbb"
    _add(registry, first)
    _add(registry, second)
    registry.promote(NAME, first, reason="first model", by="gate", now=NOW)
    result = registry.promote(NAME, second, reason="x" * 2500, by="alice", now=NOW)
    assert result == PromotionResult(champion_version=second, previous_version=first, revision=2)

    assert _raw(NAME.pointer_key, "current") == {
        "model_name": "champion#MOTOBOMBA-001#status", "version": "current", "champion_version": second,
        "revision": 2, "updated_at": NOW.isoformat(), "promoted_by": "alice", "reason": "x" * 2000}
    assert _raw(NAME.history_key, "revision#0000000001") == {
        "model_name": "history#MOTOBOMBA-001#status", "version": "revision#0000000001", "from_version": None,
        "to_version": first, "reason": "first model", "promoted_by": "gate", "at": NOW.isoformat()}
    assert _raw(NAME.key, second)["decided_at"] == NOW.isoformat()
    assert _raw(NAME.key, first)["archived_at"] == NOW.isoformat()

    pointer = registry.champion_pointer(NAME)
    assert pointer is not None and (pointer.name, pointer.champion_version, pointer.revision) == (NAME, second, 2)
    assert pointer.updated_at == NOW and pointer.promoted_by == "alice"
    assert [(e.revision, e.from_version, e.to_version, e.at) for e in registry.history(NAME)] == [
        (2, first, second, NOW), (1, None, first, NOW)]
    # Promoting the champion again changes nothing.
    assert registry.promote(NAME, second, reason="again", by="bob", now=NOW) == PromotionResult(
        champion_version=second, previous_version=None, revision=2)
    assert [c.version for c in registry.list_champions()] == [second]


WHY = "better F2 on the shared holdout"


def test_the_api_s_registry_bodies_are_built_from_the_typed_records(registry: ModelRegistry) -> None:
    from modelforge.logic import models_api
    from modelforge.schemas import PromoteRequest

    first, second = "20260101T000000Z-aaaaaaaa", "20260102T000000Z-bbbbbbbb"
    _add(registry, first)
    _add(registry, second)
    registry.promote(NAME, first, reason="first model", by="gate", now=NOW)
    registry.record_drift(NAME, first, {"status": "stable", "max_psi": 0.02})

    class Artifacts:
        def get_verified(self, uri: str, expected_sha256: str, version_id: str | None = None) -> bytes:
            return b"verified"

    # The second version is a candidate the gate never decided on: promoting it by hand is an override.
    promoted = models_api.promote_version(PromoteRequest(version=second, reason=WHY, override=True),
                                          registry=registry, artifacts=Artifacts(), machine_name="MOTOBOMBA-001",
                                          indicator=Indicator.STATUS, caller="alice", now=lambda: NOW)
    assert promoted.model_dump(mode="json") == {"machine_name": "MOTOBOMBA-001", "indicator": "status",
                                                "champion_version": second, "previous_version": first}
    listed = models_api.list_models(registry=registry, machine_name="MOTOBOMBA-001", indicator=None, limit=10)
    assert [v.model_dump(mode="json") for v in listed.versions] == [
        {"machine_name": "MOTOBOMBA-001", "indicator": "status", "version": second, "status": "champion",
         "status_reason": WHY, "decided_by": "alice", "override": True, "trained_at": None, "process_id": None,
         "artifact_uri": f"s3://b/{second}.ubj", "artifact_sha256": "0" * 64, "metrics": {"recall": 0.9},
         "feature_names": [], "report_url": None},
        {"machine_name": "MOTOBOMBA-001", "indicator": "status", "version": first, "status": "archived",
         "status_reason": "first model", "decided_by": "gate", "override": False, "trained_at": None,
         "process_id": None, "artifact_uri": f"s3://b/{first}.ubj", "artifact_sha256": "0" * 64,
         "metrics": {"recall": 0.9}, "feature_names": [], "report_url": None}]
    shown = models_api.get_champion(registry=registry, machine_name="MOTOBOMBA-001", indicator=Indicator.STATUS)
    body = shown.model_dump(mode="json")
    assert body["champion"]["version"] == second and body["last_drift_check"] is None
    assert (body["promoted_by"], body["reason"], body["updated_at"]) == ("alice", WHY, "2026-01-01T00:00:00Z")
    assert body["history"] == [
        {"from_version": first, "to_version": second, "reason": WHY, "promoted_by": "alice",
         "at": "2026-01-01T00:00:00Z", "override": True, "overridden_status": "candidate"},
        {"from_version": None, "to_version": first, "reason": "first model", "promoted_by": "gate",
         "at": "2026-01-01T00:00:00Z", "override": False, "overridden_status": None}]
    registry.promote(NAME, first, reason="rollback", by="bob", now=NOW)
    shown = models_api.get_champion(registry=registry, machine_name="MOTOBOMBA-001", indicator=Indicator.STATUS)
    assert shown.last_drift_check == {"status": "stable", "max_psi": 0.02}


# ---------------------------------------------------------------- manual promotion over the gate (issue 16)

ALICE = "arn:aws:sts::123456789012:assumed-role/operators/alice"
OVERRIDE_REASON = "gate floors too strict for this pump; approved by reliability team"


class VerifiedArtifacts:
    def get_verified(self, uri: str, expected_sha256: str, version_id: str | None = None) -> bytes:
        return b"verified"


def _promote_by_hand(registry: ModelRegistry, version: str, reason: str, *, override: bool = False) -> Any:
    from modelforge.logic import models_api
    from modelforge.schemas import PromoteRequest

    return models_api.promote_version(PromoteRequest(version=version, reason=reason, override=override),
                                      registry=registry, artifacts=VerifiedArtifacts(),
                                      machine_name=NAME.machine_name, indicator=NAME.indicator, caller=ALICE,
                                      now=lambda: NOW)


@pytest.mark.parametrize("status", ["rejected", "candidate"])
def test_a_rejected_or_undecided_version_is_not_promoted_without_an_override(registry: ModelRegistry,
                                                                            status: str) -> None:
    from modelforge.errors import OverrideRequiredError

    champion, challenger = "20260101T000000Z-aaaaaaaa", "20260102T000000Z-bbbbbbbb"
    _add(registry, champion)
    _add(registry, challenger)
    registry.promote(NAME, champion, reason="first model", by="gate", now=NOW)
    if status == "rejected":
        registry.reject(NAME, challenger, reason="recall 0.41 below the floor 0.5", by="gate:p-2", now=NOW)

    with pytest.raises(OverrideRequiredError, match=f"{challenger} (was rejected|is a candidate)") as refused:
        _promote_by_hand(registry, challenger, "looks fine to me")

    assert isinstance(refused.value, PromotionConflictError)  # a 409
    assert '"override": true' in str(refused.value)
    if status == "rejected":
        assert "recall 0.41 below the floor 0.5" in str(refused.value)
    assert _champions(registry) == [champion]
    assert registry.get_version(NAME, challenger).status == status  # type: ignore[union-attr]
    assert len(registry.history(NAME)) == 1


def test_an_override_is_recorded_on_the_version_and_in_the_history(registry: ModelRegistry) -> None:
    champion, challenger = "20260101T000000Z-aaaaaaaa", "20260102T000000Z-bbbbbbbb"
    _add(registry, champion)
    _add(registry, challenger)
    registry.promote(NAME, champion, reason="first model", by="gate", now=NOW)
    registry.reject(NAME, challenger, reason="recall below floor", by="gate:p-2", now=NOW)

    promoted = _promote_by_hand(registry, challenger, OVERRIDE_REASON, override=True)

    assert (promoted.champion_version, promoted.previous_version) == (challenger, champion)
    item = _raw(NAME.key, challenger)
    assert {k: item[k] for k in ("status", "decided_by", "status_reason", "override", "overridden_status")} == {
        "status": "champion", "decided_by": ALICE, "status_reason": OVERRIDE_REASON, "override": True,
        "overridden_status": "rejected"}
    assert _raw(NAME.history_key, "revision#0000000002") == {
        "model_name": NAME.history_key, "version": "revision#0000000002", "from_version": champion,
        "to_version": challenger, "reason": OVERRIDE_REASON, "promoted_by": ALICE, "at": NOW.isoformat(),
        "override": True, "overridden_status": "rejected"}
    latest = registry.history(NAME)[0]
    assert (latest.override, latest.overridden_status) == (True, VersionStatus.REJECTED)


def test_a_rollback_to_a_former_champion_needs_no_override_and_clears_old_override_marks(
        registry: ModelRegistry) -> None:
    first, second = "20260101T000000Z-aaaaaaaa", "20260102T000000Z-bbbbbbbb"
    _add(registry, first)
    _add(registry, second)
    _promote_by_hand(registry, first, OVERRIDE_REASON, override=True)  # a candidate, promoted over the gate
    registry.promote(NAME, second, reason="better F2", by="gate", now=NOW)
    assert registry.get_version(NAME, first).status == "archived"  # type: ignore[union-attr]

    rolled_back = _promote_by_hand(registry, first, "rollback: false alarms")

    assert (rolled_back.champion_version, rolled_back.previous_version) == (first, second)
    item = _raw(NAME.key, first)
    assert (item["status"], item["status_reason"], item["decided_by"]) == ("champion", "rollback: false alarms",
                                                                           ALICE)
    assert "override" not in item and "overridden_status" not in item
    assert [e.override for e in registry.history(NAME)] == [False, False, True]
    assert "override" not in _raw(NAME.history_key, "revision#0000000003")


def test_a_gate_decision_between_the_read_and_the_promotion_cancels_it(registry: ModelRegistry) -> None:
    champion, challenger = "20260101T000000Z-aaaaaaaa", "20260102T000000Z-bbbbbbbb"
    _add(registry, champion)
    _add(registry, challenger)
    registry.promote(NAME, champion, reason="first model", by="gate", now=NOW)
    # The caller read "candidate" and decided to override that; the gate rejects the version meanwhile.
    registry.reject(NAME, challenger, reason="recall below floor", by="gate:p-2", now=NOW)

    with pytest.raises(PromotionConflictError, match="changed while promoting"):
        registry.promote(NAME, challenger, reason=OVERRIDE_REASON, by=ALICE, now=NOW,
                         expected_status=VersionStatus.CANDIDATE, override=True)

    assert _champions(registry) == [champion]
    assert registry.get_version(NAME, challenger).status == "rejected"  # type: ignore[union-attr]


@pytest.mark.parametrize("reason", ["ok", "because I say so", "override override override override"])
def test_an_override_needs_a_reason_that_says_why(reason: str) -> None:
    from pydantic import ValidationError

    from modelforge.schemas import PromoteRequest

    with pytest.raises(ValidationError) as invalid:
        PromoteRequest(version="20260102T000000Z-bbbbbbbb", reason=reason, override=True)
    assert [e["loc"] for e in invalid.value.errors()] == [("reason",)]
    assert PromoteRequest(version="20260102T000000Z-bbbbbbbb", reason=OVERRIDE_REASON, override=True).override
