"""The promotion gate: should a newly trained model (the challenger) replace the champion?

Both are scored on the same recent holdout (the challenger's held-out final period). The challenger is
promoted only if it meets the configured floors and is not worse than the champion beyond a tolerance;
the first model of a machine becomes champion if it meets the floors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class GateConfig:
    min_recall: float = 0.5
    min_precision: float = 0.2
    # How much worse than the champion (absolute, on the same holdout) a challenger may be and still win:
    # retraining on fresh data is worth a little noise in the metric.
    tolerance: float = 0.02
    # health: the challenger's RMSE may exceed the champion's by this fraction.
    rmse_tolerance: float = 0.05
    max_rmse_minutes: float | None = None


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    reason: str


def decide(indicator: str, challenger: dict[str, Any], champion: dict[str, Any] | None,
           config: GateConfig) -> GateDecision:
    if indicator == "status":
        return _decide_status(challenger, champion, config)
    return _decide_health(challenger, champion, config)


def _decide_status(challenger: dict[str, Any], champion: dict[str, Any] | None, config: GateConfig) -> GateDecision:
    recall, precision = float(challenger["recall"]), float(challenger["precision"])
    if recall < config.min_recall:
        return GateDecision(False, f"recall {recall:.3f} is below the floor {config.min_recall:.3f}")
    if precision < config.min_precision:
        return GateDecision(False, f"precision {precision:.3f} is below the floor {config.min_precision:.3f}")
    if champion is None:
        return GateDecision(True, f"first model that meets the floors (recall {recall:.3f}, precision "
                                  f"{precision:.3f})")
    # F2 weighs recall twice: missing a failure costs more than a false alarm.
    ours, theirs = float(challenger["f2"]), float(champion["f2"])
    if ours + config.tolerance < theirs:
        return GateDecision(False, f"F2 {ours:.3f} on the shared holdout is worse than the champion's "
                                   f"{theirs:.3f} by more than {config.tolerance:.3f}")
    return GateDecision(True, f"F2 {ours:.3f} vs champion {theirs:.3f} on the shared holdout (recall {recall:.3f}, "
                              f"precision {precision:.3f})")


def _decide_health(challenger: dict[str, Any], champion: dict[str, Any] | None, config: GateConfig) -> GateDecision:
    rmse = float(challenger["rmse"])
    if config.max_rmse_minutes is not None and rmse > config.max_rmse_minutes:
        return GateDecision(False, f"RMSE {rmse:.1f} min is above the ceiling {config.max_rmse_minutes:.1f}")
    baseline = challenger.get("baseline_rmse")
    if baseline is not None and rmse >= float(baseline):
        return GateDecision(False, f"RMSE {rmse:.1f} min does not beat predicting the mean ({float(baseline):.1f})")
    if champion is None:
        return GateDecision(True, f"first model that meets the floors (RMSE {rmse:.1f} min)")
    theirs = float(champion["rmse"])
    if rmse > theirs * (1 + config.rmse_tolerance):
        return GateDecision(False, f"RMSE {rmse:.1f} min on the shared holdout is worse than the champion's "
                                   f"{theirs:.1f} by more than {config.rmse_tolerance:.0%}")
    return GateDecision(True, f"RMSE {rmse:.1f} min vs champion {theirs:.1f} on the shared holdout")
