"""Failure events and training targets, vectorized (numpy ``searchsorted``, no Python loop over rows).

Failure events come from one of two sources, chosen per job (``failure_events`` of ``POST /train``):
    ``rpm_drop`` (the seed's rule, below), found in the telemetry itself;
    ``records``: recorded failures (maintenance records, or the last cycle of a run-to-failure test) from the
    failure-events dataset. Each recorded timestamp is one episode whose onset and end are that timestamp.
Either way, the labels below follow from the onsets and ends alone.

Failure events from RPM drops
    A *low reading* is one with ``Eng_RPM_variation_percentage <= -drop_threshold_pct`` (default 30 %: the
    speed collapsed). Low readings less than ``episode_gap_minutes`` (default 30) apart form one *episode*:
    its **onset** is the first low reading, its **end** the last. Several failures close together are several
    episodes as soon as the speed has been back above the threshold for ``episode_gap_minutes``.

Status labels (``LABEL``), one per row at time ``t``
    * 1, *pre-failure*: ``onset - window_minutes <= t < onset`` for some onset (the seed's rule, with the
      window in time, not rows, so irregular sampling and gaps do not change its meaning);
    * excluded (NaN): ``onset <= t <= end + post_failure_exclusion_minutes`` (default 60) — the machine is
      down or recovering, which is neither normal nor a warning — unless the row is also pre-failure for the
      *next* onset (a relapse), in which case it is 1;
    * excluded (NaN), right-censored: rows in the last ``window_minutes`` of the data with no onset after
      them. A failure just after the range would make them pre-failure, so their label is unknown;
    * 0 otherwise.

Health target (``TIME_TO_FAILURE``)
    Minutes from ``t`` to the next onset, capped at ``health_horizon_minutes`` (default 120: a failure's
    build-up shows in the sensors one to four hours ahead; on four demo machines a 2-hour cap gave R² 0.15-0.92
    where 4 hours gave 0.12-0.80). 0 means failing now, the cap means "no failure expected within
    the horizon". A health index in [0, 100] is ``100 * minutes / horizon``. Rows excluded above are NaN, and
    so are rows whose time to failure is unknown and may be under the cap (after the last onset, less than the
    horizon before the end of the data).

Edges
    An episode that starts on the first row of the data is *left-censored* (its real onset may be earlier) and
    one without any reading in its pre-failure window has no observed lead-up; both are counted in
    ``FailureEpisodes`` and contribute no positive rows. Labels only ever look *forward* from a row, so the
    labels of a later period never depend on the rows of an earlier one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from modelforge.domain.telemetry import RPM_VARIATION, TIMESTAMP
from modelforge.domain.units import MINUTE_NS

LABEL = "failure_label"
TIME_TO_FAILURE = "minutes_to_failure"


@dataclass(frozen=True)
class LabelingConfig:
    window_minutes: int = 30
    drop_threshold_pct: float = 30.0
    post_failure_exclusion_minutes: int = 60
    episode_gap_minutes: int = 30
    health_horizon_minutes: int = 120

    def __post_init__(self) -> None:
        if self.window_minutes <= 0 or self.health_horizon_minutes <= 0:
            raise ValueError("window_minutes and health_horizon_minutes must be positive")
        if self.drop_threshold_pct <= 0:
            raise ValueError("drop_threshold_pct must be positive (a drop of that many percent)")
        if self.post_failure_exclusion_minutes < 0 or self.episode_gap_minutes < 0:
            raise ValueError("post_failure_exclusion_minutes and episode_gap_minutes must be >= 0")


@dataclass(frozen=True)
class FailureEpisodes:
    onsets_ns: np.ndarray  # int64 epoch ns, increasing
    ends_ns: np.ndarray
    left_censored: np.ndarray  # bool: the episode starts on the first row, its real onset may be earlier
    lead_observed: np.ndarray  # bool: at least one reading in [onset - window, onset)

    def __len__(self) -> int:
        return len(self.onsets_ns)

    @property
    def onsets(self) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(pd.to_datetime(self.onsets_ns, unit="ns", utc=True))

    @property
    def usable(self) -> int:
        """Episodes with an observed lead-up: the ones a classifier learns from."""
        return int((self.lead_observed & ~self.left_censored).sum())


@dataclass(frozen=True)
class Labels:
    """Targets aligned row by row with the frame that was labeled (nothing is dropped here)."""

    label: np.ndarray  # float64: 1.0 pre-failure, 0.0 normal, NaN excluded
    time_to_failure: np.ndarray  # float64 minutes, capped; NaN excluded or unknown
    in_failure: np.ndarray  # bool: down or recovering (excluded for both targets)
    censored_end: np.ndarray  # bool: status label unknown at the end of the data
    episodes: FailureEpisodes

    def counts(self) -> dict[str, int]:
        return {
            "failure_events": len(self.episodes),
            "failure_events_usable": self.episodes.usable,
            "failure_events_left_censored": int(self.episodes.left_censored.sum()),
            "rows_pre_failure": int(np.nansum(self.label)),
            "rows_excluded_in_failure": int(self.in_failure.sum()),
            "rows_censored_at_end": int(self.censored_end.sum()),
        }


def timestamps_ns(frame: pd.DataFrame) -> np.ndarray:
    return pd.DatetimeIndex(frame[TIMESTAMP]).as_unit("ns").asi8


def find_failure_episodes(t: np.ndarray, variation: np.ndarray, config: LabelingConfig) -> FailureEpisodes:
    """``t`` sorted epoch ns, ``variation`` the RPM variation at each ``t``."""
    low_times = t[variation <= -config.drop_threshold_pct]
    if len(low_times) == 0:
        empty = np.array([], dtype=np.int64)
        return FailureEpisodes(empty, empty, np.array([], dtype=bool), np.array([], dtype=bool))
    starts_new = np.r_[True, np.diff(low_times) >= config.episode_gap_minutes * MINUTE_NS]
    ends_here = np.r_[starts_new[1:], True]
    return _episodes(t, low_times[starts_new], low_times[ends_here], config)


def recorded_episodes(t: np.ndarray, events_ns: np.ndarray, config: LabelingConfig) -> FailureEpisodes:
    """Recorded failures as episodes: each distinct timestamp is an onset and its own end."""
    onsets = np.unique(np.asarray(events_ns, dtype=np.int64))
    if len(t) == 0 or len(onsets) == 0:
        empty = np.array([], dtype=np.int64)
        return FailureEpisodes(empty, empty, np.array([], dtype=bool), np.array([], dtype=bool))
    return _episodes(t, onsets, onsets.copy(), config)


def _episodes(t: np.ndarray, onsets: np.ndarray, ends: np.ndarray, config: LabelingConfig) -> FailureEpisodes:
    """``onsets`` at or before the first reading are left-censored (an RPM drop's onset is always a reading,
    so for it this is ``onset == t[0]``); the lead-up is observed when a reading falls in its window."""
    window_start = np.searchsorted(t, onsets - config.window_minutes * MINUTE_NS, side="left")
    onset_row = np.searchsorted(t, onsets, side="left")
    return FailureEpisodes(onsets_ns=onsets, ends_ns=ends, left_censored=onsets <= t[0],
                           lead_observed=onset_row > window_start)


def label_failures(frame: pd.DataFrame, config: LabelingConfig, events_ns: np.ndarray | None = None) -> Labels:
    """``frame`` sorted by unique timestamps (as :func:`clean_telemetry` returns it). ``events_ns``: recorded
    failure timestamps (epoch ns); without them the failures are the RPM drops in ``frame``."""
    t = timestamps_ns(frame)
    if events_ns is None:
        variation = frame[RPM_VARIATION].to_numpy(dtype="float64")
        episodes = find_failure_episodes(t, variation, config)
    else:
        episodes = recorded_episodes(t, events_ns, config)
    onsets, ends = episodes.onsets_ns, episodes.ends_ns
    n = len(t)

    next_idx = np.searchsorted(onsets, t, side="right")  # the first onset strictly after t
    has_next = next_idx < len(onsets)
    minutes_to_next = np.full(n, np.inf)
    minutes_to_next[has_next] = (onsets[next_idx[has_next]] - t[has_next]) / MINUTE_NS
    pre_failure = minutes_to_next <= config.window_minutes

    prev_idx = next_idx - 1  # the last onset at or before t
    has_prev = prev_idx >= 0
    in_failure = np.zeros(n, dtype=bool)
    recovery_ns = config.post_failure_exclusion_minutes * MINUTE_NS
    in_failure[has_prev] = t[has_prev] <= ends[prev_idx[has_prev]] + recovery_ns
    in_failure &= ~pre_failure  # a relapse: recovering, and already in the lead-up of the next failure

    remaining = (t[-1] - t) / MINUTE_NS if n else np.zeros(0)
    censored_end = ~in_failure & ~has_next & (remaining < config.window_minutes)

    label = pre_failure.astype("float64")
    label[in_failure | censored_end] = np.nan
    ttf = np.minimum(minutes_to_next, float(config.health_horizon_minutes))
    ttf[in_failure | (~has_next & (remaining < config.health_horizon_minutes))] = np.nan
    return Labels(label=label, time_to_failure=ttf, in_failure=in_failure, censored_end=censored_end,
                  episodes=episodes)


# ---------------------------------------------------------------- a fleet in one pass


def label_fleet(frames: Sequence[pd.DataFrame], config: LabelingConfig,
                events_ns: Sequence[np.ndarray] | None = None) -> list[Labels]:
    """:func:`label_failures` of each frame, computed over the pooled rows of all of them at once: every
    search that the one-machine version makes with ``searchsorted`` is made within a machine, by merging
    the machine-and-time keys of rows and onsets (:func:`_count_before`), so no failure of one machine
    labels another's rows. The same arrays, machine by machine."""
    t = np.concatenate([timestamps_ns(f) for f in frames]) if frames else np.zeros(0, dtype=np.int64)
    sizes = np.array([len(f) for f in frames], dtype=np.int64)
    group = np.repeat(np.arange(len(frames)), sizes)
    if events_ns is None:
        variation = np.concatenate([f[RPM_VARIATION].to_numpy(dtype="float64") for f in frames])
        onsets, ends, onset_group = _fleet_drops(t, variation, group, config)
    else:
        onsets, onset_group = _fleet_records(events_ns, sizes)
        ends = onsets.copy()
    row_bounds = np.r_[0, np.cumsum(sizes)]
    onset_bounds = np.r_[0, np.cumsum(np.bincount(onset_group, minlength=len(frames)))]
    first_t = t[np.minimum(row_bounds[:-1], max(len(t) - 1, 0))] if len(t) else np.zeros(len(frames), np.int64)
    window_start = _count_before(group, t, onset_group, onsets - config.window_minutes * MINUTE_NS, side="left")
    onset_row = _count_before(group, t, onset_group, onsets, side="left")
    left_censored = onsets <= first_t[onset_group]
    lead_observed = onset_row > window_start

    next_idx = _count_before(onset_group, onsets, group, t, side="right")  # global index of the next onset
    has_next = next_idx < onset_bounds[1:][group]
    minutes_to_next = np.full(len(t), np.inf)
    minutes_to_next[has_next] = (onsets[next_idx[has_next]] - t[has_next]) / MINUTE_NS
    pre_failure = minutes_to_next <= config.window_minutes
    prev_idx = next_idx - 1
    has_prev = prev_idx >= onset_bounds[:-1][group]
    in_failure = np.zeros(len(t), dtype=bool)
    recovery_ns = config.post_failure_exclusion_minutes * MINUTE_NS
    in_failure[has_prev] = t[has_prev] <= ends[prev_idx[has_prev]] + recovery_ns
    in_failure &= ~pre_failure
    last_t = t[np.maximum(row_bounds[1:] - 1, 0)] if len(t) else np.zeros(len(frames), np.int64)
    remaining = (last_t[group] - t) / MINUTE_NS
    censored_end = ~in_failure & ~has_next & (remaining < config.window_minutes)
    label = pre_failure.astype("float64")
    label[in_failure | censored_end] = np.nan
    ttf = np.minimum(minutes_to_next, float(config.health_horizon_minutes))
    ttf[in_failure | (~has_next & (remaining < config.health_horizon_minutes))] = np.nan
    labels = []
    for i in range(len(frames)):
        rows, eps = slice(row_bounds[i], row_bounds[i + 1]), slice(onset_bounds[i], onset_bounds[i + 1])
        episodes = FailureEpisodes(onsets_ns=onsets[eps], ends_ns=ends[eps], left_censored=left_censored[eps],
                                   lead_observed=lead_observed[eps])
        labels.append(Labels(label=label[rows], time_to_failure=ttf[rows], in_failure=in_failure[rows],
                             censored_end=censored_end[rows], episodes=episodes))
    return labels


def _count_before(keys_group: np.ndarray, keys: np.ndarray, query_group: np.ndarray, queries: np.ndarray, *,
                  side: str) -> np.ndarray:
    """For each query, the global position ``np.searchsorted(keys_of_its_group, query, side)`` would give
    (plus the group's offset): ``keys`` sorted by group then value, the groups in order."""
    n_keys = len(keys)
    group = np.concatenate([keys_group, query_group])
    value = np.concatenate([keys, queries])
    # Among equal values, "left" puts a query before the keys (counts keys < q), "right" after (keys <= q).
    is_query = np.r_[np.zeros(n_keys, dtype=bool), np.ones(len(queries), dtype=bool)]
    tie = is_query if side == "right" else ~is_query
    order = np.lexsort((tie, value, group))
    keys_before = np.cumsum(~is_query[order]) - ~is_query[order]
    counts = np.empty(len(order), dtype=np.int64)
    counts[order] = keys_before
    return counts[n_keys:]


def _fleet_drops(t: np.ndarray, variation: np.ndarray, group: np.ndarray,
                 config: LabelingConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each machine's RPM-drop episodes (:func:`find_failure_episodes`), onsets and ends, with their machine."""
    low = variation <= -config.drop_threshold_pct
    low_times, low_group = t[low], group[low]
    if len(low_times) == 0:
        empty = np.array([], dtype=np.int64)
        return empty, empty, empty
    same_machine = np.r_[False, low_group[1:] == low_group[:-1]]
    starts_new = ~same_machine | np.r_[True, np.diff(low_times) >= config.episode_gap_minutes * MINUTE_NS]
    ends_here = np.r_[starts_new[1:], True]
    return low_times[starts_new], low_times[ends_here], low_group[starts_new]


def _fleet_records(events_ns: Sequence[np.ndarray], sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each machine's distinct recorded failures, sorted, with their machine (none for a machine without
    rows, as :func:`recorded_episodes` has it)."""
    per_machine = [np.unique(np.asarray(e, dtype=np.int64)) if size else np.array([], dtype=np.int64)
                   for e, size in zip(events_ns, sizes, strict=True)]
    onsets = np.concatenate(per_machine) if per_machine else np.array([], dtype=np.int64)
    onset_group = np.repeat(np.arange(len(per_machine)), [len(p) for p in per_machine])
    return onsets, onset_group
