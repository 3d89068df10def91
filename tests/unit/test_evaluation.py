"""Thresholds, metrics and event-level numbers (modelforge.domain.evaluation)."""

from __future__ import annotations

import numpy as np
import pytest

from modelforge.domain.evaluation import (
    choose_threshold,
    choose_threshold_across,
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


def two_machines_one_noisy() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Part 0: ten failures' rows scoring 0.90-0.99, normal rows low. Part 1: ten scoring 0.60-0.70, and two
    normal rows at 0.655 and 0.665 in among them. Part 2: no failure at all (it cannot measure precision)."""
    y = np.r_[np.ones(10), np.zeros(90), np.ones(10), np.zeros(2), np.zeros(88), np.zeros(50)]
    scores = np.r_[np.linspace(0.90, 0.99, 10), np.linspace(0.0, 0.4, 90), np.linspace(0.60, 0.70, 10),
                   0.655, 0.665, np.linspace(0.0, 0.4, 88), np.linspace(0.0, 0.3, 50)]
    parts = np.r_[np.zeros(100), np.ones(100), np.full(50, 2)]
    return y, scores, parts


def test_threshold_across_parts_holds_on_every_part_where_the_pooled_one_holds_on_average() -> None:
    y, scores, parts = two_machines_one_noisy()
    pooled = choose_threshold(y, scores, metric="recall_at_precision", min_precision=0.9)
    # Pooled, alarming from 0.60 catches all 20 with 2 false alarms: precision 20/22 = 0.91 >= 0.9. Part 1
    # alone is then at 10/12 = 0.83, under the floor.
    assert pooled.recall == 1.0 and pooled.precision_floor_met and pooled.threshold <= 0.60
    across = choose_threshold_across(y, scores, parts, metric="recall_at_precision", min_precision=0.9)
    # Every part at >= 0.9 needs the cut above part 1's normal row at 0.665: 0.666..0.70 catch 4 of its 10.
    assert 0.665 < across.threshold <= 0.6667
    assert across.parts == 2 and across.precision_floor_met  # part 2 has no failure: left out
    assert across.worst_precision == 1.0 and across.worst_recall == pytest.approx(0.4)
    assert across.recall == pytest.approx(14 / 20) and across.precision == 1.0
    assert across.objective("recall_at_precision") == (1.0, pytest.approx(0.4))
    assert np.mean(scores[(parts == 1) & (y == 0)] >= across.threshold) == 0


def test_threshold_across_one_part_is_the_pooled_rule() -> None:
    y, scores, _ = two_machines_one_noisy()
    for metric in ("recall_at_precision", "f2"):
        single = choose_threshold_across(y, scores, np.zeros(len(y)), metric=metric, min_precision=0.9)
        assert single == choose_threshold(y, scores, metric=metric, min_precision=0.9)
    with pytest.raises(ValueError, match="metric"):
        choose_threshold_across(y, scores, np.zeros(len(y)), metric="accuracy")


def test_threshold_across_parts_falls_back_to_the_worst_part_f2_when_no_cut_holds_everywhere() -> None:
    y, scores, parts = two_machines_one_noisy()
    scores = np.where((parts == 1) & (y == 0) & (scores > 0.6), 0.999, scores)  # part 1's noise tops all
    across = choose_threshold_across(y, scores, parts, metric="recall_at_precision", min_precision=0.9)
    assert not across.precision_floor_met and across.worst_f2 is not None and across.worst_f2 > 0
    assert across.objective("recall_at_precision") == (0.0, pytest.approx(across.worst_f2))


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
