"""Features from the telemetry: the raw sensors plus backward-looking rolling statistics.

Every window looks only at the past (pandas time-based rolling, right-closed), so a row's features never use
readings that come after it. Windows are in time, not rows, because sampling is irregular and has gaps.
Features are computed on the whole cleaned series, downtime included, exactly as they would be on live data;
rows are excluded from training only afterwards.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from modelforge.domain.telemetry import TIMESTAMP

ROLLING_WINDOWS = ("15min", "60min")
TREND_WINDOW = "60min"


def feature_names(sensors: Sequence[str]) -> list[str]:
    names = list(sensors)
    for window in ROLLING_WINDOWS:
        names += [f"{s}__mean_{window}" for s in sensors] + [f"{s}__std_{window}" for s in sensors]
    names += [f"{s}__trend_{TREND_WINDOW}" for s in sensors]
    return names


def build_features(frame: pd.DataFrame, sensors: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """``frame`` sorted by timestamp. Returns a float32 matrix (rows of ``frame``, columns ``feature_names``)."""
    sensors = list(sensors)
    names = feature_names(sensors)
    width = len(sensors)
    indexed = frame.set_index(TIMESTAMP)[sensors].astype("float64")
    raw = indexed.to_numpy()
    # Filled block by block, so only one float64 intermediate exists at a time.
    matrix = np.empty((len(frame), len(names)), dtype="float32")
    matrix[:, :width] = raw
    column = width
    for window in ROLLING_WINDOWS:
        rolling = indexed.rolling(window, min_periods=1)
        mean = rolling.mean().to_numpy()
        matrix[:, column:column + width] = mean
        matrix[:, column + width:column + 2 * width] = rolling.std().to_numpy()
        column += 2 * width
        if window == TREND_WINDOW:
            # Deviation of the current reading from its recent level: a build-up shows as a growing trend.
            matrix[:, len(names) - width:] = raw - mean
        del mean
    return matrix, names
