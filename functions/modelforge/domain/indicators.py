"""What differs between the two indicators a model can predict, in one object each.

The training pipeline (:mod:`modelforge.domain.pipeline`) is the same for both indicators except for a
handful of decisions; each :class:`IndicatorSpec` makes all of them, so the pipeline's stages ask the spec
rather than branch on the indicator's name:

============================  ===================================  ======================================
decision                      ``status`` (:data:`STATUS`)          ``health`` (:data:`HEALTH`)
============================  ===================================  ======================================
target (:meth:`target`)       the pre-failure label (0/1)          minutes to the next failure, capped
purge at a cut in time        ``window_minutes``                   ``health_horizon_minutes``
a row "shows an event"        label > 0                            target < the cap
search                        :func:`search_classifier`            :func:`search_regressor`
alarm                         probability >= validation threshold  predicted minutes <= ``window_minutes``
baseline                      always alarm (flags every row)       the training mean, everywhere
events the split must hold    pre-failure rows in train and test   a row under the cap in test
============================  ===================================  ======================================

The spec holds no state: :data:`STATUS` and :data:`HEALTH` are the only instances, found by name with
:func:`indicator_spec`. Every computation here is the one the pipeline made inline before it was split
into stages, operation for operation, so that trained models stay bit-identical.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np

from modelforge.domain.evaluation import classification_metrics, regression_metrics
from modelforge.domain.labeling import LabelingConfig, Labels
from modelforge.domain.search import SearchConfig, SearchResult, search_classifier, search_regressor
from modelforge.errors import InsufficientDataError

__all__ = ["HEALTH", "INDICATORS", "STATUS", "EventWording", "HealthIndicator", "IndicatorSpec",
           "StatusIndicator", "indicator_spec"]


@dataclass(frozen=True)
class EventWording:
    """How an error about missing failure events names the data's parts; it depends on the holdout (a cut in
    time or whole machines), not on the indicator, so the pipeline's plan words it and the spec uses it."""

    before: str  # where training data lies: "before 2025-01-20, the test period", "in its training machines"
    test_part: str  # where test data lies: "its test period (...)", "its held-out machines"
    widen: str  # what the user can do about it


class IndicatorSpec(ABC):
    """The indicator-specific decisions of the training pipeline (see the module docstring)."""

    name: str

    @abstractmethod
    def target(self, labels: Labels) -> np.ndarray:
        """The value to learn on every row; NaN where it is unknown (those rows are not used)."""

    @abstractmethod
    def purge_minutes(self, labeling: LabelingConfig) -> float:
        """The gap left at a cut in time, so that no training row's target sees past the cut."""

    @abstractmethod
    def has_event(self, y: np.ndarray, labeling: LabelingConfig) -> np.ndarray:
        """Rows that show a failure ahead: what a split by machines must put on both sides."""

    @abstractmethod
    def check_events(self, y_train: np.ndarray, y_test: np.ndarray, *, model_name: str,
                     labeling: LabelingConfig, wording: EventWording) -> None:
        """Raises :class:`InsufficientDataError` when a side of the split holds no failure to learn or to
        evaluate on: a model that saw none predicts nothing, and a test period with none proves nothing."""

    @abstractmethod
    def search(self, x: np.ndarray, y: np.ndarray, t: np.ndarray, feature_names: list[str],
               config: SearchConfig, *, purge_minutes: float, weight: np.ndarray | None,
               groups: np.ndarray | None) -> SearchResult:
        """Chooses hyperparameters on validation data and trains the model."""

    @abstractmethod
    def alarm(self, predicted: np.ndarray, result: SearchResult, labeling: LabelingConfig) -> np.ndarray:
        """Rows the model alarms on: what the event metrics (caught ahead, false alarms) count."""

    @abstractmethod
    def metrics(self, y_test: np.ndarray, predicted: np.ndarray, result: SearchResult,
                labeling: LabelingConfig) -> dict[str, Any]:
        """The model's row-level metrics on the held-out rows (event metrics are added by the pipeline)."""

    @abstractmethod
    def baseline(self, y_test: np.ndarray, predicted: np.ndarray, fit_y: np.ndarray, weight: np.ndarray | None,
                 labeling: LabelingConfig) -> tuple[dict[str, Any], np.ndarray]:
        """The trivial model a trained one must beat: its row-level metrics and its alarm per held-out row.
        ``fit_y``/``weight``: the targets (and sampling weights) the model was fitted on."""

    def scale_pos_weight(self, result: SearchResult) -> float | None:
        """The class weight the booster was trained with (classifiers only; None otherwise)."""
        return None


class StatusIndicator(IndicatorSpec):
    """A classifier of "fails within ``window_minutes``", judged at a threshold chosen on validation data."""

    name = "status"

    def target(self, labels: Labels) -> np.ndarray:
        return labels.label

    def purge_minutes(self, labeling: LabelingConfig) -> float:
        return labeling.window_minutes

    def has_event(self, y: np.ndarray, labeling: LabelingConfig) -> np.ndarray:
        return y > 0

    def check_events(self, y_train: np.ndarray, y_test: np.ndarray, *, model_name: str,
                     labeling: LabelingConfig, wording: EventWording) -> None:
        if y_train.sum() == 0:
            raise InsufficientDataError(
                f"'{model_name}' has no observed pre-failure readings (the "
                f"{labeling.window_minutes} minutes before a failure) {wording.before}: {wording.widen}")
        if y_test.sum() == 0:
            raise InsufficientDataError(
                f"'{model_name}' has no failure event in {wording.test_part}: widen the data so that the model "
                "can be evaluated")

    def search(self, x: np.ndarray, y: np.ndarray, t: np.ndarray, feature_names: list[str],
               config: SearchConfig, *, purge_minutes: float, weight: np.ndarray | None,
               groups: np.ndarray | None) -> SearchResult:
        return search_classifier(x, y, t, feature_names, config, purge_minutes=purge_minutes, weight=weight,
                                 groups=groups)

    def alarm(self, predicted: np.ndarray, result: SearchResult, labeling: LabelingConfig) -> np.ndarray:
        return predicted >= _threshold(result)

    def metrics(self, y_test: np.ndarray, predicted: np.ndarray, result: SearchResult,
                labeling: LabelingConfig) -> dict[str, Any]:
        return classification_metrics(y_test, predicted, _threshold(result))

    def baseline(self, y_test: np.ndarray, predicted: np.ndarray, fit_y: np.ndarray, weight: np.ndarray | None,
                 labeling: LabelingConfig) -> tuple[dict[str, Any], np.ndarray]:
        baseline = classification_metrics(y_test, np.ones_like(predicted), 0.5)  # flags everything
        baseline["kind"] = "always alarm (flags every row)"
        return baseline, np.ones(len(predicted), dtype=bool)

    def scale_pos_weight(self, result: SearchResult) -> float | None:
        # Read back from the booster rather than from the search's params: it is what the model was trained with.
        config = json.loads(result.booster.save_config())
        value = config["learner"].get("objective", {}).get("reg_loss_param", {}).get("scale_pos_weight")
        return float(value) if value is not None else None


class HealthIndicator(IndicatorSpec):
    """A regressor of the minutes to the next failure, capped at ``health_horizon_minutes``; it alarms when the
    predicted minutes fall within ``window_minutes``, so its events caught compare with a status model's."""

    name = "health"

    def target(self, labels: Labels) -> np.ndarray:
        return labels.time_to_failure

    def purge_minutes(self, labeling: LabelingConfig) -> float:
        return labeling.health_horizon_minutes

    def has_event(self, y: np.ndarray, labeling: LabelingConfig) -> np.ndarray:
        return y < labeling.health_horizon_minutes

    def check_events(self, y_train: np.ndarray, y_test: np.ndarray, *, model_name: str,
                     labeling: LabelingConfig, wording: EventWording) -> None:
        # Training rows need no failure here: the search refuses a validation cut without one on each side.
        if not (y_test < labeling.health_horizon_minutes).any():
            raise InsufficientDataError(
                f"'{model_name}' has no failure in {wording.test_part}: widen the data so that the model can be "
                "evaluated")

    def search(self, x: np.ndarray, y: np.ndarray, t: np.ndarray, feature_names: list[str],
               config: SearchConfig, *, purge_minutes: float, weight: np.ndarray | None,
               groups: np.ndarray | None) -> SearchResult:
        return search_regressor(x, y, t, feature_names, config, purge_minutes=purge_minutes, weight=weight,
                                groups=groups)

    def alarm(self, predicted: np.ndarray, result: SearchResult, labeling: LabelingConfig) -> np.ndarray:
        return predicted <= labeling.window_minutes

    def metrics(self, y_test: np.ndarray, predicted: np.ndarray, result: SearchResult,
                labeling: LabelingConfig) -> dict[str, Any]:
        horizon = labeling.health_horizon_minutes
        metrics = regression_metrics(y_test, predicted)
        near = y_test < horizon
        # The rows that matter most: an error of an hour is harmless far from a failure, not close to one.
        metrics["mae_near_failure"] = (float(np.mean(np.abs(predicted[near] - y_test[near])))
                                       if near.any() else None)
        metrics["horizon_minutes"] = horizon
        return metrics

    def baseline(self, y_test: np.ndarray, predicted: np.ndarray, fit_y: np.ndarray, weight: np.ndarray | None,
                 labeling: LabelingConfig) -> tuple[dict[str, Any], np.ndarray]:
        near = y_test < labeling.health_horizon_minutes
        # Weighted like the fit, so that sampling the far rows does not pull the mean towards failures.
        mean = float(np.average(fit_y, weights=weight))
        baseline = regression_metrics(y_test, np.full(len(y_test), mean))
        baseline["mae_near_failure"] = float(np.mean(np.abs(mean - y_test[near]))) if near.any() else None
        baseline["kind"] = "constant: the training mean"
        return baseline, np.full(len(predicted), mean <= labeling.window_minutes)


STATUS = StatusIndicator()
HEALTH = HealthIndicator()
_SPECS: dict[str, IndicatorSpec] = {spec.name: spec for spec in (STATUS, HEALTH)}
INDICATORS = tuple(_SPECS)


def indicator_spec(name: str) -> IndicatorSpec:
    """The spec of indicator ``name``; ValueError for any other name (the API validates it first)."""
    try:
        return _SPECS[name]
    except KeyError:
        raise ValueError(f"indicator must be one of {INDICATORS}, not {name!r}") from None


def _threshold(result: SearchResult) -> float:
    # A classifier's search always chooses a threshold on validation data; a missing one is a bug, not data.
    assert result.threshold is not None
    return result.threshold.threshold
