"""Thresholds, metrics and event-level numbers (modelforge.domain.evaluation)."""

from __future__ import annotations

import numpy as np
import pytest

from modelforge.domain.evaluation import (
    choose_threshold,
    classification_metrics,
    event_metrics,
    max_recall_at_precision,
    pr_curve_points,
    regression_metrics,
)

MINUTE = 60 * 10**9


def test_recall_at_precision_takes_the_most_recall_the_floor_allows() -> None:
    y = np.array([0, 0, 0, 0, 0, 0, 1, 0, 1, 1])
    scores = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.65, 0.7, 0.8, 0.9])
    choice = choose_threshold(y, scores, metric="recall_at_precision", min_precision=0.75)
    # Flagging >= 0.65 catches all three positives with one false alarm: precision 0.75.
    assert choice.recall == 1.0 and choice.precision == 0.75 and choice.precision_floor_met
    assert 0.6 < choice.threshold <= 0.65

    strict = choose_threshold(y, scores, metric="recall_at_precision", min_precision=0.9)
    assert strict.recall == pytest.approx(2 / 3) and strict.precision == 1.0
    assert 0.7 < strict.threshold <= 0.8


def test_flagging_everything_cannot_win() -> None:
    y = np.r_[np.zeros(990), np.ones(10)]
    constant = np.full(1000, 0.9)
    choice = choose_threshold(y, constant, metric="recall_at_precision", min_precision=0.5)
    assert not choice.precision_floor_met  # recall 1.0, but precision 0.01
    informative = np.r_[np.linspace(0, 0.5, 990), np.linspace(0.6, 1, 10)]
    better = choose_threshold(y, informative, metric="recall_at_precision", min_precision=0.5)
    assert better.objective("recall_at_precision") > choice.objective("recall_at_precision")


def test_threshold_sits_between_the_scores_that_give_the_same_result() -> None:
    y = np.array([0, 0, 0, 1, 1])
    scores = np.array([0.01, 0.02, 0.03, 0.6, 0.9])
    choice = choose_threshold(y, scores, metric="recall_at_precision", min_precision=0.5)
    # Any cut in (0.03, 0.6] is perfect on these rows; the floor allows down to 0.02 (precision 2/3 >= 0.5).
    assert 0.02 <= choice.threshold <= 0.6
    assert choice.recall == 1.0


def test_f2_metric_and_unknown_metric() -> None:
    y = np.array([0, 0, 1, 0, 1])
    scores = np.array([0.1, 0.2, 0.3, 0.4, 0.5])
    choice = choose_threshold(y, scores, metric="f2")
    assert choice.recall == 1.0 and choice.f2 == pytest.approx(5 * (2 / 3) / (4 * (2 / 3) + 1))
    with pytest.raises(ValueError, match="metric"):
        choose_threshold(y, scores, metric="accuracy")


def test_max_recall_at_precision() -> None:
    y = np.array([0, 1, 0, 1])
    assert max_recall_at_precision(y, np.array([0.1, 0.2, 0.3, 0.4]), 0.7) == 0.5
    assert max_recall_at_precision(y, np.array([0.1, 0.2, 0.3, 0.4]), 0.6) == 1.0  # 2 of 3 flagged are right
    assert max_recall_at_precision(y, np.array([0.1, 0.8, 0.3, 0.9]), 0.99) == 1.0
    assert max_recall_at_precision(np.zeros(3), np.array([0.1, 0.2, 0.3]), 0.5) == 0.0


def test_classification_metrics_at_the_threshold() -> None:
    y = np.array([1, 1, 0, 0, 0, 1])
    scores = np.array([0.9, 0.4, 0.8, 0.1, 0.2, 0.7])
    m = classification_metrics(y, scores, 0.5)
    assert m["confusion_matrix"] == {"tn": 2, "fp": 1, "fn": 1, "tp": 2}
    assert m["recall"] == pytest.approx(2 / 3) and m["precision"] == pytest.approx(2 / 3)
    assert m["f2"] == pytest.approx(2 / 3) and m["roc_auc"] == pytest.approx(7 / 9)
    assert classification_metrics(np.zeros(3), np.ones(3), 0.5)["pr_auc"] is None


def test_event_metrics_count_catches_ahead_and_false_alarms() -> None:
    t = np.arange(0, 2000) * MINUTE  # one row a minute
    onsets = np.array([500, 1500]) * MINUTE
    alarm = np.zeros(2000, dtype=bool)
    alarm[480:500] = True  # first failure: alarms from 20 minutes ahead
    alarm[1495:1500] = True  # second: only 5 minutes ahead
    alarm[1000:1003] = True  # nothing follows: a false alarm
    m = event_metrics(t, alarm, onsets, window_minutes=30, lead_minutes=15)

    assert m["events_total"] == 2 and m["events_caught"] == 2 and m["events_caught_ahead"] == 1
    assert m["median_lead_minutes"] == pytest.approx(12.5)
    assert m["false_alarm_episodes"] == 1
    assert m["false_alarms_per_day"] == pytest.approx(1 / (1999 / 1440))


def test_event_metrics_ignore_events_without_evaluated_lead_up_and_alarms_outside_the_window() -> None:
    t = np.arange(1000, 2000) * MINUTE
    onsets = np.array([200, 1600]) * MINUTE  # the first is before the evaluated rows
    alarm = np.zeros(1000, dtype=bool)
    alarm[1600 - 1000 - 60] = True  # an hour early: outside the 30-minute window
    m = event_metrics(t, alarm, onsets, window_minutes=30, lead_minutes=10)
    assert m["events_total"] == 1 and m["events_caught"] == 0 and m["median_lead_minutes"] is None
    assert m["false_alarm_episodes"] == 1


def test_regression_metrics_and_pr_curve() -> None:
    m = regression_metrics(np.array([0.0, 10.0, 20.0]), np.array([0.0, 10.0, 26.0]))
    assert m["rmse"] == pytest.approx(np.sqrt(12)) and m["mae"] == pytest.approx(2.0)
    assert m["r2"] == pytest.approx(1 - 36 / 200)
    curve = pr_curve_points(np.array([0, 1, 0, 1]), np.array([0.1, 0.9, 0.4, 0.6]))
    assert curve["recall"][0] == 1.0 and len(curve["precision"]) == len(curve["threshold"])
