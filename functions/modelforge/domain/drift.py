"""Input drift: how far a model's recent data has moved from the data it was trained on.

The training profile stored beside every model (:mod:`modelforge.domain.profile`) holds each feature's
histogram over fixed edges, its range, missing fraction and (profile version 2) a bounded reference sample.
Recent telemetry is featurized with the model's own recipe (its stored :mod:`modelforge.domain.recipe`
document, operating regimes included; for older models, its feature names), machine by machine for a fleet,
and each feature is compared with its profile four ways:

* the population stability index (PSI) over the profile's bins (below 0.1 stable, 0.1 to ``psi_threshold``
  moderate, above it drifted);
* a two-sample test chosen by the number of training rows as Evidently does (:mod:`.drift_stats`: K-S up to
  1,000 rows, normed Wasserstein above), which says whether the feature drifted;
* the change of its missing-value rate, and the share of its values outside the training range (reported,
  not part of the verdict: a sensor gone silent or out of range is named, whatever its distribution).

The model's verdict follows Evidently's dataset drift: ``drift`` when the share of features whose test says
drifted reaches ``drift_share`` (default 0.5, Evidently's), or when one feature's test says drifted and its PSI
is over ``psi_threshold`` as well (a sensor far off its training range moves only the few features built on
it: a share alone would miss it); ``moderate`` when some feature drifted (or its PSI is over 0.1), else
``stable``. A profile without reference samples (a model trained before they were stored)
is judged by PSI alone, as before: ``drift`` when a feature's PSI exceeds ``psi_threshold``, and the result says
``method: psi_only``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from modelforge.domain import drift_stats
from modelforge.domain.labeling import LabelingConfig, label_failures
from modelforge.domain.profile import drift_report
from modelforge.domain.recipe import FeatureRecipe
from modelforge.domain.telemetry import RPM_VARIATION, ValidationConfig, clean_telemetry
from modelforge.errors import DriftDataError

STABLE, MODERATE, DRIFT = "stable", "moderate", "drift"
MODERATE_PSI = 0.1
TWO_SAMPLE, PSI_ONLY = "two_sample", "psi_only"
PSI_ONLY_MESSAGE = ("the champion's training profile has no reference samples (trained before they were "
                    "stored): judged by PSI only; retrain it for the two-sample tests")


@dataclass(frozen=True)
class DriftConfig:
    """How champions are checked (the deployment's DriftSettings override these, the only defaults)."""

    window_days: int = 7  # how many days of each machine's newest data a check compares with the profile
    psi_threshold: float = 0.25  # PSI above which a feature has drifted (0.1-0.25 is "moderate")
    # The share of the recipe's features whose two-sample test says drifted at which the model has drifted
    # (Evidently's dataset drift default, 0.5).
    drift_share: float = 0.5
    ks_p_value: float = drift_stats.KS_P_VALUE  # Evidently's defaults for the per-feature tests
    wasserstein_threshold: float = drift_stats.WASSERSTEIN_THRESHOLD
    ks_max_reference_rows: int = drift_stats.KS_MAX_REFERENCE_ROWS
    # Concept drift: the champion's live recall on captured predictions (see modelforge.domain.live).
    live_window_days: int = 30  # how many days of captured requests (by request day) a check reads
    live_recall_floor: float = 0.5  # live recall below this is concept drift (the gate's min_recall default)
    min_live_failures: int = 2  # fewer observed failures than this say nothing about recall yet
    max_capture_objects: int = 5000  # newest capture objects read per check (one per request)


def recent_features(frames: Mapping[str, pd.DataFrame], feature_names: Sequence[str],
                    recipe: FeatureRecipe | None = None, *, labeling: LabelingConfig | None = None,
                    events: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
    """Recent rows of each machine featurized with the model's recipe (its stored document, else the one its
    feature names spell), stacked (no window spans machines), the rows of a machine in service only (see
    :func:`in_service`). ``events``: recorded failure times (epoch ns) per machine, for a model that learnt
    from records; without them a failure is an RPM drop in the telemetry, as in training."""
    recipe = recipe or FeatureRecipe.from_feature_names(feature_names)
    sensors = recipe.input_columns
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
        matrix, _ = recipe.build(clean.frame)  # on every row: a window reaches back over a failure, as in training
        blocks.append(matrix[in_service(clean.frame, labeling or LabelingConfig(), (events or {}).get(machine))])
    if not blocks:
        raise DriftDataError(f"no recent telemetry for {', '.join(frames) or 'any machine'}")
    return np.concatenate(blocks)


def in_service(frame: pd.DataFrame, labeling: LabelingConfig, events_ns: np.ndarray | None) -> np.ndarray:
    """Which rows are of the machine in service: training never learns from a machine down or recovering from
    a failure (``Labels.in_failure``), so the profile holds no such row, and comparing them with it would call
    each failure in the window data drift (a stopped pump reads zero rpm, far outside its training range).
    Telemetry with neither recorded failures nor the RPM variation to find them in keeps every row."""
    if events_ns is None and RPM_VARIATION not in frame.columns:
        return np.ones(len(frame), dtype=bool)
    return ~label_failures(frame, labeling, events_ns).in_failure


def compare_features(x: np.ndarray, feature_names: Sequence[str], profile: Mapping[str, Any],
                     config: DriftConfig) -> list[dict[str, Any]]:
    """Each profiled feature of new rows ``x``: PSI, the two-sample test (when the profile has a reference
    sample), the missing-value rate change and the share out of the training range."""
    psi = drift_report(x, feature_names, dict(profile))
    compared = []
    for j, name in enumerate(feature_names):
        entry = profile["features"].get(name)
        if name not in psi or not entry:
            continue
        column = np.asarray(x[:, j], dtype="float64")
        finite = column[np.isfinite(column)]
        outside = (finite < entry["min"]) | (finite > entry["max"])
        row: dict[str, Any] = {
            "feature": name, "psi": _round(psi[name]),
            "missing_fraction": _round(1 - len(finite) / max(len(column), 1)),
            "missing_change": _round(1 - len(finite) / max(len(column), 1) - entry.get("missing_fraction", 0.0)),
            "out_of_range_share": _round(outside.mean()) if len(finite) else 0.0,
        }
        reference = entry.get("reference")
        test = None if reference is None else drift_stats.two_sample_test(
            np.asarray(reference["values"], dtype="float64"), finite, reference_rows=int(reference["rows"]),
            ks_p_value_threshold=config.ks_p_value, wasserstein_threshold=config.wasserstein_threshold,
            ks_max_reference_rows=config.ks_max_reference_rows)
        if test is not None:
            row.update(test=test.test, score=_round(test.score), statistic=_round(test.statistic),
                       test_threshold=test.threshold, drifted=bool(test.drifted))
        compared.append(row)
    return compared


def summarize_features(compared: Sequence[Mapping[str, Any]], *, config: DriftConfig, rows: int,
                       top: int = 10) -> dict[str, Any]:
    """The verdict for one model (see the module's docstring) and its worst features first."""
    tested = [f for f in compared if "drifted" in f]
    drifted = [f for f in tested if f["drifted"]]
    worst_psi = max((f["psi"] for f in compared), default=0.0)
    share = len(drifted) / len(tested) if tested else None
    if share is None:
        status = DRIFT if worst_psi > config.psi_threshold else MODERATE if worst_psi > MODERATE_PSI else STABLE
    else:
        # A feature that both measures call drifted, its PSI over the threshold, is drift on its own: a sensor
        # offset far outside its range moves a few of the recipe's features, never half of them.
        severe = any(f["psi"] > config.psi_threshold for f in drifted)
        status = DRIFT if share >= config.drift_share or severe \
            else MODERATE if drifted or worst_psi > MODERATE_PSI else STABLE
    ranked = sorted(compared, key=lambda f: (not f.get("drifted", False), -f["psi"]))
    return {
        "status": status,
        "method": TWO_SAMPLE if tested else PSI_ONLY,
        "message": None if tested else PSI_ONLY_MESSAGE,
        "max_psi": round(float(worst_psi), 4),
        "threshold": config.psi_threshold,
        "rows": rows,
        "features_checked": len(compared),
        "features_over_threshold": sum(1 for f in compared if f["psi"] > config.psi_threshold),
        "features_tested": len(tested),
        "features_drifted": len(drifted),
        "drift_share": None if share is None else round(share, 4),
        "drift_share_threshold": config.drift_share,
        "max_missing_change": max((f["missing_change"] for f in compared), default=0.0),
        "max_out_of_range_share": max((f["out_of_range_share"] for f in compared), default=0.0),
        "top_features": [dict(f) for f in ranked[:top]],
        "features": [dict(f) for f in compared],
    }


def check_drift(frames: Mapping[str, pd.DataFrame], feature_names: Sequence[str], profile: Mapping[str, Any], *,
                threshold: float | None = None, config: DriftConfig | None = None,
                recipe: FeatureRecipe | None = None, labeling: LabelingConfig | None = None,
                events: Mapping[str, np.ndarray] | None = None) -> dict[str, Any]:
    """``threshold``: the PSI threshold, when it is not ``config``'s; ``labeling`` and ``events``: how the
    model's training told failures apart (:func:`recent_features`)."""
    config = config or DriftConfig()
    if threshold is not None:
        config = replace(config, psi_threshold=threshold)
    x = recent_features(frames, feature_names, recipe, labeling=labeling, events=events)
    return summarize_features(compare_features(x, feature_names, profile, config), config=config, rows=len(x))


def _round(value: float) -> float:
    return float(f"{float(value):.6g}")
