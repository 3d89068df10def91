"""Cutting a telemetry file of any length into ``POST /predict`` calls.

A call takes at most 1,000 records (``schemas.MAX_PREDICT_RECORDS``), and each prediction needs the rows of its
rolling windows: the features of a row are built from the readings within the model's longest window before
it. So each call carries, before the rows it predicts, the rows within that window (its context), whose
predictions are dropped; every row is then predicted from the same readings as if the file had been sent at
once. The window is read from the model's feature names (``<sensor>__<statistic>_<N>min``) with the recipe
parser the predict function uses (``domain.features.config_from_names``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from modelforge.domain.features import config_from_names
from modelforge.schemas import MAX_PREDICT_RECORDS

TIMESTAMP = "timestamp"  # domain.telemetry.TIMESTAMP


@dataclass(frozen=True)
class Chunk:
    start: int  # first row sent (context included)
    first_predicted: int  # first row whose prediction is kept
    stop: int  # one past the last row sent and predicted

    @property
    def context(self) -> int:
        return self.first_predicted - self.start


def model_window_minutes(feature_names: Sequence[str]) -> tuple[tuple[str, ...], int]:
    """The model's sensors and its longest rolling window in minutes (0: raw sensors only)."""
    sensors, config = config_from_names(tuple(feature_names))
    derived = any("__" in name for name in feature_names)
    windows = [*config.windows_minutes, *([config.trend_window_minutes] if config.trend_window_minutes else [])]
    return sensors, (max(windows) if derived else 0)


def plan_chunks(timestamps: pd.Series | None, rows: int, window_minutes: int,
                limit: int = MAX_PREDICT_RECORDS) -> Iterator[Chunk]:
    """Chunks covering every row once. With timestamps, the context of a chunk is the rows less than the
    window before its first predicted row (pandas' time-based windows are ``(t - window, t]``); without, the
    API takes records as consecutive minutes, so it is ``window_minutes`` rows."""
    stamps = None if timestamps is None else pd.to_datetime(timestamps, utc=True).to_numpy(dtype="datetime64[ns]")
    window = np.timedelta64(window_minutes, "m")
    first = 0
    while first < rows:
        if stamps is None:
            start = max(0, first - window_minutes)
        else:
            start = int(np.searchsorted(stamps, stamps[first] - window, side="right")) if window_minutes else first
        if first - start >= limit:
            raise ValueError(f"row {first} has {first - start} rows within the model's {window_minutes}-minute "
                             f"window before it: more than one call of {limit} records can hold")
        stop = min(rows, start + limit)
        yield Chunk(start=start, first_predicted=first, stop=stop)
        first = stop
