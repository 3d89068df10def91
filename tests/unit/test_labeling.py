"""Failure episodes and targets (modelforge.domain.labeling): exact labels on hand-built series, the edges of
the range, and a property test against a plain loop that states the rules one row at a time."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelforge.domain.labeling import LabelingConfig, find_failure_episodes, label_failures, timestamps_ns

VARIATION = "Eng_RPM_variation_percentage"
START = pd.Timestamp("2025-01-01", tz="UTC")
CONFIG = LabelingConfig(window_minutes=30, drop_threshold_pct=30.0, post_failure_exclusion_minutes=60,
                        episode_gap_minutes=30, health_horizon_minutes=240)


def series(minutes: list[float], variation: list[float] | None = None,
           low_at: set[float] | None = None) -> pd.DataFrame:
    """Rows at ``minutes`` after START; variation -50 % at ``low_at`` minutes, else 0."""
    low_at = low_at or set()
    values = variation if variation is not None else [-50.0 if m in low_at else 0.0 for m in minutes]
    return pd.DataFrame({"timestamp": START + pd.to_timedelta(minutes, unit="min"), VARIATION: values})


def at(frame: pd.DataFrame, values: np.ndarray, minute: float) -> float:
    index = np.flatnonzero(frame["timestamp"] == START + pd.Timedelta(minutes=minute))
    return float(values[index[0]])


def test_rows_in_the_window_before_an_onset_are_pre_failure_and_the_failure_itself_is_excluded() -> None:
    minutes = list(range(0, 300))
    frame = series(minutes, low_at={200, 201, 202, 203})
    labels = label_failures(frame, CONFIG)

    assert len(labels.episodes) == 1
    assert at(frame, labels.label, 169) == 0.0  # 31 minutes before: normal
    assert at(frame, labels.label, 170) == 1.0  # exactly 30 minutes before: pre-failure
    assert at(frame, labels.label, 199) == 1.0
    for minute in (200, 203, 263):  # onset, downtime, end + 60 min recovery: excluded
        assert np.isnan(at(frame, labels.label, minute))
    assert at(frame, labels.label, 264) == 0.0  # recovered
    assert labels.counts()["rows_pre_failure"] == 30


def test_window_is_in_time_not_rows_so_irregular_sampling_and_gaps_do_not_change_it() -> None:
    # Sparse, jittered readings with a 25-minute hole right before the onset.
    minutes = [0, 7.5, 13, 40, 52.25, 61, 70.5, 74, 99.9, 125, 126, 300]
    frame = series(minutes, low_at={125, 126})
    labels = label_failures(frame, CONFIG)

    pre = {m for m, v in zip(minutes, labels.label, strict=True) if v == 1.0}
    assert pre == {99.9}  # 95 >= 125 - 30 is the only row in [95, 125)
    assert at(frame, labels.label, 74) == 0.0  # 51 minutes before, though only one row earlier


def test_low_readings_close_together_are_one_episode_and_far_apart_are_two() -> None:
    minutes = list(range(0, 600))
    frame = series(minutes, low_at={100, 120, 400})  # 20 min apart: one episode; 280 min later: another
    episodes = find_failure_episodes(timestamps_ns(frame), frame[VARIATION].to_numpy(), CONFIG)

    assert len(episodes) == 2
    assert list(episodes.onsets) == [START + pd.Timedelta(minutes=100), START + pd.Timedelta(minutes=400)]
    assert list(pd.to_datetime(episodes.ends_ns, utc=True)) == [START + pd.Timedelta(minutes=120),
                                                                START + pd.Timedelta(minutes=400)]


def test_a_relapse_during_recovery_is_pre_failure_for_the_next_event() -> None:
    minutes = list(range(0, 400))
    frame = series(minutes, low_at={100, 170})  # second onset 70 min after the first, inside its recovery
    labels = label_failures(frame, CONFIG)

    assert len(labels.episodes) == 2
    assert np.isnan(at(frame, labels.label, 130))  # recovering, 40 min before the next onset
    assert at(frame, labels.label, 140) == 1.0  # recovering, but inside the next onset's window
    assert at(frame, labels.time_to_failure, 150) == 20.0


def test_an_event_on_the_first_row_is_left_censored_and_gives_no_positive() -> None:
    frame = series(list(range(0, 300)), low_at={0, 1, 2})
    labels = label_failures(frame, CONFIG)

    assert labels.episodes.left_censored.tolist() == [True]
    assert labels.episodes.usable == 0
    assert np.nansum(labels.label) == 0
    assert np.isnan(labels.label[:63]).all()  # down, then the hour of recovery after the last low reading


def test_an_event_whose_lead_up_has_no_readings_is_counted_but_not_usable() -> None:
    minutes = [*range(0, 100), *range(200, 400)]  # 100-minute hole, onset right after it
    frame = series(minutes, low_at={200})
    labels = label_failures(frame, CONFIG)

    assert labels.episodes.lead_observed.tolist() == [False]
    assert labels.episodes.usable == 0


def test_event_at_the_end_of_the_range_and_the_censored_tail() -> None:
    frame = series(list(range(0, 100)), low_at={99})
    labels = label_failures(frame, CONFIG)
    assert at(frame, labels.label, 69) == 1.0 and at(frame, labels.label, 98) == 1.0

    # No event: the last 30 minutes could precede a failure just after the range, so they are unknown.
    quiet = series(list(range(0, 100)))
    tail = label_failures(quiet, CONFIG)
    assert np.isnan(tail.label[70:]).all() and (tail.label[:70] == 0).all()
    assert tail.counts()["rows_censored_at_end"] == 30


def test_health_target_is_capped_minutes_to_failure_and_unknown_after_the_last_event() -> None:
    minutes = list(range(0, 1000))
    frame = series(minutes, low_at={500})
    labels = label_failures(frame, CONFIG)

    assert at(frame, labels.time_to_failure, 499) == 1.0
    assert at(frame, labels.time_to_failure, 400) == 100.0
    assert at(frame, labels.time_to_failure, 10) == 240.0  # capped at the horizon
    # After the event, less than the horizon remains: the time to the next failure is unknown.
    assert np.isnan(at(frame, labels.time_to_failure, 800))


def test_settings_change_the_labels() -> None:
    frame = series(list(range(0, 300)), variation=[-25.0 if m == 200 else 0.0 for m in range(300)])
    assert len(label_failures(frame, CONFIG).episodes) == 0  # -25 % is not a -30 % drop
    lenient = LabelingConfig(drop_threshold_pct=20.0, window_minutes=10)
    labels = label_failures(frame, lenient)
    assert len(labels.episodes) == 1 and np.nansum(labels.label) == 10


def test_labels_of_a_later_period_do_not_depend_on_earlier_rows() -> None:
    rng = np.random.default_rng(3)
    minutes = np.cumsum(rng.uniform(0.5, 1.5, 4000))
    low = np.zeros(len(minutes), dtype=bool)
    for onset in (500, 1800, 2500, 3600):
        low[onset:onset + 20] = True
    frame = series(minutes.tolist(), variation=np.where(low, -60.0, 0.0).tolist())
    split = 2200  # no episode straddles this row
    whole = label_failures(frame, CONFIG)
    later = label_failures(frame.iloc[split:].reset_index(drop=True), CONFIG)

    np.testing.assert_array_equal(whole.label[split:], later.label)
    np.testing.assert_array_equal(whole.time_to_failure[split:], later.time_to_failure)


def reference_labels(minutes: list[float], variation: list[float], config: LabelingConfig) -> tuple[list, list]:
    """The rules of the module docstring, one row at a time."""
    low = [m for m, v in zip(minutes, variation, strict=True) if v <= -config.drop_threshold_pct]
    episodes: list[list[float]] = []
    for m in low:
        if episodes and m - episodes[-1][1] < config.episode_gap_minutes:
            episodes[-1][1] = m
        else:
            episodes.append([m, m])
    labels, ttfs = [], []
    for m in minutes:
        following = [onset for onset, _ in episodes if onset > m]
        previous = [(onset, end) for onset, end in episodes if onset <= m]
        pre = bool(following) and following[0] - m <= config.window_minutes
        in_failure = bool(previous) and m <= previous[-1][1] + config.post_failure_exclusion_minutes and not pre
        remaining = minutes[-1] - m
        if in_failure or (not following and remaining < config.window_minutes):
            labels.append(None)
        else:
            labels.append(1.0 if pre else 0.0)
        if in_failure or (not following and remaining < config.health_horizon_minutes):
            ttfs.append(None)
        else:
            ttfs.append(min(following[0] - m, config.health_horizon_minutes) if following
                        else float(config.health_horizon_minutes))
    return labels, ttfs


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(st.sampled_from([0.5, 1.0, 1.0, 1.0, 3.0, 17.0, 45.0]), min_size=5, max_size=300),
    lows=st.lists(st.integers(min_value=0, max_value=299), max_size=25),
    window=st.sampled_from([5, 30]),
    gap=st.sampled_from([0, 10, 30]),
    exclusion=st.sampled_from([0, 20, 60]),
)
def test_vectorized_labels_match_the_row_by_row_rules(steps: list[float], lows: list[int], window: int, gap: int,
                                                      exclusion: int) -> None:
    minutes = np.cumsum(steps).tolist()
    variation = [0.0] * len(minutes)
    for i in lows:
        if i < len(minutes):
            variation[i] = -60.0
    config = LabelingConfig(window_minutes=window, episode_gap_minutes=gap,
                            post_failure_exclusion_minutes=exclusion, health_horizon_minutes=60)
    labels = label_failures(series(minutes, variation), config)
    expected_labels, expected_ttf = reference_labels(minutes, variation, config)

    got_labels = [None if np.isnan(v) else v for v in labels.label]
    got_ttf = [None if np.isnan(v) else pytest.approx(v, abs=1e-6) for v in labels.time_to_failure]
    assert got_labels == expected_labels
    assert got_ttf == expected_ttf


def test_pre_failure_labels_agree_with_the_seed_rule_on_demo_data() -> None:
    from localcloud.demo_data import generate_machine_telemetry

    frame = generate_machine_telemetry("M", days=10, seed=11).telemetry
    labels = label_failures(frame, CONFIG)
    # The seed: every low reading marks [reading - 30 min, reading) as pre-failure.
    t = timestamps_ns(frame)
    seed = np.zeros(len(t))
    for low in t[frame[VARIATION].to_numpy() <= -30]:
        seed[(t >= low - 30 * 60 * 10**9) & (t < low)] = 1
    known = ~np.isnan(labels.label)
    assert len(labels.episodes) >= 1
    np.testing.assert_array_equal(seed[known], labels.label[known])
