"""ChampionCache: hot reload within the refresh interval, sha256 refusal, and the old model kept serving."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pytest
import xgboost as xgb

from modelforge.errors import ArtifactIntegrityError, NoChampionError
from modelforge.logic.predict import ChampionCache

NAME = "M-1#status"


def _artifact(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(200, 2))
    booster = xgb.train({"objective": "binary:logistic", "nthread": 1},
                        xgb.DMatrix(x, label=(x[:, 0] > 0).astype(float), feature_names=["a", "b"]), 3)
    return bytes(booster.save_raw(raw_format="ubj"))


class FakeRegistry:
    def __init__(self) -> None:
        self.pointer: dict[str, Any] | None = None
        self.versions: dict[str, dict[str, Any]] = {}
        self.pointer_reads = 0

    def add(self, version: str, uri: str, data: bytes) -> None:
        self.versions[version] = {"version": version, "indicator": "status", "artifact_uri": uri,
                                  "artifact_sha256": hashlib.sha256(data).hexdigest(),
                                  "feature_names": ["a", "b"], "metrics": {"threshold": 0.5}}

    def champion_pointer(self, name: str) -> dict[str, Any] | None:
        self.pointer_reads += 1
        return self.pointer

    def get_version(self, name: str, version: str) -> dict[str, Any] | None:
        return self.versions.get(version)


class FakeArtifacts:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def get_verified(self, uri: str, expected_sha256: str) -> bytes:
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
    registry.pointer = {"champion_version": "v1"}
    assert cache.champion(NAME).version == "v1"
    registry.pointer = {"champion_version": "v2"}
    clock.now = 29
    assert cache.champion(NAME).version == "v1"  # within the interval: no registry read
    assert registry.pointer_reads == 1
    clock.now = 30
    assert cache.champion(NAME).version == "v2"
    assert registry.pointer_reads == 2


def test_tampered_new_champion_is_refused_and_the_old_one_keeps_serving(setup: Any) -> None:
    cache, registry, artifacts, clock = setup
    registry.pointer = {"champion_version": "v1"}
    first = cache.champion(NAME)
    artifacts.objects["s3://b/v2"] = b"tampered"
    registry.pointer = {"champion_version": "v2"}
    clock.now = 31
    assert cache.champion(NAME) is first
    # Fixed artifact: picked up at the next interval.
    artifacts.objects["s3://b/v2"] = _artifact(2)
    clock.now = 62
    assert cache.champion(NAME).version == "v2"


def test_tampered_artifact_with_nothing_to_fall_back_on_is_an_error(setup: Any) -> None:
    cache, registry, artifacts, _ = setup
    artifacts.objects["s3://b/v1"] = b"tampered"
    registry.pointer = {"champion_version": "v1"}
    with pytest.raises(ArtifactIntegrityError):
        cache.champion(NAME)
