"""Keeping training within a memory budget without losing a single failure.

When the training rows' feature matrices would exceed ``memory_budget_mb``, the rows far from any failure
are sampled down; every row within ``keep_minutes`` before an onset (which covers every pre-failure window,
and the hard negatives just before it) is kept. Each sampled-in row gets the weight ``1 / rate`` so class
balance, validation precision and the threshold stay unbiased. The pipeline records that it happened.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from modelforge.domain.units import MINUTE_NS

# Bytes one training row costs per feature: the float32 matrix, XGBoost's DMatrix copy and its histogram
# index, plus slack for the fit/validation copies.
BYTES_PER_VALUE = 16


@dataclass(frozen=True)
class SampleResult:
    rows: np.ndarray  # positions kept, in time order
    weight: np.ndarray | None  # None when nothing was sampled
    sampled: bool
    rows_before: int
    rows_after: int
    rate: float  # the fraction of far-from-failure rows kept

    def summary(self) -> dict[str, object]:
        return {"sampled": self.sampled, "rows_before_sampling": self.rows_before,
                "rows_after_sampling": self.rows_after, "far_rows_kept_fraction": round(self.rate, 6)}


def max_rows_for_budget(memory_budget_mb: float, n_features: int) -> int:
    return max(1, int(memory_budget_mb * 1024 * 1024 // (max(n_features, 1) * BYTES_PER_VALUE)))


def sample_within_budget(t: np.ndarray, onsets_ns: np.ndarray, *, max_rows: int, keep_minutes: float,
                         seed: int = 0) -> SampleResult:
    """``t`` sorted epoch ns of the training rows. Keeps all of them when they fit in ``max_rows``."""
    n = len(t)
    if n <= max_rows:
        return SampleResult(np.arange(n), None, False, n, n, 1.0)
    following = np.searchsorted(onsets_ns, t, side="right")
    near = np.zeros(n, dtype=bool)
    has_next = following < len(onsets_ns)
    near[has_next] = onsets_ns[following[has_next]] - t[has_next] <= keep_minutes * MINUTE_NS
    far = np.flatnonzero(~near)
    room = min(max(max_rows - int(near.sum()), 0), len(far))
    rate = room / len(far) if len(far) else 1.0
    kept_far = np.random.default_rng(seed).choice(far, size=room, replace=False)
    rows = np.sort(np.concatenate([np.flatnonzero(near), kept_far]))
    # Exactly ``room`` of the far rows, each standing for len(far) / room of them.
    weight = np.where(near[rows], 1.0, len(far) / room if room else 1.0)
    return SampleResult(rows, weight, True, n, len(rows), rate)


def sample_fleet_within_budget(t: np.ndarray, group: np.ndarray, onsets_ns: np.ndarray, onset_group: np.ndarray,
                               *, max_rows: int, keep_minutes: float, seed: int = 0) -> SampleResult:
    """:func:`sample_within_budget` for pooled machines (``group``: a machine per row, ``onset_group``: per
    onset): each machine gets its share of the budget and is sampled on its own timeline."""
    machines = np.unique(group)
    if len(machines) <= 1 or len(t) <= max_rows:
        return sample_within_budget(t, np.sort(onsets_ns), max_rows=max_rows, keep_minutes=keep_minutes, seed=seed)
    kept: list[np.ndarray] = []
    weights: list[np.ndarray] = []
    for machine in machines:
        rows = np.flatnonzero(group == machine)
        share = max(1, int(max_rows * len(rows) / len(t)))
        part = sample_within_budget(t[rows], np.sort(onsets_ns[onset_group == machine]), max_rows=share,
                                    keep_minutes=keep_minutes, seed=seed)
        kept.append(rows[part.rows])
        weights.append(part.weight if part.weight is not None else np.ones(len(part.rows)))
    order = np.argsort(np.concatenate(kept), kind="stable")
    rows = np.concatenate(kept)[order]
    weight = np.concatenate(weights)[order]
    return SampleResult(rows, weight, True, len(t), len(rows), len(rows) / len(t))
