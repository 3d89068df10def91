"""The registry's types (modelforge.registry): model names and their keys, and the rules a version answers."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from modelforge.errors import MissingArtifactError
from modelforge.jobs import FailureEventSource, Indicator
from modelforge.registry import ModelName, ModelVersion

NAME = ModelName("PUMP-1", Indicator.STATUS)


def version(**fields: Any) -> ModelVersion:
    return ModelVersion.model_validate({"model_name": "PUMP-1#status", "version": "v1", "machine_name": "PUMP-1",
                                        "indicator": "status", "artifact_uri": "s3://m/v1.ubj",
                                        "artifact_sha256": "0" * 64, **fields})


@pytest.mark.parametrize("key", ["PUMP-1#status", "FLEET_A#health", "a.b-c_d#status"])
def test_a_model_name_round_trips_through_its_key(key: str) -> None:
    name = ModelName.parse(key)
    assert name.key == str(name) == key
    assert ModelName(name.machine_name, name.indicator) == name
    assert ModelName.from_pointer_key(name.pointer_key) == name
    assert name.pointer_key == f"champion#{key}" and name.history_key == f"history#{key}"


def test_a_model_name_s_parts_and_label() -> None:
    name = ModelName.parse("PUMP-1#health")
    assert (name.machine_name, name.indicator) == ("PUMP-1", Indicator.HEALTH)
    assert name.label == "PUMP-1/health"
    assert ModelName("PUMP-1", "status") == NAME  # type: ignore[arg-type]  # a plain string indicator is accepted
    assert hash(ModelName.parse("PUMP-1#status")) == hash(NAME)  # usable as a cache key


@pytest.mark.parametrize("key", ["PUMP-1", "PUMP-1#speed", "#status", "champion#PUMP-1#status", ""])
def test_what_is_not_a_model_name_is_refused(key: str) -> None:
    with pytest.raises(ValueError, match="not a"):
        ModelName.parse(key)


def test_a_pointer_key_needs_its_prefix() -> None:
    with pytest.raises(ValueError, match="champion pointer"):
        ModelName.from_pointer_key("PUMP-1#status")


def test_a_version_reads_its_name_from_the_key_and_writes_the_key_back() -> None:
    typed = version()
    assert typed.model_name == NAME
    assert typed.model_dump(mode="json")["model_name"] == "PUMP-1#status"
    with pytest.raises(ValidationError):
        version(model_name="not a key")


def test_the_decision_threshold_comes_from_params_then_metrics() -> None:
    assert version().decision_threshold is None
    assert version(metrics={"recall": 0.9}, params={"max_depth": 3}).decision_threshold is None
    assert version(metrics={"threshold": 0.3}).decision_threshold == 0.3
    assert version(params={"threshold": 0.7}, metrics={"threshold": 0.3}).decision_threshold == 0.7
    assert version(params={"threshold": None}, metrics={"threshold": 0.3}).decision_threshold == 0.3
    # 0.0 is a threshold (everything is "pre-failure"), not a missing one.
    assert version(params={"threshold": 0.0}, metrics={"threshold": 0.3}).decision_threshold == 0.0
    assert version(metrics={"threshold": 0}).decision_threshold == 0.0


def test_a_machine_model_is_trained_on_its_own_machine() -> None:
    for fields in ({}, {"machine_names": None}, {"machine_names": []}, {"machine_names": ["PUMP-1"]}):
        typed = version(**fields)
        assert typed.machines == ["PUMP-1"] and not typed.is_fleet


def test_a_fleet_model_is_trained_on_its_machines() -> None:
    fleet = version(model_name="PUMPS#status", machine_name="PUMPS", machine_names=["P-1", "P-2"])
    assert fleet.machines == ["P-1", "P-2"] and fleet.is_fleet
    fleet.machines.append("P-3")  # a copy: the version itself does not change
    assert fleet.machines == ["P-1", "P-2"]


def test_options_and_failure_events_read_back_typed() -> None:
    assert version().training_options is None and version().failure_events is FailureEventSource.RPM_DROP
    typed = version(options={"label_window_minutes": 300, "holdout": "machines"}, failure_events="records")
    assert typed.training_options is not None and typed.training_options.label_window_minutes == 300
    assert typed.failure_events is FailureEventSource.RECORDS


def test_artifacts_are_addressed_with_their_sha256_and_a_missing_one_says_which() -> None:
    typed = version(profile_uri="s3://m/v1.profile.json", profile_sha256="1" * 64)
    assert typed.artifact == ("s3://m/v1.ubj", "0" * 64, None)  # no VersionId recorded: read by key
    assert typed.profile_artifact().uri == "s3://m/v1.profile.json"
    with pytest.raises(MissingArtifactError, match="PUMP-1/status v1 has no stored holdout"):
        typed.holdout_artifact()
