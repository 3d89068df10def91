"""ChampionCache: hot reload within the refresh interval, sha256 refusal, and the old model kept serving."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
import xgboost as xgb

from modelforge.errors import ArtifactIntegrityError, NoChampionError
from modelforge.jobs import Indicator
from modelforge.logic.predict import ChampionCache
from modelforge.registry import ChampionPointer, ModelName, ModelVersion

NAME = ModelName("M-1", Indicator.STATUS)


def _artifact(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(200, 2))
    booster = xgb.train({"objective": "binary:logistic", "nthread": 1},
                        xgb.DMatrix(x, label=(x[:, 0] > 0).astype(float), feature_names=["a", "b"]), 3)
    return bytes(booster.save_raw(raw_format="ubj"))


def pointer(version: str) -> ChampionPointer:
    return ChampionPointer(name=NAME, champion_version=version, revision=1)


class FakeRegistry:
    def __init__(self) -> None:
        self.pointer: ChampionPointer | None = None
        self.versions: dict[str, ModelVersion] = {}
        self.pointer_reads = 0

    def add(self, version: str, uri: str, data: bytes) -> None:
        self.versions[version] = ModelVersion(model_name=NAME, version=version, machine_name="M-1",
                                              indicator=Indicator.STATUS, artifact_uri=uri,
                                              artifact_sha256=hashlib.sha256(data).hexdigest(),
                                              feature_names=["a", "b"], metrics={"threshold": 0.5})

    def champion_pointer(self, name: ModelName) -> ChampionPointer | None:
        self.pointer_reads += 1
        return self.pointer

    def get_version(self, name: ModelName, version: str) -> ModelVersion | None:
        return self.versions.get(version)


class FakeArtifacts:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def get_verified(self, uri: str, expected_sha256: str, version_id: str | None = None) -> bytes:
        data = self.objects[uri]
        if hashlib.sha256(data).hexdigest() != expected_sha256:
            raise ArtifactIntegrityError(f"{uri}: sha256 mismatch")
        return data


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def setup() -> tuple[ChampionCache, FakeRegistry, FakeArtifacts, Clock]:
    registry, artifacts, clock = FakeRegistry(), FakeArtifacts(), Clock()
    for version, seed in (("v1", 1), ("v2", 2)):
        data = _artifact(seed)
        artifacts.objects[f"s3://b/{version}"] = data
        registry.add(version, f"s3://b/{version}", data)
    return ChampionCache(registry, artifacts, refresh_seconds=30, clock=clock), registry, artifacts, clock


def test_no_champion_is_a_clear_error(setup: Any) -> None:
    cache, *_ = setup
    with pytest.raises(NoChampionError, match="no champion"):
        cache.champion(NAME)


def test_registry_is_read_at_most_once_per_interval_and_a_new_champion_is_picked_up(setup: Any) -> None:
    cache, registry, _, clock = setup
    registry.pointer = pointer("v1")
    assert cache.champion(NAME).version == "v1"
    registry.pointer = pointer("v2")
    clock.now = 29
    assert cache.champion(NAME).version == "v1"  # within the interval: no registry read
    assert registry.pointer_reads == 1
    clock.now = 30
    assert cache.champion(NAME).version == "v2"
    assert registry.pointer_reads == 2


def test_tampered_new_champion_is_refused_and_the_old_one_keeps_serving(setup: Any) -> None:
    cache, registry, artifacts, clock = setup
    registry.pointer = pointer("v1")
    first = cache.champion(NAME)
    artifacts.objects["s3://b/v2"] = b"tampered"
    registry.pointer = pointer("v2")
    clock.now = 31
    assert cache.champion(NAME) is first
    # Fixed artifact: picked up at the next interval.
    artifacts.objects["s3://b/v2"] = _artifact(2)
    clock.now = 62
    assert cache.champion(NAME).version == "v2"


def test_tampered_artifact_with_nothing_to_fall_back_on_is_an_error(setup: Any) -> None:
    cache, registry, artifacts, _ = setup
    artifacts.objects["s3://b/v1"] = b"tampered"
    registry.pointer = pointer("v1")
    with pytest.raises(ArtifactIntegrityError):
        cache.champion(NAME)


def test_the_loaded_champion_carries_its_version_s_threshold_features_and_training_time(setup: Any) -> None:
    cache, registry, _, _ = setup
    trained_at = datetime(2025, 9, 27, 10, 15, tzinfo=UTC)
    registry.versions["v1"] = registry.versions["v1"].model_copy(
        update={"params": {"threshold": 0.0}, "trained_at": trained_at})
    registry.pointer = pointer("v1")
    model = cache.champion(NAME)
    assert model.threshold == 0.0 and model.trained_at == trained_at  # 0.0 is a threshold, not "none"
    assert model.feature_names == ("a", "b") and model.sensors == ("a", "b") and model.indicator == "status"
