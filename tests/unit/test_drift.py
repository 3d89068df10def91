"""Drift checks: the domain verdict on DataFrames (no mocks), and the one-model check (DriftFunction's, the
retraining items') against fakes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from modelforge.domain.drift import DRIFT, MODERATE, STABLE, DriftConfig, check_drift, summarize_features
from modelforge.domain.features import FeatureConfig, build_features, feature_names
from modelforge.domain.profile import training_profile
from modelforge.errors import DriftCheckFailedError, DriftDataError
from modelforge.jobs import Indicator
from modelforge.logic.drift import DriftCheckRequest, DriftDependencies, DriftPolicy, retrain_request, run_drift_check
from modelforge.registry import ModelName, ModelVersion
from modelforge.schemas import MachineSummary

NOW = datetime(2025, 3, 1, tzinfo=UTC)
RECIPE = FeatureConfig(windows_minutes=(30,), statistics=("mean",), trend_window_minutes=None)
NAMES = feature_names(["temperature", "pressure"], RECIPE)


def telemetry(days: float, *, seed: int, temperature_shift: float = 0.0, start: str = "2025-02-01") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = int(days * 1440)
    return pd.DataFrame({
        "timestamp": pd.date_range(start, periods=n, freq="min", tz="UTC"),
        "temperature": 60 + rng.normal(0, 2, n) + temperature_shift,
        "pressure": 5 + rng.normal(0, 0.3, n),
    })


def profile_of(frames: list[pd.DataFrame]) -> dict[str, Any]:
    x = np.concatenate([build_features(f, ["temperature", "pressure"], RECIPE)[0] for f in frames])
    return training_profile(x, NAMES)


def test_data_like_the_training_data_is_not_drift() -> None:
    profile = profile_of([telemetry(3, seed=1)])
    same = check_drift({"M": telemetry(3, seed=1)}, NAMES, profile, threshold=0.25)
    assert same["status"] == STABLE and same["drift_share"] == 0.0 and same["method"] == "two_sample"
    assert {f["test"] for f in same["features"]} == {"wasserstein"}  # 4,320 training rows: over 1,000
    # New draws of the same process, a week against a week. The raw readings stay far below the normed
    # Wasserstein threshold (0.1); a 30-minute rolling mean carries about 1/30 of the rows' independent
    # information, so its distance sits near the threshold on noise alone: hence a share, not any feature.
    profile = profile_of([telemetry(7, seed=1)])
    verdict = check_drift({"M": telemetry(7, seed=2)}, NAMES, profile, threshold=0.25)
    assert verdict["status"] != DRIFT and verdict["max_psi"] < 0.15
    assert verdict["rows"] == 7 * 1440 and verdict["features_checked"] == len(NAMES)
    raw = {f["feature"]: f for f in verdict["features"] if "__" not in f["feature"]}
    assert all(not f["drifted"] and f["score"] < 0.05 for f in raw.values())
    assert verdict["max_missing_change"] == 0.0 and verdict["max_out_of_range_share"] < 0.01


def test_a_small_training_set_is_compared_by_the_ks_test() -> None:
    # The raw readings only (independent rows): the K-S test assumes independent draws.
    recipe = FeatureConfig(windows_minutes=(5,), statistics=(), trend_window_minutes=None)
    names = feature_names(["temperature", "pressure"], recipe)
    x = build_features(telemetry(0.5, seed=1), ["temperature", "pressure"], recipe)[0]  # 720 rows
    profile = training_profile(x, names)
    assert profile["features"]["temperature"]["reference"]["rows"] == 720
    assert len(profile["features"]["temperature"]["reference"]["values"]) == 720  # every value, exactly
    same = check_drift({"M": telemetry(0.5, seed=2)}, names, profile, threshold=0.25)
    shifted = check_drift({"M": telemetry(0.5, seed=2, temperature_shift=2)}, names, profile, threshold=0.25)
    assert {f["test"] for f in same["features"]} == {"ks"}
    raw = {f["feature"]: f for f in same["features"]}["temperature"]
    assert not raw["drifted"] and raw["score"] > 0.05  # a p-value
    assert shifted["features_drifted"] == 1 and shifted["drift_share"] == 0.5 and shifted["status"] == DRIFT
    assert [f["feature"] for f in shifted["features"] if f["drifted"]] == ["temperature"]


def test_a_profile_from_before_reference_samples_is_judged_by_psi_alone_and_says_so() -> None:
    profile = profile_of([telemetry(3, seed=1)])
    old = {**profile, "profile_version": 1,
           "features": {name: {k: v for k, v in entry.items() if k != "reference"}
                        for name, entry in profile["features"].items()}}
    verdict = check_drift({"M": telemetry(2, seed=2, temperature_shift=4)}, NAMES, old, threshold=0.25)
    assert verdict["status"] == DRIFT and verdict["method"] == "psi_only" and verdict["drift_share"] is None
    assert "PSI only" in verdict["message"] and verdict["features_tested"] == 0
    assert verdict["max_psi"] > 0.25  # as before: PSI over the threshold is drift


def test_missing_values_and_readings_out_of_the_training_range_are_reported() -> None:
    profile = profile_of([telemetry(3, seed=1)])
    recent = telemetry(2, seed=2)
    recent.loc[recent.index[::2], "pressure"] = np.nan  # half the pressure readings missing
    recent.loc[recent.index[:144], "temperature"] = 500.0  # a tenth of the temperatures far out of range
    verdict = check_drift({"M": recent}, NAMES, profile, threshold=0.25)
    by_name = {f["feature"]: f for f in verdict["features"]}
    assert by_name["pressure"]["missing_change"] == pytest.approx(0.5, abs=0.01)
    assert by_name["temperature"]["out_of_range_share"] == pytest.approx(0.05, abs=0.01)
    assert verdict["max_missing_change"] == by_name["pressure"]["missing_change"]


def test_a_shifted_sensor_is_drift_and_is_named_first() -> None:
    profile = profile_of([telemetry(3, seed=1)])
    verdict = check_drift({"M": telemetry(2, seed=2, temperature_shift=4)}, NAMES, profile, threshold=0.25)
    assert verdict["status"] == DRIFT
    assert verdict["top_features"][0]["feature"].startswith("temperature")
    assert all(not f["feature"].startswith("pressure") for f in verdict["top_features"][:2])


def _feature(name: str, *, psi: float, drifted: bool) -> dict[str, Any]:
    return {"feature": name, "psi": psi, "drifted": drifted, "missing_change": 0.0, "out_of_range_share": 0.0}


@pytest.mark.parametrize(("features", "status"), [
    # one feature of ten that both measures call drifted, PSI over its threshold: drift on its own
    ([_feature("s4", psi=3.0, drifted=True)] + [_feature(f"f{i}", psi=0.01, drifted=False) for i in range(9)],
     DRIFT),
    # the test says drifted but PSI is moderate (autocorrelated rolling statistics on noise): not on its own
    ([_feature("s4__mean_30m", psi=0.12, drifted=True)] + [_feature(f"f{i}", psi=0.01, drifted=False)
                                                           for i in range(9)], MODERATE),
    # PSI high but the test says the distributions agree: moderate, never drift
    ([_feature("s4", psi=0.4, drifted=False)] + [_feature(f"f{i}", psi=0.01, drifted=False) for i in range(9)],
     MODERATE),
    # half the features drifted, none of them severely: the share decides
    ([_feature(f"d{i}", psi=0.12, drifted=True) for i in range(5)] + [_feature(f"f{i}", psi=0.01, drifted=False)
                                                                     for i in range(5)], DRIFT),
    ([_feature(f"f{i}", psi=0.01, drifted=False) for i in range(10)], STABLE),
])
def test_the_verdict_is_the_drift_share_or_one_feature_both_measures_call_drifted(
        features: list[dict[str, Any]], status: str) -> None:
    verdict = summarize_features(features, config=DriftConfig(psi_threshold=0.25, drift_share=0.5), rows=100)
    assert verdict["status"] == status, verdict["drift_share"]


def test_a_fleet_is_featurized_machine_by_machine() -> None:
    profile = profile_of([telemetry(7, seed=1), telemetry(7, seed=3)])
    # The same period on two machines: stacked, not interleaved, so their rolling windows stay apart.
    verdict = check_drift({"A": telemetry(7, seed=4), "B": telemetry(7, seed=5)}, NAMES, profile, threshold=0.25)
    assert verdict["status"] != DRIFT and verdict["rows"] == 2 * 7 * 1440


def test_recent_data_without_a_model_sensor_is_refused_by_name() -> None:
    with pytest.raises(DriftDataError, match=r"lacks the model.s sensor\(s\) pressure"):
        check_drift({"M": telemetry(1, seed=2).drop(columns=["pressure"])}, NAMES, profile_of([telemetry(1, seed=1)]),
                    threshold=0.25)
    with pytest.raises(DriftDataError, match="no recent telemetry"):
        check_drift({"M": pd.DataFrame()}, NAMES, profile_of([telemetry(1, seed=1)]), threshold=0.25)


# ---------------------------------------------------------------- the scheduled use case


class FakeRegistry:
    def __init__(self, *champions: ModelVersion) -> None:
        self.champions = {champion.model_name: champion for champion in champions}
        self.recorded: list[tuple[str, str, dict[str, Any]]] = []

    def champion(self, name: ModelName) -> ModelVersion | None:
        return self.champions.get(name)

    def record_drift(self, name: ModelName, version: str, check: dict[str, Any]) -> None:
        self.recorded.append((name.key, version, check))


class FakeArtifacts:
    def __init__(self, blobs: dict[str, bytes]) -> None:
        self.blobs = blobs

    def get_verified(self, uri: str, expected_sha256: str, version_id: str | None = None) -> bytes:
        if expected_sha256 != "sha-" + uri:
            raise ValueError(f"sha256 of {uri} does not match the registry")
        return self.blobs[uri]


class FakeTelemetry:
    def __init__(self, frames: dict[str, pd.DataFrame]) -> None:
        self.frames = frames
        self.reads: list[tuple[str, Any, Any]] = []

    def read(self, machine_name: str, start: Any, end: Any) -> pd.DataFrame:
        self.reads.append((machine_name, start, end))
        return self.frames.get(machine_name, pd.DataFrame())


class FakeCatalog:
    def __init__(self, frames: dict[str, pd.DataFrame]) -> None:
        self.frames = frames

    def describe(self, machine_name: str) -> MachineSummary | None:
        frame = self.frames.get(machine_name)
        if frame is None:
            return None
        return MachineSummary(machine_name=machine_name, first_timestamp=frame["timestamp"].iloc[0],
                              last_timestamp=frame["timestamp"].iloc[-1], rows=len(frame), columns=list(frame))


def champion(name: str, machines: list[str], **fields: Any) -> ModelVersion:
    return ModelVersion.model_validate({
        "model_name": f"{name}#status", "machine_name": name, "indicator": "status", "version": "v1",
        "machine_names": machines, "feature_names": NAMES, "profile_uri": f"s3://m/{name}.profile.json",
        "profile_sha256": f"sha-s3://m/{name}.profile.json", "artifact_uri": f"s3://m/{name}.ubj",
        "artifact_sha256": f"sha-s3://m/{name}.ubj", **fields})


def deps_for(items: list[ModelVersion], frames: dict[str, pd.DataFrame],
             profile: dict[str, Any]) -> tuple[DriftDependencies, FakeRegistry, FakeTelemetry]:
    registry = FakeRegistry(*items)
    telemetry_store = FakeTelemetry(frames)
    blobs = {item.profile_artifact().uri: json.dumps(profile).encode() for item in items}
    return (DriftDependencies(registry=registry, artifacts=FakeArtifacts(blobs), telemetry=telemetry_store,
                              catalog=FakeCatalog(frames)), registry, telemetry_store)


def one(name: str) -> DriftCheckRequest:
    return DriftCheckRequest(machine_name=name, indicator=Indicator.STATUS)


def test_a_drifted_fleet_champion_is_checked_on_all_its_machines_and_its_retrain_keeps_its_fields() -> None:
    profile = profile_of([telemetry(3, seed=1)])
    frames = {"P-1": telemetry(10, seed=2, temperature_shift=5), "P-2": telemetry(10, seed=3, temperature_shift=5)}
    options = {"label_window_minutes": 300, "holdout": "machines"}
    item = champion("PUMPS", ["P-1", "P-2"], failure_events="records", options=options)
    deps, registry, store = deps_for([item], frames, profile)

    result = run_drift_check(one("PUMPS"), deps, DriftPolicy(window_days=3), now=lambda: NOW)

    assert result.status == "drift"
    assert {m for m, _, _ in store.reads} == {"P-1", "P-2"}
    # The newest three days of data, ending on the last day with data.
    assert {(str(s), str(e)) for _, s, e in store.reads} == {("2025-02-08", "2025-02-10")}
    assert registry.recorded[0][:2] == ("PUMPS#status", "v1")
    assert registry.recorded[0][2]["status"] == "drift" and "retrain_process_id" not in registry.recorded[0][2]
    # What the retraining state machine submits for it (logic.retrain): the champion's own job again.
    request = retrain_request(item)
    assert (request.machine_name, request.machine_names) == ("PUMPS", ["P-1", "P-2"])
    assert request.failure_events.value == "records" and request.options is not None
    assert request.options.label_window_minutes == 300 and request.indicator is Indicator.STATUS


def test_a_drift_check_only_records_it_and_cannot_start_a_retrain() -> None:
    profile = profile_of([telemetry(3, seed=1)])
    frames = {"M-1": telemetry(3, seed=2, temperature_shift=5)}
    deps, registry, _ = deps_for([champion("M-1", ["M-1"])], frames, profile)
    result = run_drift_check(one("M-1"), deps, DriftPolicy(), now=lambda: NOW)
    assert result.status == "drift" and registry.recorded[0][2]["status"] == "drift"
    assert "submit_training" not in DriftDependencies.__dataclass_fields__  # only logic.retrain submits
    with pytest.raises(ValidationError, match="retrain"):  # the retired switch is refused by name
        DriftCheckRequest.model_validate({"machine_name": "M-1", "indicator": "status", "retrain": True})


def test_a_single_machine_retrain_is_not_a_fleet() -> None:
    request = retrain_request(champion("M-1", ["M-1"]))
    assert request.machine_name == "M-1" and request.machine_names is None


def test_a_champion_whose_machines_have_no_data_is_recorded_as_no_data() -> None:
    deps, registry, _ = deps_for([champion("GONE", ["G-1"])], {}, profile_of([telemetry(1, seed=1)]))
    result = run_drift_check(one("GONE"), deps, DriftPolicy(), now=lambda: NOW)
    assert result.status == "no_data" and "none of the model's machines has data" in (result.message or "")
    assert registry.recorded[0][2]["status"] == "no_data"


@pytest.mark.parametrize(("event", "field"), [
    ({"machine_name": "M-1"}, "indicator"), ({"indicator": "status"}, "machine_name"), ({"source": "schedule"},
                                                                                       "machine_name")])
def test_a_check_names_one_model_by_name_and_indicator(event: dict[str, Any], field: str) -> None:
    """The schedule's old every-champion event is refused: the retraining state machine covers the fleet."""
    with pytest.raises(ValidationError, match=field):
        DriftCheckRequest.model_validate(event)


def test_a_model_without_a_champion_is_a_lookup_error() -> None:
    deps, registry, _ = deps_for([], {}, {})
    with pytest.raises(LookupError, match="no champion"):
        run_drift_check(DriftCheckRequest(machine_name="M-1", indicator=Indicator.HEALTH), deps, DriftPolicy())
    assert registry.recorded == []


def test_a_champion_s_failure_is_recorded_on_it_and_raised_by_name() -> None:
    profile = profile_of([telemetry(3, seed=1)])
    frames = {"M-1": telemetry(3, seed=2), "M-2": telemetry(3, seed=3)}
    broken = champion("M-1", ["M-1"], profile_sha256="tampered")
    deps, registry, _ = deps_for([broken, champion("M-2", ["M-2"])], frames, profile)
    with pytest.raises(DriftCheckFailedError, match=r"M-1#status: ValueError: sha256 of s3://m/M-1\.profile\.json"):
        run_drift_check(one("M-1"), deps, DriftPolicy(), now=lambda: NOW)
    assert registry.recorded[0][2]["status"] == "error"
    assert "sha256 of s3://m/M-1.profile.json" in registry.recorded[0][2]["message"]
    assert run_drift_check(one("M-2"), deps, DriftPolicy(), now=lambda: NOW).status != "error"
    assert [name for name, _, _ in registry.recorded] == ["M-1#status", "M-2#status"]


def test_a_champion_registered_without_a_profile_is_recorded_as_an_error_by_name() -> None:
    frames = {"M-1": telemetry(3, seed=2)}
    old = champion("M-1", ["M-1"]).model_copy(update={"profile_uri": None, "profile_sha256": None})
    deps, registry, _ = deps_for([], frames, profile_of([telemetry(1, seed=1)]))
    registry.champions[old.model_name] = old
    with pytest.raises(DriftCheckFailedError, match="M-1/status v1 has no stored profile"):
        run_drift_check(one("M-1"), deps, DriftPolicy(), now=lambda: NOW)
    assert registry.recorded[-1][:2] == ("M-1#status", "v1") and registry.recorded[-1][2]["status"] == "error"


def pump(days: float, *, seed: int, failure_at_minute: int | None = None, down_minutes: int = 90) -> pd.DataFrame:
    """A pump's speed and temperature; at ``failure_at_minute`` its speed drops to 40 % for ``down_minutes``."""
    rng = np.random.default_rng(seed)
    n = int(days * 1440)
    variation = rng.normal(0, 1.0, n)
    if failure_at_minute is not None:
        variation[failure_at_minute:failure_at_minute + down_minutes] = -60.0
    return pd.DataFrame({
        "timestamp": pd.date_range("2025-02-01", periods=n, freq="min", tz="UTC"),
        "Eng_RPM": 1750 * (1 + variation / 100),
        "Eng_RPM_variation_percentage": variation,
        "temperature": 60 + rng.normal(0, 2, n),
    })


def test_a_failure_in_the_window_is_left_out_as_training_leaves_it_out() -> None:
    # Training learns from no row of a machine down or recovering (labeling's in_failure), so its profile has
    # none: a stopped pump's zero-ish speed, compared with it, would read as drift on every failure.
    sensors = ["Eng_RPM", "temperature"]
    names = feature_names(sensors, RECIPE)
    profile = training_profile(build_features(pump(7, seed=1), sensors, RECIPE)[0], names)
    recent = pump(7, seed=2, failure_at_minute=3 * 1440)
    verdict = check_drift({"M": recent}, names, profile, threshold=0.25)
    # Not drift (a 30-minute mean sits near its threshold on noise alone: see the first test of this module).
    assert verdict["status"] != DRIFT, [(f["feature"], f["score"]) for f in verdict["features"]]
    # The episode and the hour of recovery after it (LabelingConfig.post_failure_exclusion_minutes) are out.
    assert 7 * 1440 - 90 - 61 <= verdict["rows"] <= 7 * 1440 - 90
    assert verdict["max_out_of_range_share"] < 0.005
    # Telemetry with no way to tell a failure apart keeps every row, and then the failure is what drifted.
    blind = check_drift({"M": recent.drop(columns="Eng_RPM_variation_percentage")}, names, profile, threshold=0.25)
    assert blind["rows"] == 7 * 1440 and blind["max_out_of_range_share"] > 0.005
    assert blind["status"] == DRIFT
