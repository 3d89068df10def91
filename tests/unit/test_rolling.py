"""The NumPy rolling engine (domain/rolling.py, used by domain/features.py) against pandas' time-window
rolling, the implementation it replaced, and against a direct two-pass computation of every window: on
irregular, gappy series with repeated timestamps, missing values, constant runs and drift, pooled over
several machines whose clocks overlap."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from modelforge.domain.features import FeatureConfig, _pandas_features, build_features, feature_matrix, timestamps_ns
from modelforge.domain.rolling import RollingColumns, time_windows
from modelforge.domain.units import MINUTE_NS

SENSORS = ["a", "b", "c"]
WINDOWS = (15, 60, 240)


def _machine(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    gaps = rng.choice([20, 60, 60, 60, 95, 600, 5400], size=rows)  # seconds: irregular, with long gaps
    gaps[rng.random(rows) < 0.03] = 0  # repeated timestamps
    stamps = pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(np.cumsum(gaps), unit="s")
    values = np.column_stack([
        80 + np.linspace(0, 40, rows) + rng.normal(0, 0.05, rows),  # a drift much larger than the noise
        rng.normal(0, 1, rows),  # centred on zero, as regime-normalized sensors are
        np.round(rng.normal(3, 0.4, rows)),  # quantized: many constant windows
    ])
    values[rows // 3:rows // 3 + 50, 0] = 7.25  # a stuck sensor
    values[rng.random((rows, 3)) < 0.04] = np.nan
    values[rows // 2:rows // 2 + 30, 1] = np.nan  # a stretch of missing readings
    frame = pd.DataFrame(values, columns=SENSORS)
    frame.insert(0, "timestamp", stamps)
    return frame


MACHINES = [_machine(900, 1), _machine(700, 2), _machine(400, 3)]


def _two_pass(values: np.ndarray, starts: np.ndarray) -> dict[str, np.ndarray]:
    """Each window's statistics computed from its own values (float64 two-pass: no running sums)."""
    out = {name: np.full(values.shape, np.nan) for name in ("count", "mean", "std")}
    for row, start in enumerate(starts):
        window = values[start:row + 1]
        for column in range(values.shape[1]):
            seen = window[:, column][~np.isnan(window[:, column])]
            out["count"][row, column] = len(seen)
            if len(seen):
                mean = seen.mean()
                out["mean"][row, column] = mean
                if len(seen) > 1:
                    out["std"][row, column] = np.sqrt(((seen - mean) ** 2).sum() / (len(seen) - 1))
    return out


@pytest.mark.parametrize("window", WINDOWS)
def test_each_statistic_is_pandas_rolling_and_the_exact_window_value(window: int) -> None:
    for frame in MACHINES:
        values = frame[SENSORS].to_numpy()
        windows = time_windows(timestamps_ns(frame["timestamp"]), window * MINUTE_NS)
        engine = RollingColumns(values.T)
        rolling = frame.set_index("timestamp")[SENSORS].rolling(f"{window}min", min_periods=1)
        exact = _two_pass(values, windows.starts)
        for statistic in ("count", "min", "max"):  # exact, as pandas' are
            np.testing.assert_array_equal(getattr(engine, statistic)(windows).T,
                                          getattr(rolling, statistic)().to_numpy(), err_msg=statistic)
        scale = float(np.nanmax(np.abs(values)))  # a mean near zero is compared on the data's scale
        for statistic in ("mean", "std"):
            ours, theirs = getattr(engine, statistic)(windows).T, getattr(rolling, statistic)().to_numpy()
            np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
            np.testing.assert_allclose(ours, exact[statistic], rtol=1e-9, atol=1e-12 * scale, err_msg=statistic)
            # pandas' online algorithm drifts from the exact value on long, drifting series: within 1e-9 of
            # pandas, or no farther from pandas than pandas is from the exact value.
            allowed = 1e-9 * np.abs(theirs) + 1e-12 * scale + np.abs(theirs - exact[statistic])
            assert np.all(np.nan_to_num(np.abs(ours - theirs)) <= np.nan_to_num(allowed)), statistic
        constant = np.nan_to_num(rolling.std().to_numpy(), nan=1.0) == 0
        assert constant.any()  # the stuck and quantized sensors: pandas answers these windows exactly
        np.testing.assert_array_equal(engine.std(windows).T[constant], 0.0)
        np.testing.assert_array_equal(engine.mean(windows).T[constant], rolling.mean().to_numpy()[constant])


def test_a_pooled_fleet_frame_is_featurized_as_its_machines_one_by_one() -> None:
    config = FeatureConfig(windows_minutes=WINDOWS, statistics=("mean", "std", "min", "max", "slope"),
                           trend_window_minutes=60)
    pooled = pd.concat(MACHINES, ignore_index=True)  # the machines' clocks overlap: not sorted as a whole
    starts = np.cumsum([0] + [len(f) for f in MACHINES[:-1]])
    matrix = feature_matrix(pooled[SENSORS].to_numpy(), timestamps_ns(pooled["timestamp"]), config, starts)
    one_by_one = np.vstack([_pandas_features(frame, SENSORS, config)[0] for frame in MACHINES])
    np.testing.assert_array_equal(np.isnan(matrix), np.isnan(one_by_one))
    np.testing.assert_allclose(matrix, one_by_one, rtol=1e-5, atol=1e-6)  # float32, pandas' own error above
    windows = time_windows(timestamps_ns(pooled["timestamp"]), 240 * MINUTE_NS, starts)
    machine = np.repeat(np.arange(len(MACHINES)), [len(f) for f in MACHINES])
    assert np.array_equal(machine[windows.starts], machine)  # no window reaches into the previous machine
    assert np.any(windows.starts[starts[1:]] == starts[1:])


def test_build_features_keeps_its_names_and_the_pandas_features() -> None:
    frame = MACHINES[0]
    ours, names = build_features(frame, SENSORS)
    theirs, pandas_names = _pandas_features(frame, SENSORS)
    assert names == pandas_names and ours.dtype == np.float32
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6)


def test_one_record_and_unsorted_times() -> None:
    one = MACHINES[0].iloc[:1]
    ours, _ = build_features(one, SENSORS)
    np.testing.assert_array_equal(ours, _pandas_features(one, SENSORS)[0])
    with pytest.raises(ValueError, match="monotonic"):
        build_features(MACHINES[0].iloc[::-1], SENSORS)
    with pytest.raises(ValueError, match="group starts"):
        time_windows(np.arange(5), 2, [1, 3])
