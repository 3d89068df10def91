"""Failure events and labels, vectorized.

A failure event is a sharp drop of ``Eng_RPM_variation_percentage`` to or below ``-drop_threshold_pct``.
Consecutive low readings (gaps shorter than ``episode_gap_minutes``) are one episode: its onset is the first
low reading, its end the last. Labels:

* 1 (pre-failure): ``onset - window <= t < onset``;
* excluded (dropped from training and evaluation): ``onset <= t <= end + post_failure_exclusion`` — the
  machine is down or recovering, which is neither normal nor a warning sign;
* 0 otherwise.

For the ``health`` indicator the target is the minutes until the next onset, capped at
``health_cap_minutes``; rows after the last onset whose true time to failure is unknown and may be below the
cap (right-censored) are excluded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from modelforge.domain.telemetry import RPM_VARIATION, TIMESTAMP

LABEL = "failure_label"
TIME_TO_FAILURE = "minutes_to_failure"


@dataclass(frozen=True)
class LabelingConfig:
    window_minutes: int = 30
    drop_threshold_pct: float = 30.0
    post_failure_exclusion_minutes: int = 60
    episode_gap_minutes: int = 30
    health_cap_minutes: int = 24 * 60


@dataclass(frozen=True)
class FailureEpisodes:
    onsets: pd.DatetimeIndex
    ends: pd.DatetimeIndex

    def __len__(self) -> int:
        return len(self.onsets)


def find_failure_episodes(frame: pd.DataFrame, config: LabelingConfig) -> FailureEpisodes:
    """``frame`` sorted by timestamp."""
    low = (frame[RPM_VARIATION] <= -config.drop_threshold_pct).to_numpy()
    times = _as_ns(frame[TIMESTAMP])[low]
    if len(times) == 0:
        empty = pd.DatetimeIndex([], tz="UTC")
        return FailureEpisodes(empty, empty)
    starts_new = np.r_[True, np.diff(times) > config.episode_gap_minutes * _MINUTE_NS]
    ends_here = np.r_[starts_new[1:], True]
    return FailureEpisodes(pd.to_datetime(times[starts_new], utc=True), pd.to_datetime(times[ends_here], utc=True))


def label_failures(frame: pd.DataFrame, config: LabelingConfig) -> tuple[pd.DataFrame, FailureEpisodes]:
    """Adds LABEL (0/1) and TIME_TO_FAILURE, and drops excluded rows. ``frame`` sorted by timestamp."""
    episodes = find_failure_episodes(frame, config)
    t = _as_ns(frame[TIMESTAMP])
    onsets = episodes.onsets.as_unit("ns").asi8
    ends = episodes.ends.as_unit("ns").asi8

    next_idx = np.searchsorted(onsets, t, side="right")  # index of the first onset strictly after t
    has_next = next_idx < len(onsets)
    minutes_to_next = np.full(len(t), np.inf)
    minutes_to_next[has_next] = (onsets[next_idx[has_next]] - t[has_next]) / _MINUTE_NS

    prev_idx = next_idx - 1  # the last onset at or before t
    has_prev = prev_idx >= 0
    excluded = np.zeros(len(t), dtype=bool)
    recovery_ns = config.post_failure_exclusion_minutes * _MINUTE_NS
    excluded[has_prev] = t[has_prev] <= ends[prev_idx[has_prev]] + recovery_ns

    # After the last onset the time to failure is only known to exceed what is left of the range.
    censored = ~has_next & ((t[-1] - t) / _MINUTE_NS < config.health_cap_minutes) if len(t) else has_next

    out = frame.copy()
    out[LABEL] = (minutes_to_next <= config.window_minutes).astype("int8")
    out[TIME_TO_FAILURE] = np.where(censored, np.nan, np.minimum(minutes_to_next, config.health_cap_minutes))
    return out.loc[~excluded].reset_index(drop=True), episodes


_MINUTE_NS = 60 * 10**9


def _as_ns(timestamps: pd.Series) -> np.ndarray:
    return pd.DatetimeIndex(timestamps).as_unit("ns").asi8
