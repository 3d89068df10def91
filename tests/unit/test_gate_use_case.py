"""The gate's use case (logic.gate) against in-memory fakes and small real models: it scores the challenger and
the champion on the challenger's holdout with domain.scoring, and only orchestrates the registry around it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from modelforge.domain.gate import GateConfig
from modelforge.domain.scoring import holdout_parquet
from modelforge.errors import ArtifactIntegrityError, PromotionConflictError
from modelforge.jobs import Indicator, Job, JobStatus
from modelforge.logic.gate import GateDependencies, GateTask, gate_challenger
from modelforge.registry import ModelName, ModelVersion, PromotionResult

NOW = datetime(2026, 1, 1, tzinfo=UTC)
NAME = ModelName("M-1", Indicator.STATUS)
CONFIG = GateConfig(min_recall=0.5, min_precision=0.2, tolerance=0.02, rmse_tolerance=0.05)
JOB = Job(process_id="p-1", indicator=Indicator.STATUS, machine_name="M-1", status=JobStatus.RUNNING,
          created_at=NOW, updated_at=NOW)


def _booster(signal: int, names: list[str]) -> bytes:
    """A model that learned the label from feature ``signal`` (the label is ``a > 0.5``)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, len(names))).astype(np.float32)
    booster = xgb.train({"objective": "binary:logistic", "nthread": 1, "max_depth": 2},
                        xgb.DMatrix(x, label=(x[:, signal] > 0.5).astype(float), feature_names=names), 10)
    return bytes(booster.save_raw(raw_format="ubj"))


def _holdout() -> bytes:
    x = np.random.default_rng(1).normal(size=(300, 2)).astype(np.float32)
    timestamps = pd.date_range("2025-01-01", periods=300, freq="min", tz="UTC").as_unit("ns").asi8
    return holdout_parquet(x, (x[:, 0] > 0.5).astype(float), timestamps, ["a", "b"])


@dataclass
class Fakes:
    blobs: dict[str, bytes] = field(default_factory=dict)
    versions: dict[str, ModelVersion] = field(default_factory=dict)
    champion_version: str | None = None
    conflicts: int = 0  # promotions to refuse first, as if another promotion had won
    decisions: list[tuple[str, str, str]] = field(default_factory=list)

    def add(self, version: str, model: bytes, names: list[str], threshold: float | None = 0.5) -> None:
        self.blobs[f"s3://m/{version}.ubj"] = model
        self.blobs[f"s3://m/{version}.holdout.parquet"] = _holdout()
        self.versions[version] = ModelVersion(
            model_name=NAME, version=version, machine_name="M-1", indicator=Indicator.STATUS,
            artifact_uri=f"s3://m/{version}.ubj", artifact_sha256=hashlib.sha256(model).hexdigest(),
            holdout_uri=f"s3://m/{version}.holdout.parquet",
            holdout_sha256=hashlib.sha256(self.blobs[f"s3://m/{version}.holdout.parquet"]).hexdigest(),
            feature_names=names, params={"threshold": threshold})

    # the registry
    def get(self, process_id: str) -> Job:
        return JOB

    def get_version(self, name: ModelName, version: str) -> ModelVersion | None:
        return self.versions.get(version)

    def champion(self, name: ModelName) -> ModelVersion | None:
        return self.versions[self.champion_version] if self.champion_version else None

    def promote(self, name: ModelName, version: str, *, reason: str, by: str, now: datetime) -> PromotionResult:
        if self.conflicts:
            self.conflicts -= 1
            raise PromotionConflictError("another promotion won")
        previous, self.champion_version = self.champion_version, version
        self.decisions.append(("promoted", version, by))
        return PromotionResult(champion_version=version, previous_version=previous, revision=1)

    def reject(self, name: ModelName, version: str, reason: str, by: str, now: datetime) -> None:
        self.decisions.append(("rejected", version, by))

    # the artifacts
    def get_verified(self, uri: str, expected_sha256: str, version_id: str | None = None) -> bytes:
        if hashlib.sha256(self.blobs[uri]).hexdigest() != expected_sha256:
            raise ArtifactIntegrityError(f"{uri}: sha256 mismatch")
        return self.blobs[uri]


def _gate(fakes: Fakes, version: str) -> Any:
    deps = GateDependencies(jobs=fakes, registry=fakes, artifacts=fakes)
    return gate_challenger(GateTask(process_id="p-1", model_id=version), deps, CONFIG, now=lambda: NOW)


def test_the_first_model_that_meets_the_floors_is_promoted() -> None:
    fakes = Fakes()
    fakes.add("v1", _booster(0, ["a", "b"]), ["a", "b"])
    outcome = _gate(fakes, "v1")
    assert outcome.decision == "promoted" and "first model" in outcome.reason
    assert fakes.decisions == [("promoted", "v1", "gate:p-1")]


def test_a_challenger_worse_than_the_champion_on_the_same_holdout_is_rejected() -> None:
    fakes = Fakes()
    fakes.add("v1", _booster(0, ["a", "b"]), ["a", "b"])
    fakes.champion_version = "v1"
    # Learned from the wrong feature, and a threshold of 0.0 (kept, not taken for "none"): flags every row.
    fakes.add("v2", _booster(1, ["a", "b"]), ["a", "b"], threshold=0.0)
    outcome = _gate(fakes, "v2")
    assert outcome.decision == "rejected" and "champion" in outcome.reason
    assert fakes.decisions == [("rejected", "v2", "gate:p-1")] and fakes.champion_version == "v1"


def test_a_champion_with_other_features_leaves_the_challenger_to_the_floors() -> None:
    fakes = Fakes()
    fakes.add("v1", _booster(0, ["a", "c"]), ["a", "c"])  # reads "c", which the new holdout lacks
    fakes.champion_version = "v1"
    fakes.add("v2", _booster(0, ["a", "b"]), ["a", "b"])
    assert _gate(fakes, "v2").decision == "promoted" and fakes.champion_version == "v2"


def test_a_lost_promotion_race_is_judged_again_and_a_tampered_challenger_is_refused() -> None:
    fakes = Fakes(conflicts=1)
    fakes.add("v1", _booster(0, ["a", "b"]), ["a", "b"])
    assert _gate(fakes, "v1").decision == "promoted"
    fakes.add("v2", _booster(0, ["a", "b"]), ["a", "b"])
    fakes.blobs["s3://m/v2.ubj"] = b"tampered"
    with pytest.raises(ArtifactIntegrityError):
        _gate(fakes, "v2")
    assert fakes.champion_version == "v1"
