"""Recorded failure events, fleet models, and the feature recipe: the domain pieces, with no mocks."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from modelforge.domain.features import FeatureConfig, build_features, config_from_names, feature_names
from modelforge.domain.labeling import LabelingConfig, label_failures, recorded_episodes
from modelforge.domain.pipeline import PipelineConfig, train_model
from modelforge.domain.search import SearchConfig
from modelforge.domain.splitting import group_validation_split, machine_split
from modelforge.domain.telemetry import ValidationConfig, clean_telemetry
from modelforge.errors import InsufficientDataError, NoFailureEventsError, NotEnoughEventsError, TelemetrySchemaError

MINUTE = pd.Timedelta(minutes=1)
CYCLE = 10  # minutes between two cycles of the synthetic run-to-failure machines


def run_to_failure(machine: int, cycles: int, seed: int) -> pd.DataFrame:
    """A machine that wears out linearly until it fails at its last cycle, seen through two noisy sensors."""
    rng = np.random.default_rng(seed)
    wear = np.linspace(0, 1, cycles) ** 2
    start = pd.Timestamp("2020-01-01", tz="UTC")
    return pd.DataFrame({
        "timestamp": start + pd.to_timedelta(np.arange(cycles) * CYCLE, unit="min"),
        "temperature": 500 + 30 * wear + rng.normal(0, 1.5, cycles),
        "pressure": 40 - 8 * wear + rng.normal(0, 0.5, cycles),
        "cycle": np.arange(1, cycles + 1),
    })


@pytest.fixture(scope="module")
def fleet() -> tuple[dict[str, pd.DataFrame], dict[str, np.ndarray]]:
    frames = {f"ENGINE-{i:02d}": run_to_failure(i, 150 + 11 * i, seed=i) for i in range(12)}
    events = {name: np.array([frame["timestamp"].iloc[-1].value]) for name, frame in frames.items()}
    return frames, events


def fleet_config(**changes: object) -> PipelineConfig:
    config = PipelineConfig(
        labeling=LabelingConfig(window_minutes=30 * CYCLE, health_horizon_minutes=100 * CYCLE),
        features=FeatureConfig(windows_minutes=(5 * CYCLE, 20 * CYCLE), statistics=("mean", "slope"),
                               trend_window_minutes=None),
        search=SearchConfig(budget=2, max_rounds=120, nthread=1, min_precision=0.8),
        validation=ValidationConfig(min_rows=500),
    )
    return replace(config, **changes)  # type: ignore[arg-type]


# ---------------------------------------------------------------- features


def test_the_default_recipe_keeps_the_names_stored_models_were_trained_with() -> None:
    sensors = ["a", "b"]
    legacy = (sensors + [f"{s}__mean_15min" for s in sensors] + [f"{s}__std_15min" for s in sensors]
              + [f"{s}__mean_60min" for s in sensors] + [f"{s}__std_60min" for s in sensors]
              + [f"{s}__trend_60min" for s in sensors])
    assert feature_names(sensors) == legacy


@pytest.mark.parametrize("config", [
    FeatureConfig(),
    FeatureConfig(windows_minutes=(50, 100, 300), statistics=("mean", "std", "slope"), trend_window_minutes=None),
    FeatureConfig(windows_minutes=(7,), statistics=("min", "max"), trend_window_minutes=30),
])
def test_a_model_s_feature_names_are_its_recipe(config: FeatureConfig) -> None:
    names = feature_names(["s2", "cycle", "Motor_Current_A"], config)
    assert config_from_names(names) == (("s2", "cycle", "Motor_Current_A"), config)


def test_names_not_made_by_the_recipe_are_refused() -> None:
    with pytest.raises(ValueError, match="not '<sensor>__<statistic>_<N>min'"):
        config_from_names(["a", "a__median_15min"])


def test_the_rolling_slope_is_the_least_squares_slope_over_the_past_window() -> None:
    rng = np.random.default_rng(3)
    minutes = np.cumsum(rng.integers(1, 4, 60))  # irregular sampling
    frame = pd.DataFrame({"timestamp": pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(minutes, "min"),
                          "x": rng.normal(size=60).cumsum()})
    config = FeatureConfig(windows_minutes=(20,), statistics=("slope",), trend_window_minutes=None)
    matrix, names = build_features(frame, ["x"], config)
    slope = matrix[:, names.index("x__slope_20min")]
    for row in (10, 35, 59):
        inside = (minutes > minutes[row] - 20) & (minutes <= minutes[row])
        expected = np.polyfit(minutes[inside], frame["x"].to_numpy()[inside], 1)[0]
        assert slope[row] == pytest.approx(expected, rel=1e-3, abs=1e-4)
    assert np.isnan(slope[0])  # one reading has no slope


# ---------------------------------------------------------------- recorded failure events


def test_recorded_failures_label_the_window_before_them_and_need_no_rpm_column() -> None:
    frame = run_to_failure(0, 100, seed=0)
    clean = clean_telemetry(frame, machine_name="E", require_rpm_variation=False,
                            config=ValidationConfig(min_rows=10))
    assert "Eng_RPM_variation_percentage" not in clean.sensor_columns
    failure = frame["timestamp"].iloc[-1].value
    labels = label_failures(clean.frame, LabelingConfig(window_minutes=30 * CYCLE), np.array([failure]))
    assert labels.counts()["failure_events"] == 1
    assert np.nansum(labels.label) == 30  # the 30 cycles before the failure
    assert np.isnan(labels.label[-1])  # the failure itself is neither normal nor a warning
    assert (labels.label[:-31] == 0).all()


def test_without_recorded_events_the_seed_rule_still_requires_the_rpm_column() -> None:
    with pytest.raises(TelemetrySchemaError, match="Eng_RPM_variation_percentage"):
        clean_telemetry(run_to_failure(0, 100, seed=0), machine_name="E", config=ValidationConfig(min_rows=10))


def test_recorded_episodes_are_distinct_onsets_and_one_before_the_data_is_left_censored() -> None:
    t = np.arange(10, dtype=np.int64) * 60 * 10**9
    episodes = recorded_episodes(t, np.array([t[5], t[5], -1]), LabelingConfig(window_minutes=2))
    assert list(episodes.onsets_ns) == [-1, t[5]]
    assert list(episodes.left_censored) == [True, False]
    assert episodes.usable == 1


# ---------------------------------------------------------------- splits


def test_whole_machines_are_held_out_and_both_sides_keep_failures() -> None:
    group = np.repeat(np.arange(10), 5)
    has_event = np.isin(group, [0, 1, 2, 3])  # four machines with a failure, six without
    split = machine_split(group, has_event, test_fraction=0.25, seed=0, t=np.arange(50))
    test_machines, train_machines = set(group[split.test]), set(group[split.train])
    assert not test_machines & train_machines
    assert test_machines & {0, 1, 2, 3} and train_machines & {0, 1, 2, 3}
    again = machine_split(group, has_event, test_fraction=0.25, seed=0, t=np.arange(50))  # seeded
    assert np.array_equal(split.test, again.test)


def test_a_fleet_with_one_failing_machine_cannot_be_held_out_by_machine() -> None:
    group = np.repeat(np.arange(4), 3)
    with pytest.raises(InsufficientDataError, match="at least two machines"):
        machine_split(group, group == 0, test_fraction=0.25, seed=0, t=np.arange(12))


def test_validation_by_machines_never_splits_a_machine() -> None:
    group = np.repeat(np.arange(8), 4)
    events = (group % 2 == 0).astype(float)
    fit, val = group_validation_split(group, events, fraction=0.25, seed=0)
    assert not set(group[fit]) & set(group[val])
    assert events[fit].sum() > 0 and events[val].sum() > 0
    with pytest.raises(NotEnoughEventsError):
        group_validation_split(group, (group == 0).astype(float), fraction=0.25, seed=0)


# ---------------------------------------------------------------- fleet models


@pytest.mark.parametrize("indicator", ["status", "health"])
def test_a_fleet_model_learns_from_pooled_machines_and_is_tested_on_machines_it_never_saw(
    fleet: tuple[dict[str, pd.DataFrame], dict[str, np.ndarray]], indicator: str,
) -> None:
    frames, events = fleet
    trained = train_model(frames, machine_name="FLEET", indicator=indicator, config=fleet_config(), events=events)

    data = trained.data
    assert data["holdout"] == "machines" and data["failure_events_source"] == "records"
    assert data["machines"] == 12 and len(data["machines_test"]) >= 2
    assert data["failure_events"] == 12
    assert data["failure_events_test"] == len(data["machines_test"])
    assert trained.lineage["machine_names"] == sorted(frames)
    assert trained.machine_names == tuple(frames)
    assert trained.metrics["events_total"] == len(data["machines_test"])
    if indicator == "status":
        assert trained.metrics["recall"] >= 0.7 and trained.metrics["pr_auc"] > trained.metrics["baseline_pr_auc"]
    else:
        assert trained.metrics["rmse"] < trained.metrics["baseline_rmse"]
    # The held-out rows belong to the held-out machines only, and the report's timeline shows one of them.
    held_out = {trained.machine_names[i] for i in np.unique(trained.evaluation.machine)}
    assert held_out == set(data["machines_test"])
    view = trained.evaluation.timeline_view()
    assert view.machine_names[0] in held_out and np.all(np.diff(view.timestamps_ns) > 0)


def test_a_fleet_can_also_be_tested_on_its_final_period(
    fleet: tuple[dict[str, pd.DataFrame], dict[str, np.ndarray]],
) -> None:
    frames, _ = fleet
    # Staggered machines, so that failures fall on both sides of one cut in time.
    shifted = {name: frame.assign(timestamp=frame["timestamp"] + pd.Timedelta(days=3 * i))
               for i, (name, frame) in enumerate(frames.items())}
    events = {name: np.array([frame["timestamp"].iloc[-1].value]) for name, frame in shifted.items()}
    trained = train_model(shifted, machine_name="FLEET", indicator="health", events=events,
                          config=fleet_config(holdout="time"))
    assert trained.data["holdout"] == "time"
    split = pd.Timestamp(trained.data["split_time"]).value
    assert trained.evaluation.timestamps_ns.min() >= split  # every machine's future is after the cut


def test_a_fleet_needs_the_same_sensors_on_every_machine(
    fleet: tuple[dict[str, pd.DataFrame], dict[str, np.ndarray]],
) -> None:
    frames, events = fleet
    odd = dict(frames)
    odd["ENGINE-03"] = frames["ENGINE-03"].drop(columns=["pressure"])
    with pytest.raises(TelemetrySchemaError, match="'ENGINE-03' differs") as raised:
        train_model(odd, machine_name="FLEET", indicator="status", config=fleet_config(), events=events)
    assert "missing: pressure" in str(raised.value)


def test_a_fleet_without_recorded_failures_names_the_dataset(
    fleet: tuple[dict[str, pd.DataFrame], dict[str, np.ndarray]],
) -> None:
    frames, _ = fleet
    with pytest.raises(NoFailureEventsError, match="failure-events dataset records no failure"):
        train_model(frames, machine_name="FLEET", indicator="status", config=fleet_config(),
                    events={name: np.array([], dtype=np.int64) for name in frames})


def test_a_fleet_may_hold_short_machines_but_needs_enough_rows_in_all(
    fleet: tuple[dict[str, pd.DataFrame], dict[str, np.ndarray]],
) -> None:
    frames, events = fleet
    config = fleet_config(validation=ValidationConfig(min_rows=100_000))
    with pytest.raises(InsufficientDataError, match=r"fleet .FLEET. has \d+ valid rows"):
        train_model(frames, machine_name="FLEET", indicator="status", config=config, events=events)


def test_sensors_that_never_change_are_dropped_and_recorded(
    fleet: tuple[dict[str, pd.DataFrame], dict[str, np.ndarray]],
) -> None:
    frames, events = fleet
    with_constant = {name: frame.assign(setting3=100.0, empty=np.nan) for name, frame in frames.items()}
    trained = train_model(with_constant, machine_name="FLEET", indicator="status", config=fleet_config(),
                          events=events)
    assert trained.data["sensors_constant_dropped"] == ["setting3", "empty"]
    assert not [name for name in trained.feature_names if name.startswith(("setting3", "empty"))]
    assert "temperature__slope_200min" in trained.feature_names


def test_a_fleet_report_says_which_machine_its_timelines_show(
        fleet: tuple[dict[str, pd.DataFrame], dict[str, np.ndarray]]) -> None:
    from modelforge.domain.report import render_report

    frames, events = fleet
    trained = train_model(frames, machine_name="FLEET", indicator="status", config=fleet_config(), events=events)
    shown = trained.evaluation.timeline_view().machine_names[0]
    held_out = len(np.unique(trained.evaluation.machine))
    assert f"(machine {shown}, the held-out machine with the most rows: one of {held_out};" in render_report(trained)
