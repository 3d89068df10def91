"""Chronological splits: the model is always tested on data from after everything it trained on."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from modelforge.domain.telemetry import TIMESTAMP


@dataclass(frozen=True)
class TimeSplit:
    train: pd.DataFrame
    test: pd.DataFrame
    split_time: pd.Timestamp
    purged_rows: int


def chronological_split(frame: pd.DataFrame, *, test_fraction: float, purge_minutes: int) -> TimeSplit:
    """The last ``test_fraction`` of rows (in time) is the test set. Training rows within ``purge_minutes``
    before the split are dropped: their labels look ahead into the test period (a failure just after the
    split), so keeping them would leak test events into training."""
    if not 0 < test_fraction < 1:
        raise ValueError("test_fraction must be between 0 and 1")
    ordered = frame.sort_values(TIMESTAMP, kind="stable").reset_index(drop=True)
    cut = int(round(len(ordered) * (1 - test_fraction)))
    split_time = ordered[TIMESTAMP].iloc[cut]
    test = ordered.iloc[cut:]
    before = ordered.iloc[:cut]
    train = before[before[TIMESTAMP] < split_time - pd.Timedelta(minutes=purge_minutes)]
    return TimeSplit(train=train.reset_index(drop=True), test=test.reset_index(drop=True),
                     split_time=split_time, purged_rows=len(before) - len(train))
