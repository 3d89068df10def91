"""The training pipeline's first stages on their own (plan, prepare, pool, split and sample): no model is trained."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from modelforge.domain import pipeline
from modelforge.domain.features import FeatureConfig
from modelforge.domain.indicators import HEALTH, STATUS
from modelforge.domain.labeling import LabelingConfig
from modelforge.domain.pipeline import PipelineConfig
from modelforge.domain.splitting import TimeSplit
from modelforge.domain.telemetry import ValidationConfig
from modelforge.errors import InsufficientDataError

CONFIG = PipelineConfig(labeling=LabelingConfig(window_minutes=100, health_horizon_minutes=300),
                        features=FeatureConfig(windows_minutes=(50,), statistics=("mean",), trend_window_minutes=None),
                        validation=ValidationConfig(min_rows=50), test_fraction=0.25)


def machine(cycles: int, start_day: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2020-01-01", tz="UTC") + pd.Timedelta(days=start_day)
    return pd.DataFrame({"timestamp": start + pd.to_timedelta(np.arange(cycles) * 10, unit="min"),
                         "temperature": np.linspace(0, 1, cycles) + rng.normal(0, 0.1, cycles)})


@pytest.fixture(scope="module")
def fleet() -> tuple[dict[str, pd.DataFrame], dict[str, np.ndarray]]:
    frames = {f"E-{i}": machine(60 + 5 * i, start_day=i, seed=i) for i in range(4)}
    return frames, {name: np.array([frame["timestamp"].iloc[-1].value]) for name, frame in frames.items()}


def test_the_plan_resolves_the_holdout_the_indicator_and_the_failure_source(
    fleet: tuple[dict[str, pd.DataFrame], dict[str, np.ndarray]],
) -> None:
    frames, events = fleet
    plan, named = pipeline._resolve_plan(frames, machine_name="FLEET", indicator="health", config=CONFIG,
                                         events=events)
    assert (plan.fleet, plan.holdout, plan.source, plan.spec) == (True, "machines", "records", HEALTH)
    assert plan.purge_minutes == 300 and plan.machine_validation().min_rows == 2 and named == frames

    one, named = pipeline._resolve_plan(frames["E-0"], machine_name="M", indicator="status", config=CONFIG)
    assert (one.fleet, one.holdout, one.source, one.spec) == (False, "time", "rpm_drop", STATUS)
    assert one.purge_minutes == 100 and one.machine_validation() == CONFIG.validation and list(named) == ["M"]
    assert "the last 25% of the range" in one.event_wording(TimeSplit(
        train=np.arange(2), test=np.arange(2, 3), split_ns=0, purged_rows=0)).test_part

    with pytest.raises(InsufficientDataError, match="names no machine"):
        pipeline._resolve_plan({}, machine_name="FLEET", indicator="status", config=CONFIG)


def test_a_fleet_s_time_holdout_pools_one_timeline_and_samples_within_the_budget(
    fleet: tuple[dict[str, pd.DataFrame], dict[str, np.ndarray]],
) -> None:
    frames, events = fleet
    plan, named = pipeline._resolve_plan(frames, machine_name="FLEET", indicator="health",
                                           config=replace(CONFIG, holdout="time"), events=events)
    prepared = pipeline._prepare_machines(named, plan, events)
    assert prepared.machine_names == tuple(frames) and all(m.x is not None for m in prepared.machines)

    pool, features = pipeline._pool(prepared, plan)
    assert all(m.x is None for m in prepared.machines)  # the pooled matrix owns the features now
    assert np.all(np.diff(pool.t) >= 0) and len(features.index) == len(pool.y) == len(pool.group)
    assert pool.onset_group.tolist() == [0, 1, 2, 3]

    held = pipeline._split(pool, features, plan)
    assert held.train.t.max() < held.split.split_ns <= held.test.t.min()
    assert np.array_equal(held.test.x, features.x[features.index[held.split.test]])

    fit = pipeline._sample(held.train, pool, replace(plan, config=replace(plan.config, memory_budget_mb=0.001)),
                           n_features=len(prepared.feature_names))
    assert fit.sample.sampled and len(fit.rows.y) == fit.sample.rows_after < len(held.train.y)


def test_one_machine_s_features_are_pooled_in_place() -> None:
    frame = machine(120, start_day=0, seed=9)
    events = {"M": np.array([frame["timestamp"].iloc[50].value, frame["timestamp"].iloc[-1].value])}
    plan, named = pipeline._resolve_plan(frame, machine_name="M", indicator="status", config=CONFIG, events=events)
    prepared = pipeline._prepare_machines(named, plan, events)
    matrix = prepared.machines[0].x
    pool, features = pipeline._pool(prepared, plan)
    assert features.x is matrix and np.array_equal(features.index, prepared.machines[0].usable)
    assert pool.group.tolist() == [0] * len(pool.y)
