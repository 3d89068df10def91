"""How a model is judged: the decision threshold (chosen on validation data only), metrics on the held-out
final period, the same for a trivial baseline, and the event-level numbers a maintenance team cares about.

Selection metrics
    ``recall_at_precision`` (default): the highest recall whose precision is at least ``min_precision``. A
    model that flags everything has recall 1.0 but precision = prevalence, so it cannot win. When no
    threshold reaches the floor, the F2-best threshold is used and ``precision_floor_met`` is false.
    ``f2``: the F-beta score with beta=2 (recall weighs four times as much as precision).

Thresholds that hold across partitions (``choose_threshold_across``)
    A threshold picked on the pooled validation rows meets the precision floor *on average*: one validation
    machine whose normal rows score high can sit under a pooled precision of 0.96 and break it on the next
    fleet. With the validation rows in partitions (whole machines per part, as a fleet's search draws them),
    the rule is the worst part's: a threshold is feasible only when *every* part with a failure reaches
    ``min_precision``, and among the feasible ones the highest *worst-part* recall wins (the F2 of the worst
    part when no threshold is feasible everywhere). It is never less conservative than the pooled rule on
    the same rows, and equals it with one part. Ties are broken as in ``choose_threshold``: the middle, in
    log-odds, of the run of equally good thresholds that starts at the most sensitive one.

Event metrics (``event_metrics``)
    An event is a failure onset in the evaluated period whose lead-up has readings there. It is *caught* when
    some row in ``[onset - window, onset)`` raises an alarm, and *caught ahead* when that alarm comes at least
    ``lead_minutes`` before the onset, i.e. the team had that long to act. A *false alarm* is a run of
    alarms (rows less than ``window`` apart) that touches no pre-failure window.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.metrics import (
    average_precision_score,
    mean_absolute_error,
    mean_squared_error,
    precision_recall_curve,
    r2_score,
    roc_auc_score,
)

from modelforge.domain.units import MINUTE_NS

SELECTION_METRICS = ("recall_at_precision", "f2")


@dataclass(frozen=True)
class ThresholdChoice:
    threshold: float
    recall: float  # pooled over the validation rows, at ``threshold``
    precision: float
    f2: float
    precision_floor_met: bool  # across parts: met by every part
    parts: int = 1  # the partitions the rule held across (1: the pooled rows only)
    worst_recall: float | None = None  # across parts: the lowest part's, at ``threshold``
    worst_precision: float | None = None
    worst_f2: float | None = None

    def objective(self, metric: str) -> tuple[float, ...]:
        """Larger is better; compared lexicographically (across parts: the worst part's numbers)."""
        recall = self.recall if self.worst_recall is None else self.worst_recall
        f2 = self.f2 if self.worst_f2 is None else self.worst_f2
        if metric == "f2":
            return (f2,)
        return (float(self.precision_floor_met), recall if self.precision_floor_met else f2)


def choose_threshold(y: np.ndarray, scores: np.ndarray, *, metric: str = "recall_at_precision",
                     min_precision: float = 0.5, weight: np.ndarray | None = None) -> ThresholdChoice:
    """The decision threshold for ``scores`` on *validation* rows ``y`` (never the test set).

    Among the thresholds that reach the best value of ``metric``, the one halfway (in log-odds) between the
    lowest and the highest is returned: recall is the same across that range, and the middle keeps a margin
    on both sides for new data.
    """
    if metric not in SELECTION_METRICS:
        raise ValueError(f"metric must be one of {SELECTION_METRICS}, not {metric!r}")
    y = np.asarray(y)
    if y.sum() == 0 or (y > 0).all():
        return ThresholdChoice(0.5, 0.0, 0.0, 0.0, False)
    precision, recall, thresholds = precision_recall_curve(y, scores, sample_weight=weight)
    precision, recall = precision[:-1], recall[:-1]  # the last point has no threshold
    with np.errstate(divide="ignore", invalid="ignore"):
        f2 = np.nan_to_num(5 * precision * recall / (4 * precision + recall))
    feasible = precision >= min_precision
    if metric == "recall_at_precision" and feasible.any():
        chosen = np.flatnonzero(feasible & (recall >= recall[feasible].max() - 1e-12))
    else:
        chosen = np.flatnonzero(f2 >= f2.max() - 1e-12)
    lo, hi = int(chosen.min()), int(chosen.max())
    threshold = _logit_midpoint(float(thresholds[lo]), float(thresholds[hi]))
    # Report the validation numbers at the threshold actually returned.
    index = min(max(int(np.searchsorted(thresholds, threshold, side="right")) - 1, lo), hi)
    return ThresholdChoice(threshold=threshold, recall=float(recall[index]), precision=float(precision[index]),
                           f2=float(f2[index]), precision_floor_met=bool(precision[index] >= min_precision))


def choose_threshold_across(y: np.ndarray, scores: np.ndarray, parts: np.ndarray, *,
                            metric: str = "recall_at_precision", min_precision: float = 0.5,
                            weight: np.ndarray | None = None) -> ThresholdChoice:
    """The threshold that holds on every part of the validation rows (``parts``: a label per row), by the
    worst part's objective (see the module docstring). Parts without a failure cannot measure precision or
    recall and are left out; with fewer than two parts left this is :func:`choose_threshold` on all rows."""
    if metric not in SELECTION_METRICS:
        raise ValueError(f"metric must be one of {SELECTION_METRICS}, not {metric!r}")
    y, scores, parts = np.asarray(y) > 0, np.asarray(scores, dtype=float), np.asarray(parts)
    w = np.ones(len(y)) if weight is None else np.asarray(weight, dtype=float)
    labels = [p for p in np.unique(parts) if y[parts == p].any()]
    if len(labels) < 2 or y.all():
        return choose_threshold(y.astype(int), scores, metric=metric, min_precision=min_precision, weight=weight)
    candidates = np.unique(scores)
    tables = [_counts_at(candidates, scores[parts == p], y[parts == p], w[parts == p]) for p in labels]
    precision = np.array([tp / np.maximum(tp + fp, 1e-300) * (tp + fp > 0) for tp, fp, _ in tables])
    recall = np.array([tp / positives for tp, _, positives in tables])
    with np.errstate(divide="ignore", invalid="ignore"):
        f2 = np.nan_to_num(5 * precision * recall / (4 * precision + recall))
    feasible = (precision >= min_precision).all(axis=0)
    if metric == "recall_at_precision" and feasible.any():
        worst = np.where(feasible, recall.min(axis=0), -1.0)
    else:
        worst = f2.min(axis=0)
    chosen = worst >= worst.max() - 1e-12
    lo = int(np.flatnonzero(chosen)[0])
    hi = lo + int(np.argmin(np.r_[chosen[lo:], False])) - 1  # the run of equally good thresholds from lo
    threshold = _logit_midpoint(float(candidates[lo]), float(candidates[hi]))
    return _choice_at(threshold, y, scores, parts, labels, w, min_precision)


def _counts_at(candidates: np.ndarray, scores: np.ndarray, y: np.ndarray,
               w: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Weighted true and false alarms of one part when alarming at ``scores >= c``, for every candidate c."""
    order = np.argsort(scores, kind="stable")
    s, pos, neg = scores[order], (w * y)[order], (w * ~y)[order]
    below = np.searchsorted(s, candidates, side="left")  # rows under each candidate: not alarmed
    tail_pos, tail_neg = np.r_[np.cumsum(pos[::-1])[::-1], 0.0], np.r_[np.cumsum(neg[::-1])[::-1], 0.0]
    return tail_pos[below], tail_neg[below], float(pos.sum())


def _choice_at(threshold: float, y: np.ndarray, scores: np.ndarray, parts: np.ndarray, labels: list[Any],
               w: np.ndarray, min_precision: float) -> ThresholdChoice:
    """The pooled and the worst part's numbers at the threshold actually returned."""
    def numbers(rows: np.ndarray) -> tuple[float, float, float]:
        alarm = scores[rows] >= threshold
        tp, fp = float(w[rows][alarm & y[rows]].sum()), float(w[rows][alarm & ~y[rows]].sum())
        positives = float(w[rows][y[rows]].sum())
        precision, recall = (tp / (tp + fp) if tp + fp else 0.0), (tp / positives if positives else 0.0)
        return precision, recall, _fbeta(precision, recall, 2.0)

    pooled = numbers(np.arange(len(y)))
    each = np.array([numbers(np.flatnonzero(parts == p)) for p in labels])
    return ThresholdChoice(threshold=threshold, recall=pooled[1], precision=pooled[0], f2=pooled[2],
                           precision_floor_met=bool((each[:, 0] >= min_precision).all()), parts=len(labels),
                           worst_recall=float(each[:, 1].min()), worst_precision=float(each[:, 0].min()),
                           worst_f2=float(each[:, 2].min()))


def _logit_midpoint(lo: float, hi: float) -> float:
    eps = 1e-7
    lo_c, hi_c = np.clip([lo, hi], eps, 1 - eps)
    mid = (np.log(lo_c / (1 - lo_c)) + np.log(hi_c / (1 - hi_c))) / 2
    value = float(1 / (1 + np.exp(-mid)))
    return min(max(value, lo), hi)


def max_recall_at_precision(y: np.ndarray, scores: np.ndarray, min_precision: float) -> float:
    """Threshold-free: the best recall any threshold reaches with precision >= ``min_precision``."""
    if y.sum() == 0:
        return 0.0
    precision, recall, _ = precision_recall_curve(y, scores)
    feasible = precision[:-1] >= min_precision
    return float(recall[:-1][feasible].max()) if feasible.any() else 0.0


def classification_metrics(y_true: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, Any]:
    y_true = np.asarray(y_true).astype(int)
    predicted = np.asarray(scores) >= threshold
    tp = int((predicted & (y_true == 1)).sum())
    fp = int((predicted & (y_true == 0)).sum())
    fn = int((~predicted & (y_true == 1)).sum())
    tn = int((~predicted & (y_true == 0)).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    both_classes = 0 < y_true.sum() < len(y_true)
    return {
        "threshold": float(threshold),
        "recall": recall,
        "precision": precision,
        "f1": _fbeta(precision, recall, 1.0),
        "f2": _fbeta(precision, recall, 2.0),
        "pr_auc": float(average_precision_score(y_true, scores)) if both_classes else None,
        "roc_auc": float(roc_auc_score(y_true, scores)) if both_classes else None,
        "confusion_matrix": {"tn": tn, "fp": fp, "fn": fn, "tp": tp},
        "positives": int(y_true.sum()),
        "rows": len(y_true),
    }


def _fbeta(precision: float, recall: float, beta: float) -> float:
    denominator = beta**2 * precision + recall
    return float((1 + beta**2) * precision * recall / denominator) if denominator else 0.0


def regression_metrics(y_true: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    return {
        "rmse": float(np.sqrt(mean_squared_error(y_true, predicted))),
        "mae": float(mean_absolute_error(y_true, predicted)),
        "r2": float(r2_score(y_true, predicted)) if len(y_true) > 1 and np.ptp(y_true) > 0 else None,
        "rows": len(y_true),
    }


def event_metrics(t: np.ndarray, alarm: np.ndarray, onsets_ns: np.ndarray, *, window_minutes: float,
                  lead_minutes: float) -> dict[str, Any]:
    """Event-level view of the alarms raised on the evaluated rows ``t`` (sorted epoch ns). Every onset in
    ``onsets_ns`` with at least one evaluated row in its lead-up ``[onset - window, onset)`` is an event."""
    window_ns = int(window_minutes * MINUTE_NS)
    lead_start = onsets_ns - window_ns
    observed = np.searchsorted(t, onsets_ns, side="left") > np.searchsorted(t, lead_start, side="left")
    onsets, lead_start = onsets_ns[observed], lead_start[observed]
    alarm_times = t[np.asarray(alarm, dtype=bool)]

    leads = np.full(len(onsets), np.nan)  # minutes between the first alarm in the lead-up and the onset
    first = np.searchsorted(alarm_times, lead_start, side="left")
    candidates = np.flatnonzero(first < len(alarm_times))
    first_alarm = alarm_times[first[candidates]]
    hit = first_alarm < onsets[candidates]
    leads[candidates[hit]] = (onsets[candidates[hit]] - first_alarm[hit]) / MINUTE_NS
    caught = ~np.isnan(leads)
    caught_ahead = caught & (np.nan_to_num(leads) >= lead_minutes - 1e-9)

    false_runs = 0
    if len(alarm_times):
        run_id = np.cumsum(np.r_[True, np.diff(alarm_times) > window_ns]) - 1
        following = np.searchsorted(onsets_ns, alarm_times, side="right")
        in_lead_up = np.zeros(len(alarm_times), dtype=bool)
        has_next = following < len(onsets_ns)
        in_lead_up[has_next] = onsets_ns[following[has_next]] - alarm_times[has_next] <= window_ns
        touched = np.zeros(run_id[-1] + 1, dtype=bool)
        touched[run_id[in_lead_up]] = True
        false_runs = int((~touched).sum())
    days = max(float(t[-1] - t[0]) / (1440 * MINUTE_NS), 1 / 1440) if len(t) else 0.0
    return {
        "events_total": len(onsets),
        "events_caught": int(caught.sum()),
        "events_caught_ahead": int(caught_ahead.sum()),
        "lead_minutes": float(lead_minutes),
        "median_lead_minutes": float(np.median(leads[caught])) if caught.any() else None,
        "false_alarm_episodes": false_runs,
        "false_alarms_per_day": float(false_runs / days) if days else 0.0,
        "evaluated_days": days,
    }


def pr_curve_points(y: np.ndarray, scores: np.ndarray, max_points: int = 400) -> dict[str, list[float]]:
    """A downsampled precision-recall curve for plotting."""
    if y.sum() == 0:
        return {"precision": [], "recall": [], "threshold": []}
    precision, recall, thresholds = precision_recall_curve(y, scores)
    keep = np.unique(np.linspace(0, len(thresholds) - 1, min(max_points, len(thresholds))).astype(int))
    return {"precision": precision[keep].tolist(), "recall": recall[keep].tolist(),
            "threshold": thresholds[keep].tolist()}


def fleet_event_metrics(t: np.ndarray, group: np.ndarray, alarm: np.ndarray, onsets: np.ndarray,
                        onset_group: np.ndarray, *, window_minutes: float, lead_minutes: float) -> dict[str, Any]:
    """:func:`event_metrics` machine by machine (each on its own timeline), summed."""
    if len(np.unique(group)) <= 1 and len(np.unique(onset_group)) <= 1:
        order = np.argsort(t, kind="stable")
        return event_metrics(t[order], alarm[order], np.sort(onsets), window_minutes=window_minutes,
                             lead_minutes=lead_minutes)
    totals: dict[str, Any] = {"events_total": 0, "events_caught": 0, "events_caught_ahead": 0,
                              "false_alarm_episodes": 0, "evaluated_days": 0.0}
    leads: list[float] = []
    for machine in np.unique(group):
        rows = np.flatnonzero(group == machine)
        rows = rows[np.argsort(t[rows], kind="stable")]
        part = event_metrics(t[rows], alarm[rows], np.sort(onsets[onset_group == machine]),
                             window_minutes=window_minutes, lead_minutes=lead_minutes)
        for key in totals:
            totals[key] += part[key]
        if part["median_lead_minutes"] is not None:
            leads.append(part["median_lead_minutes"])
    days = totals["evaluated_days"]
    return {**totals, "lead_minutes": float(lead_minutes),
            "median_lead_minutes": float(np.median(leads)) if leads else None,
            "false_alarms_per_day": float(totals["false_alarm_episodes"] / days) if days else 0.0}
