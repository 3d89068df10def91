"""Features from the telemetry: the raw sensors plus backward-looking rolling statistics.

Every window looks only at the past (pandas time-based rolling, right-closed), so a row's features never use
readings that come after it. Windows are in time, not rows, because sampling is irregular and has gaps.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from modelforge.domain.telemetry import TIMESTAMP

ROLLING_WINDOWS = ("15min", "60min")


def add_rolling_features(frame: pd.DataFrame, sensors: Sequence[str]) -> tuple[pd.DataFrame, list[str]]:
    """``frame`` sorted by timestamp. Returns the frame with the new columns and the full feature list."""
    indexed = frame.set_index(TIMESTAMP)[list(sensors)].astype("float64")
    new_columns: dict[str, pd.Series] = {}
    for window in ROLLING_WINDOWS:
        rolling = indexed.rolling(window, min_periods=1)
        means = rolling.mean()
        stds = rolling.std()
        for sensor in sensors:
            new_columns[f"{sensor}__mean_{window}"] = means[sensor]
            new_columns[f"{sensor}__std_{window}"] = stds[sensor]
    long_mean = indexed.rolling("60min", min_periods=1).mean()
    for sensor in sensors:
        # Deviation of the current reading from its recent level: a build-up shows as a growing trend.
        new_columns[f"{sensor}__trend_60min"] = indexed[sensor] - long_mean[sensor]
    extra = pd.DataFrame({name: series.to_numpy() for name, series in new_columns.items()}, index=frame.index)
    features = [*sensors, *extra.columns]
    return pd.concat([frame, extra], axis=1), features
