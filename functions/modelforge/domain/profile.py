"""The training profile: what the model's training data looked like, feature by feature, stored beside the
model so that a later drift check can compare new data against it.

Per feature: count, missing fraction, mean, std, min, max, quantiles, and a histogram over fixed bin edges
(``bins`` equal-width bins between the 0.5 % and 99.5 % quantiles, plus one open bin at each end). The edges
are stored, so new data can be binned the same way: :func:`drift_report` computes the population stability
index (PSI) of new data against the profile (rule of thumb: < 0.1 stable, 0.1-0.25 moderate, > 0.25 drift).

Since ``profile_version`` 2 each feature also keeps a bounded ``reference`` sample (its finite training values,
or their quantiles when there are more than ``drift_stats.REFERENCE_SIZE``: see
:func:`modelforge.domain.drift_stats.reference_sample`) with the number of rows it stands for, which the
two-sample drift tests compare new data with. Version-1 profiles have none: a check of them is PSI only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from modelforge.domain.drift_stats import REFERENCE_SIZE, reference_sample

PROFILE_VERSION = 2  # 2: a reference sample per feature (version 1 profiles still read: PSI only)
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
PSI_EPSILON = 1e-4


def training_profile(x: np.ndarray, feature_names: Sequence[str], *, bins: int = 20,
                     extra: dict[str, Any] | None = None, reference_size: int = REFERENCE_SIZE) -> dict[str, Any]:
    """``x``: the training rows' feature matrix (rows x features)."""
    features: dict[str, Any] = {}
    for j, name in enumerate(feature_names):
        column = np.asarray(x[:, j], dtype="float64")
        finite = column[np.isfinite(column)]
        missing = _round(1 - len(finite) / max(len(column), 1))
        entry: dict[str, Any] = {"count": len(column), "missing_fraction": missing}
        if len(finite) == 0:
            features[name] = entry
            continue
        lo, hi = np.quantile(finite, [0.005, 0.995])
        if hi <= lo:
            hi = lo + 1e-9
        inner = np.unique([_round(e) for e in np.linspace(lo, hi, bins + 1)])  # stored as is, so binned as is
        counts = _bin_counts(finite, inner)
        entry.update(
            mean=_round(finite.mean()), std=_round(finite.std()), min=_round(finite.min()), max=_round(finite.max()),
            quantiles={f"p{int(q * 100):02d}": _round(v) for q, v in zip(QUANTILES, np.quantile(finite, QUANTILES),
                                                                      strict=True)},
            histogram={"edges": inner.tolist(), "counts": counts.tolist()},
            reference={"rows": len(finite),
                       "values": [_round(v) for v in reference_sample(finite, reference_size)]},
        )
        features[name] = entry
    return {"profile_version": PROFILE_VERSION, "rows": int(x.shape[0]), "features": features, **(extra or {})}


def _bin_counts(values: np.ndarray, inner_edges: np.ndarray) -> np.ndarray:
    """Counts in: (-inf, e0), [e0, e1), ..., [e_{n-1}, e_n], (e_n, inf) — n + 2 bins."""
    index = np.searchsorted(inner_edges, values, side="right")
    index[values == inner_edges[-1]] = len(inner_edges) - 1
    return np.bincount(index, minlength=len(inner_edges) + 1)


def population_stability_index(expected_counts: np.ndarray, actual_counts: np.ndarray) -> float:
    expected = np.maximum(expected_counts / max(expected_counts.sum(), 1), PSI_EPSILON)
    actual = np.maximum(actual_counts / max(actual_counts.sum(), 1), PSI_EPSILON)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def drift_report(x: np.ndarray, feature_names: Sequence[str], profile: dict[str, Any]) -> dict[str, float]:
    """PSI of each profiled feature of new rows ``x`` against the training ``profile``."""
    report: dict[str, float] = {}
    for j, name in enumerate(feature_names):
        entry = profile["features"].get(name)
        if not entry or "histogram" not in entry:
            continue
        column = np.asarray(x[:, j], dtype="float64")
        finite = column[np.isfinite(column)]
        edges = np.asarray(entry["histogram"]["edges"], dtype="float64")
        report[name] = population_stability_index(np.asarray(entry["histogram"]["counts"], dtype="float64"),
                                                  _bin_counts(finite, edges).astype("float64"))
    return report


def _round(value: float) -> float:
    return float(f"{float(value):.6g}")
