"""Input drift: how far a model's recent data has moved from the data it was trained on.

The training profile stored beside every model (:mod:`modelforge.domain.profile`) holds each feature's
histogram over fixed edges. Recent telemetry is featurized with the model's own recipe (its feature names,
see :func:`modelforge.domain.features.config_from_names`), machine by machine for a fleet, binned on the same
edges, and compared by the population stability index (PSI). The rule of thumb: below 0.1 stable, 0.1 to the
threshold (default 0.25) moderate, above it drift.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from modelforge.domain.features import build_features, config_from_names
from modelforge.domain.profile import drift_report
from modelforge.domain.telemetry import ValidationConfig, clean_telemetry
from modelforge.errors import DriftDataError

STABLE, MODERATE, DRIFT = "stable", "moderate", "drift"
MODERATE_PSI = 0.1


@dataclass(frozen=True)
class DriftConfig:
    """How champions are checked (the deployment's DriftSettings override these, the only defaults)."""

    window_days: int = 7  # how many days of each machine's newest data a check compares with the profile
    psi_threshold: float = 0.25  # PSI above which a feature has drifted (0.1-0.25 is "moderate")
    retrain: bool = False  # start a retraining job for a champion whose inputs drifted (DriftRetrain)


def recent_features(frames: Mapping[str, pd.DataFrame], feature_names: Sequence[str]) -> np.ndarray:
    """Recent rows of each machine featurized with the model's recipe, stacked (no window spans machines)."""
    sensors, config = config_from_names(feature_names)
    blocks = []
    for machine, frame in frames.items():
        if frame is None or len(frame) == 0:
            continue
        clean = clean_telemetry(frame, machine_name=machine, config=ValidationConfig(min_rows=1),
                                require_rpm_variation=False)
        missing = [s for s in sensors if s not in clean.frame.columns]
        if missing:
            raise DriftDataError(f"the recent telemetry of '{machine}' lacks the model's sensor(s) "
                                 f"{', '.join(missing)}")
        matrix, _ = build_features(clean.frame, sensors, config)
        blocks.append(matrix)
    if not blocks:
        raise DriftDataError(f"no recent telemetry for {', '.join(frames) or 'any machine'}")
    return np.concatenate(blocks)


def summarize_drift(psi: Mapping[str, float], *, threshold: float, rows: int, top: int = 10) -> dict[str, Any]:
    """The verdict for one model: its worst features' PSI and whether any crosses ``threshold``."""
    ranked = sorted(psi.items(), key=lambda kv: -kv[1])
    worst = ranked[0][1] if ranked else 0.0
    status = DRIFT if worst > threshold else MODERATE if worst > MODERATE_PSI else STABLE
    return {
        "status": status,
        "max_psi": round(float(worst), 4),
        "threshold": threshold,
        "rows": rows,
        "features_checked": len(psi),
        "features_over_threshold": sum(1 for _, value in ranked if value > threshold),
        "top_features": [{"feature": name, "psi": round(float(value), 4)} for name, value in ranked[:top]],
    }


def check_drift(frames: Mapping[str, pd.DataFrame], feature_names: Sequence[str], profile: Mapping[str, Any], *,
                threshold: float) -> dict[str, Any]:
    x = recent_features(frames, feature_names)
    return summarize_drift(drift_report(x, feature_names, dict(profile)), threshold=threshold, rows=len(x))
