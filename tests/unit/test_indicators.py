"""The indicator specs: every decision that differs between a status and a health model, in one object each."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from modelforge.domain import pipeline
from modelforge.domain.indicators import HEALTH, INDICATORS, STATUS, EventWording, indicator_spec
from modelforge.domain.labeling import LabelingConfig, Labels
from modelforge.errors import InsufficientDataError

LABELING = LabelingConfig(window_minutes=30, health_horizon_minutes=120)
WORDING = EventWording(before="before 2025-01-20, the test period", test_part="its test period",
                       widen="widen the date range")


def result_with_threshold(threshold: float) -> Any:
    return SimpleNamespace(threshold=SimpleNamespace(threshold=threshold))


def test_specs_are_found_by_name_and_the_pipeline_exports_the_same_names() -> None:
    assert indicator_spec("status") is STATUS and indicator_spec("health") is HEALTH
    assert INDICATORS == pipeline.INDICATORS == ("status", "health")
    with pytest.raises(ValueError, match=r"indicator must be one of \('status', 'health'\), not 'vibes'"):
        indicator_spec("vibes")


def test_each_spec_chooses_its_target_purge_and_event_rows() -> None:
    labels = Labels(label=np.array([0.0, 1.0, np.nan]), time_to_failure=np.array([120.0, 10.0, np.nan]),
                    in_failure=np.zeros(3, dtype=bool), censored_end=np.zeros(3, dtype=bool),
                    episodes=None)  # type: ignore[arg-type]
    assert STATUS.target(labels) is labels.label and HEALTH.target(labels) is labels.time_to_failure
    assert STATUS.purge_minutes(LABELING) == 30 and HEALTH.purge_minutes(LABELING) == 120
    assert STATUS.has_event(np.array([0.0, 1.0]), LABELING).tolist() == [False, True]
    assert HEALTH.has_event(np.array([120.0, 119.0]), LABELING).tolist() == [False, True]


def test_alarms_are_the_threshold_for_status_and_the_window_for_health() -> None:
    predicted = np.array([0.1, 0.3, 0.9])
    assert STATUS.alarm(predicted, result_with_threshold(0.3), LABELING).tolist() == [False, True, True]
    minutes = np.array([10.0, 30.0, 31.0])
    assert HEALTH.alarm(minutes, result_with_threshold(0.3), LABELING).tolist() == [True, True, False]


def test_the_baselines_are_always_alarm_and_the_weighted_training_mean() -> None:
    y_test = np.array([0.0, 1.0, 0.0, 0.0])
    metrics, alarm = STATUS.baseline(y_test, np.zeros(4), np.array([0.0, 1.0]), None, LABELING)
    assert metrics["recall"] == 1.0 and metrics["kind"].startswith("always alarm") and alarm.all()

    minutes = np.array([120.0, 20.0, 120.0])
    metrics, alarm = HEALTH.baseline(minutes, minutes, np.array([10.0, 120.0]), np.array([3.0, 1.0]), LABELING)
    mean = (3 * 10.0 + 120.0) / 4  # sampled rows count as many as they stand for
    assert metrics["mae_near_failure"] == pytest.approx(abs(mean - 20.0))
    assert metrics["kind"] == "constant: the training mean"
    assert alarm.tolist() == [False] * 3  # the mean (37.5 minutes) is outside the 30-minute window


def test_health_metrics_add_the_error_near_failures_and_the_horizon() -> None:
    y_test = np.array([120.0, 20.0, 10.0])
    metrics = HEALTH.metrics(y_test, np.array([120.0, 25.0, 10.0]), result_with_threshold(0.5), LABELING)
    assert metrics["mae_near_failure"] == pytest.approx(2.5) and metrics["horizon_minutes"] == 120
    assert HEALTH.scale_pos_weight(result_with_threshold(0.5)) is None


def test_event_checks_name_the_side_of_the_split_that_lacks_a_failure() -> None:
    with pytest.raises(InsufficientDataError, match=r"no observed pre-failure readings .* before 2025-01-20"):
        STATUS.check_events(np.zeros(3), np.ones(3), model_name="M", labeling=LABELING, wording=WORDING)
    with pytest.raises(InsufficientDataError, match="no failure event in its test period"):
        STATUS.check_events(np.ones(3), np.zeros(3), model_name="M", labeling=LABELING, wording=WORDING)
    # A health model needs a failure in its test rows only: the search checks the training side.
    HEALTH.check_events(np.full(3, 120.0), np.array([120.0, 5.0]), model_name="M", labeling=LABELING,
                        wording=WORDING)
    with pytest.raises(InsufficientDataError, match="'M' has no failure in its test period"):
        HEALTH.check_events(np.zeros(3), np.full(2, 120.0), model_name="M", labeling=LABELING, wording=WORDING)
