"""Concept drift: live recall and false-alarm rate on crafted series of captured predictions and failures
(domain.live), the sampling decision, and the drift check's live figures against fakes (logic.drift)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pandas as pd
import pytest

from modelforge.domain.live import CaptureConfig, is_sampled, live_performance

T0 = pd.Timestamp("2025-03-01T00:00:00Z")


def minutes(*values: float) -> list[pd.Timestamp]:
    return [T0 + pd.Timedelta(minutes=v) for v in values]


def captures(machine: str, times: list[pd.Timestamp], alarms: list[bool], *, at: pd.Timestamp = T0) -> pd.DataFrame:
    return pd.DataFrame({"machine_name": machine, "time": times, "alarm": alarms, "captured_at": at})


def events(machine: str, times: list[pd.Timestamp]) -> pd.DataFrame:
    return pd.DataFrame({"machine_name": machine, "timestamp": pd.to_datetime(times, utc=True)})


def test_a_failure_preceded_by_an_alarm_in_its_window_is_caught() -> None:
    # One prediction a minute for 10 hours; failures at 3 h (alarm 10 min before) and at 7 h (no alarm).
    times = minutes(*range(600))
    alarms = [t in (170,) for t in range(600)]
    live = live_performance(captures("M", times, alarms), events("M", minutes(180, 420)), window_minutes=30,
                            observed_until=T0 + pd.Timedelta(hours=10))
    assert (live.failures, live.caught, live.recall) == (2, 1, 0.5)
    assert (live.alarms, live.false_alarms, live.false_alarm_rate) == (1, 0, 0.0)
    assert live.predictions == 600


def test_an_alarm_too_early_or_after_the_failure_does_not_catch_it() -> None:
    times = minutes(*range(0, 300, 5))
    # The failure at 200 min: alarms at 160 (40 min ahead, outside the 30-minute window) and 200 (at the onset).
    alarms = [t in (160, 200) for t in range(0, 300, 5)]
    live = live_performance(captures("M", times, alarms), events("M", minutes(200)), window_minutes=30,
                            observed_until=T0 + pd.Timedelta(hours=5))
    assert (live.failures, live.caught, live.recall) == (1, 0, 0.0)
    assert (live.alarms, live.false_alarms) == (2, 2)  # neither had a failure within 30 minutes after it


def test_failures_without_a_captured_prediction_in_their_window_are_not_observed() -> None:
    live = live_performance(captures("M", minutes(0, 1, 2), [False] * 3), events("M", minutes(600)),
                            window_minutes=30, observed_until=T0 + pd.Timedelta(hours=12))
    assert (live.failures, live.recall) == (0, None)


def test_an_alarm_is_settled_only_once_its_window_has_passed() -> None:
    # An alarm 10 minutes before the end of the known ground truth: a failure may still follow it.
    live = live_performance(captures("M", minutes(50), [True]), events("M", []), window_minutes=30,
                            observed_until=T0 + pd.Timedelta(minutes=60))
    assert (live.alarms, live.false_alarm_rate) == (0, None)
    later = live_performance(captures("M", minutes(50), [True]), events("M", []), window_minutes=30,
                             observed_until=T0 + pd.Timedelta(minutes=90))
    assert (later.alarms, later.false_alarms, later.false_alarm_rate) == (1, 1, 1.0)


def test_machines_are_judged_apart_and_a_record_scored_twice_counts_once_with_its_latest_capture() -> None:
    first = captures("A", minutes(100, 110), [False, False], at=T0)
    again = captures("A", minutes(110), [True], at=T0 + pd.Timedelta(minutes=1))  # the same record, re-scored
    other = captures("B", minutes(100, 110), [True, True])
    frame = pd.concat([first, again, other], ignore_index=True)
    # Only A fails (at 120): B's alarms are false, and A's failure is caught by its latest capture.
    live = live_performance(frame, events("A", minutes(120)), window_minutes=30,
                            observed_until=T0 + pd.Timedelta(hours=4))
    assert (live.predictions, live.failures, live.caught) == (4, 1, 1)
    assert (live.alarms, live.false_alarms) == (3, 2)
    assert live.by_day == [{"day": "2025-03-01", "predictions": 4, "alarms": 3, "false_alarms": 2, "failures": 1,
                            "caught": 1, "recall": 1.0}]


def test_the_figures_are_kept_by_day() -> None:
    times = [T0 + pd.Timedelta(hours=h) for h in range(0, 72)]
    failures = [T0 + pd.Timedelta(hours=h, minutes=30) for h in (10, 40)]  # day 1 and day 2
    alarms = [h == 10 for h in range(72)]
    live = live_performance(captures("M", times, alarms), events("M", failures), window_minutes=60,
                            observed_until=T0 + pd.Timedelta(days=3))
    assert [(d["day"], d["predictions"], d["failures"], d["caught"]) for d in live.by_day] == [
        ("2025-03-01", 24, 1, 1), ("2025-03-02", 24, 1, 0), ("2025-03-03", 24, 0, 0)]


def test_sampling_is_by_request_and_repeatable() -> None:
    ids = [f"request-{i}" for i in range(2000)]
    taken = [i for i in ids if is_sampled(i, 0.25)]
    assert 400 < len(taken) < 600 and taken == [i for i in ids if is_sampled(i, 0.25)]
    assert all(is_sampled(i, 1.0) for i in ids[:10]) and not any(is_sampled(i, 0.0) for i in ids[:10])
    assert CaptureConfig().sample_rate == 1.0
    with pytest.raises(ValueError, match="sample_rate"):
        CaptureConfig(sample_rate=1.5)


# ---------------------------------------------------------------- the drift check's live figures (fakes)


def _lines(version: str, alarm_minutes: set[int], total: int = 600) -> list[dict[str, Any]]:
    return [{"timestamp": (T0 + pd.Timedelta(minutes=m)).isoformat().replace("+00:00", "Z"), "machine_name": "M-1",
             "model_name": "M-1#status", "model_version": version, "score": 0.9 if m in alarm_minutes else 0.1,
             "prediction": 1.0 if m in alarm_minutes else 0.0, "alarm": m in alarm_minutes,
             "captured_at": (T0 + pd.Timedelta(minutes=m, seconds=5)).isoformat(), "request_id": f"r{m}"}
            for m in range(total)]


class FakeCaptures:
    def __init__(self, lines: list[dict[str, Any]]) -> None:
        self.lines = lines
        self.reads: list[tuple[str, Any, Any]] = []

    def read(self, model_key: str, start: Any, end: Any, *, max_objects: int) -> list[dict[str, Any]]:
        self.reads.append((model_key, start, end))
        return self.lines


class FakeEvents:
    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame

    def read(self, machine_names: list[str], start: Any = None, end: Any = None) -> pd.DataFrame:
        return self.frame[self.frame["machine_name"].isin(machine_names)]


def test_missed_failures_after_captured_predictions_are_concept_drift() -> None:
    from modelforge.logic.drift import DriftPolicy, check_champion
    from tests.unit.test_drift import NOW, champion, deps_for, profile_of, telemetry

    item = champion("M-1", ["M-1"], params={"config": {"labeling": {"window_minutes": 30}}},
                    metrics={"events_total": 8, "events_caught": 6, "precision": 0.4})
    frames = {"M-1": telemetry(3, seed=2, start="2025-03-01")}
    deps, registry, _ = deps_for([item], frames, profile_of([telemetry(3, seed=1)]))
    # Three failures: one caught (alarm 10 min before), two missed; and captures of an older version ignored.
    lines = _lines("v1", {170}) + _lines("v0", {290, 410})
    deps = replace(deps, captures=FakeCaptures(lines), failure_events=FakeEvents(events("M-1", minutes(180, 300, 420))))

    result = check_champion(item, deps, window_days=3, threshold=0.25, now=lambda: NOW,
                            policy=DriftPolicy(min_live_failures=2))

    assert (result.live_failures, result.live_recall, result.concept_drift) == (3, pytest.approx(1 / 3, abs=1e-3),
                                                                                True)
    assert result.live_false_alarm_rate == 0.0 and result.live is not None
    assert result.live["test"] == {"recall": 0.75, "failures": 8, "false_alarm_rate": 0.6,
                                   "false_alarms_per_day": None}
    assert result.live["window_minutes"] == 30.0 and result.live["recall_floor"] == 0.5
    assert registry.recorded[-1][2]["concept_drift"] is True
    # One failure is not enough evidence to call it: the floor needs min_live_failures observed ones.
    strict = check_champion(item, deps, window_days=3, threshold=0.25, now=lambda: NOW,
                            policy=DriftPolicy(min_live_failures=4))
    assert strict.live_recall == result.live_recall and not strict.concept_drift


def test_the_champion_response_shows_live_figures_beside_the_test_ones() -> None:
    from modelforge.logic.models_api import live_performance as shown

    check = {"checked_at": "2025-03-02T00:00:00+00:00", "live_recall": 0.25, "live_false_alarm_rate": 0.5,
             "live_failures": 4, "concept_drift": True,
             "live": {"window_minutes": 30.0, "recall_floor": 0.5,
                      "test": {"recall": 0.75, "failures": 8, "false_alarm_rate": 0.6}}}
    figures = shown(check)
    assert figures is not None
    assert (figures.live_recall, figures.test_recall) == (0.25, 0.75)
    assert (figures.live_false_alarm_rate, figures.test_false_alarm_rate) == (0.5, 0.6)
    assert (figures.live_failures, figures.test_failures, figures.concept_drift) == (4, 8, True)
    assert shown({"status": "stable"}) is None and shown(None) is None
