"""Sampling within the memory budget (modelforge.domain.sampling): every failure window is kept."""

from __future__ import annotations

import numpy as np

from modelforge.domain.sampling import max_rows_for_budget, sample_within_budget

MINUTE = 60 * 10**9


def test_nothing_is_sampled_within_the_budget() -> None:
    t = np.arange(1000, dtype=np.int64) * MINUTE
    result = sample_within_budget(t, np.array([500 * MINUTE]), max_rows=1000, keep_minutes=120)
    assert not result.sampled and result.weight is None and len(result.rows) == 1000


def test_rows_near_failures_are_all_kept_and_far_rows_weighted() -> None:
    t = np.arange(100_000, dtype=np.int64) * MINUTE
    onsets = np.array([20_000, 60_000, 90_000]) * MINUTE
    result = sample_within_budget(t, onsets, max_rows=10_000, keep_minutes=120, seed=3)

    assert result.sampled and result.rows_before == 100_000
    assert result.rows_after == 10_000
    kept = set(result.rows.tolist())
    for onset in (20_000, 60_000, 90_000):
        assert set(range(onset - 120, onset)) <= kept  # every row of every lead-up
    assert np.all(np.diff(result.rows) > 0)  # still in time order
    assert result.weight is not None
    near = np.isin(result.rows, [r for o in (20_000, 60_000, 90_000) for r in range(o - 120, o)])
    assert (result.weight[near] == 1).all() and (result.weight[~near] > 1).all()
    # Weights restore the far rows' total: the class balance seen by training is unbiased.
    assert result.weight[~near].sum() == np.float64(100_000 - 360)
    assert result.summary()["sampled"] is True


def test_budget_in_rows() -> None:
    assert max_rows_for_budget(1, 1) == 65536
    assert max_rows_for_budget(1024, 42) > max_rows_for_budget(512, 42)
