"""Features from the telemetry: the raw sensors plus backward-looking rolling statistics.

Every window looks only at the past (pandas' time-based rolling semantics, right-closed), so a row's features
never use readings that come after it. Windows are in time, not rows, because sampling is irregular and has
gaps. Features are computed on the whole cleaned series, downtime included, exactly as they would be on live
data; rows are excluded from training only afterwards. No window ever spans two machines
(:func:`feature_matrix` takes a pooled fleet frame's machine starts).

One engine for training, ``/predict``, drift and the gate: ``domain.rolling`` (NumPy) computes mean, std,
min, max and the trend's mean, tested against pandas' rolling (tests/unit/test_rolling.py, with
:func:`_pandas_features`, the implementation it replaced, as the oracle). The slope stays on pandas' rolling
means, machine by machine (:func:`_grouped_slope`): it is not a default statistic, and its cancellation-prone
formula would not reproduce pandas' numbers to 1e-9 from other sums.

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

import itertools
from collections.abc import Sequence

import numpy as np
import pandas as pd

from modelforge.domain.feature_config import STATISTICS, FeatureConfig
from modelforge.domain.rolling import RollingColumns, Windows, group_starts_of, time_windows
from modelforge.domain.telemetry import TIMESTAMP
from modelforge.domain.units import MINUTE_NS

CHUNK_ROWS = 4096  # rows featurized at a time (feature_matrix)


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
    # Column by column: selecting a frame's columns by a list costs more than the features of a short request.
    values = np.empty((len(frame), len(sensors)))
    for at, sensor in enumerate(sensors):
        values[:, at] = frame[sensor].to_numpy(dtype="float64")
    matrix = feature_matrix(values, timestamps_ns(frame[TIMESTAMP]), config)
    return matrix, feature_names(sensors, config)


def timestamps_ns(stamps: pd.Series | pd.Index) -> np.ndarray:
    """Nanoseconds since the epoch (int64), what the rolling windows are measured on."""
    return np.asarray(pd.DatetimeIndex(stamps).as_unit("ns").asi8)


def feature_matrix(values: np.ndarray, stamps_ns: np.ndarray, config: FeatureConfig,
                   group_starts: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
    """The features of ``values`` (rows x sensors, float64, in time order within each group) as the float32
    matrix :func:`feature_names` describes. ``group_starts``: the first row of each machine in a pooled frame
    (0 first); no window reaches back past its machine's first row. None: one machine."""
    width = values.shape[1]
    trend = config.trend_window_minutes
    blocks = [(w, s) for w in config.windows_minutes for s in config.statistics] + ([(trend, "trend")] if trend else [])
    windows = {w: time_windows(stamps_ns, w * MINUTE_NS, group_starts) for w in {w for w, _ in blocks}}
    matrix = np.empty((len(values), width * (1 + len(blocks))), dtype="float32")
    matrix[:, :width] = values
    for column, (window, statistic) in enumerate(blocks, start=1):
        if statistic == "slope":
            matrix[:, column * width:(column + 1) * width] = _grouped_slope(values, stamps_ns, window, group_starts)
    # Rows a chunk at a time, each with the history its windows reach back to: a whole series' temporaries
    # cost more in fresh memory than in arithmetic (measured: 3 to 5 times pandas' time at 10^5 rows x 14
    # sensors unchunked), a chunk's stay in the processor's cache.
    columns = values.T
    for first in range(0, len(values) if windows else 0, CHUNK_ROWS):
        last = min(first + CHUNK_ROWS, len(values))
        history = min(int(w.starts[first]) for w in windows.values())
        local = {w: Windows(spans.starts[history:last] - history) for w, spans in windows.items()}
        longest = max(int((np.arange(1, last - history + 1) - w.starts).max()) for w in local.values())
        rolling = RollingColumns(columns[:, history:last], longest)
        chunk = np.empty((len(blocks), width, last - first))  # features x rows, written to the matrix at once
        for at, (window, statistic) in enumerate(blocks):
            if statistic == "slope":
                chunk[at] = matrix[first:last, (at + 1) * width:(at + 2) * width].T
                continue
            block = rolling.mean(local[window]) if statistic == "trend" else getattr(rolling, statistic)(local[window])
            chunk[at] = block[:, first - history:]
            if statistic == "trend":
                chunk[at] = columns[:, first:last] - chunk[at]
        matrix[first:last, width:] = chunk.reshape(len(blocks) * width, -1).T
    return matrix


def _grouped_slope(values: np.ndarray, stamps_ns: np.ndarray, window: int,
                   group_starts: Sequence[int] | np.ndarray | None) -> np.ndarray:
    """The slope stays on pandas' rolling means (see the module's note), one machine at a time."""
    bounds = np.append(group_starts_of(len(values), group_starts), len(values))
    out = np.empty_like(values)
    for first, stop in itertools.pairwise(bounds):
        index = pd.DatetimeIndex(stamps_ns[first:stop])
        indexed = pd.DataFrame(values[first:stop], index=index)
        out[first:stop] = _rolling_slope(indexed, _minutes_since_start(index), window)
    return out


def _pandas_features(frame: pd.DataFrame, sensors: Sequence[str],
                     config: FeatureConfig | None = None) -> tuple[np.ndarray, list[str]]:
    """The pandas implementation the NumPy engine replaced, kept as the reference it is tested against
    (tests/unit/test_rolling.py) and timed beside (benchmarks/features.py). Not used by the service."""
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
