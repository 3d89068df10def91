"""Features from the telemetry: the raw sensors plus backward-looking rolling statistics.

Every window looks only at the past (pandas time-based rolling, right-closed), so a row's features never use
readings that come after it. Windows are in time, not rows, because sampling is irregular and has gaps.
Features are computed on the whole cleaned series, downtime included, exactly as they would be on live data;
rows are excluded from training only afterwards. A fleet's machines are featurized one by one: no window
ever spans two machines.

Which statistics over which windows is a :class:`FeatureConfig` (per job: ``options.feature_windows_minutes``
and ``options.feature_statistics`` of ``POST /train``). Feature names say how each one was computed,
``<sensor>__<statistic>_<window>min``, so a stored model carries its own recipe and
:func:`config_from_names` rebuilds the same features at prediction time with nothing else stored.

Statistics, over each window
    ``mean``, ``std``, ``min``, ``max``: the rolling statistic of the sensor;
    ``slope``: the least-squares slope against time, per minute (the direction and speed of a drift);
    ``trend``: the current reading minus its rolling mean (a build-up shows as a growing deviation).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from modelforge.domain.feature_config import STATISTICS, FeatureConfig
from modelforge.domain.telemetry import TIMESTAMP
from modelforge.domain.units import MINUTE_NS


def feature_names(sensors: Sequence[str], config: FeatureConfig | None = None) -> list[str]:
    config = config or FeatureConfig()
    names = list(sensors)
    for window in config.windows_minutes:
        for statistic in config.statistics:
            names += [f"{s}__{statistic}_{window}min" for s in sensors]
    if config.trend_window_minutes is not None:
        names += [f"{s}__trend_{config.trend_window_minutes}min" for s in sensors]
    return names


def config_from_names(names: Sequence[str]) -> tuple[tuple[str, ...], FeatureConfig]:
    """The sensors and the recipe that :func:`feature_names` turned into ``names`` (raises ValueError when the
    names were not made by it)."""
    sensors = tuple(name for name in names if "__" not in name)
    windows: list[int] = []
    statistics: list[str] = []
    trend: int | None = None
    for name in names:
        if "__" not in name:
            continue
        _, derived = name.split("__", 1)
        statistic, _, window_text = derived.rpartition("_")
        if statistic not in STATISTICS or not window_text.endswith("min") or not window_text[:-3].isdigit():
            raise ValueError(f"feature {name!r} is not '<sensor>__<statistic>_<N>min'")
        window = int(window_text[:-3])
        if statistic == "trend":
            trend = window
            continue
        if window not in windows:
            windows.append(window)
        if statistic not in statistics:
            statistics.append(statistic)
    config = FeatureConfig(windows_minutes=tuple(windows) or (1,), statistics=tuple(statistics),
                           trend_window_minutes=trend)
    if feature_names(sensors, config) != list(names):
        raise ValueError("the feature names do not follow one FeatureConfig")
    return sensors, config


def build_features(frame: pd.DataFrame, sensors: Sequence[str],
                   config: FeatureConfig | None = None) -> tuple[np.ndarray, list[str]]:
    """``frame`` sorted by timestamp. Returns a float32 matrix (rows of ``frame``, columns ``feature_names``)."""
    config = config or FeatureConfig()
    sensors = list(sensors)
    names = feature_names(sensors, config)
    width = len(sensors)
    indexed = frame.set_index(TIMESTAMP)[sensors].astype("float64")
    raw = indexed.to_numpy()
    # Filled block by block, so only one float64 intermediate exists at a time.
    matrix = np.empty((len(frame), len(names)), dtype="float32")
    matrix[:, :width] = raw
    column = width
    minutes = None
    for window in config.windows_minutes:
        rolling = indexed.rolling(f"{window}min", min_periods=1)
        mean = None
        for statistic in config.statistics:
            if statistic == "mean":
                mean = rolling.mean().to_numpy()
                block = mean
            elif statistic == "slope":
                if minutes is None:
                    minutes = _minutes_since_start(indexed.index)
                block = _rolling_slope(indexed, minutes, window)
            else:
                block = getattr(rolling, statistic)().to_numpy()
            matrix[:, column:column + width] = block
            column += width
        if window == config.trend_window_minutes:
            mean = rolling.mean().to_numpy() if mean is None else mean
            matrix[:, len(names) - width:] = raw - mean
        del mean
    if config.trend_window_minutes is not None and config.trend_window_minutes not in config.windows_minutes:
        mean = indexed.rolling(f"{config.trend_window_minutes}min", min_periods=1).mean().to_numpy()
        matrix[:, len(names) - width:] = raw - mean
    return matrix, names


def _minutes_since_start(index: pd.Index) -> np.ndarray:
    ns = pd.DatetimeIndex(index).as_unit("ns").asi8
    return ((ns - ns[0]) / MINUTE_NS) if len(ns) else np.zeros(0)


def _rolling_slope(indexed: pd.DataFrame, minutes: np.ndarray, window: int) -> np.ndarray:
    """Least-squares slope of each sensor against time within the window: cov(t, x) / var(t), from rolling
    means, with ``t`` in minutes since the first row (small numbers, so the differences stay exact enough).
    A window holding a single reading has no slope (NaN: XGBoost's missing value)."""
    t = pd.Series(minutes, index=indexed.index)
    spec = f"{window}min"
    t_mean = t.rolling(spec, min_periods=1).mean().to_numpy()
    t_var = (t * t).rolling(spec, min_periods=1).mean().to_numpy() - t_mean**2
    x_mean = indexed.rolling(spec, min_periods=1).mean().to_numpy()
    tx_mean = indexed.mul(minutes, axis=0).rolling(spec, min_periods=1).mean().to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = (tx_mean - t_mean[:, None] * x_mean) / t_var[:, None]
    slope[~(t_var > 1e-9)] = np.nan
    return slope
