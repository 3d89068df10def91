"""Search strategies, purged time-series folds and the validation cut (modelforge.domain.search/splitting)."""

from __future__ import annotations

import numpy as np
import pytest

from modelforge.domain.search import (
    CANDIDATES,
    SearchConfig,
    candidate_configurations,
    search_classifier,
    search_regressor,
)
from modelforge.domain.splitting import PurgedTimeSeriesSplit, chronological_split, validation_split

MINUTE = 60 * 10**9
NAMES = ["signal", "noise_a", "noise_b"]


def synthetic(n: int = 6000, events: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One row a minute; ``events`` failures, each preceded by 30 positive rows whose ``signal`` rises."""
    rng = np.random.default_rng(seed)
    t = np.arange(n, dtype=np.int64) * MINUTE
    y = np.zeros(n)
    signal = rng.normal(0, 1, n)
    for onset in np.linspace(300, n - 100, events).astype(int):
        y[onset - 30:onset] = 1
        signal[onset - 30:onset] += np.linspace(3, 6, 30)
    x = np.column_stack([signal, rng.normal(0, 1, n), rng.normal(0, 1, n)]).astype("float32")
    return x, y, t


def test_candidates_are_deterministic_unique_and_within_budget() -> None:
    assert candidate_configurations(2) == [dict(c) for c in CANDIDATES[:2]]
    many = candidate_configurations(10, seed=1)
    assert len(many) == 10 and many == candidate_configurations(10, seed=1)
    assert len({tuple(sorted(c.items())) for c in many}) == 10


def test_early_stopping_fits_budget_plus_one_and_picks_the_threshold_on_validation() -> None:
    x, y, t = synthetic()
    config = SearchConfig(budget=3, max_rounds=60, early_stopping_rounds=10, device="cpu", nthread=1)
    result = search_classifier(x, y, t, NAMES, config, purge_minutes=30)

    assert result.fits == 4 and len(result.trials) == 3 and result.strategy == "early_stopping"
    assert result.device == "cpu"
    assert result.threshold is not None and 0 < result.threshold.threshold < 1
    assert result.validation["recall"] >= 0.8 and result.validation["precision_floor_met"]
    assert result.validation["rows"] + result.validation["fit_rows"] < len(y)  # the purge removed rows
    assert 1 <= result.rounds <= 60
    importance = result.booster.get_score(importance_type="total_gain")
    assert max(importance, key=importance.get) == "signal"


def test_no_refit_keeps_the_probe_and_its_round_count() -> None:
    x, y, t = synthetic()
    config = SearchConfig(budget=1, max_rounds=40, early_stopping_rounds=5, refit=False, device="cpu",
                          nthread=1)
    result = search_classifier(x, y, t, NAMES, config, purge_minutes=30)
    assert result.fits == 1
    assert result.booster.num_boosted_rounds() == result.rounds


def test_a_fleet_validated_by_machines_takes_the_threshold_that_holds_on_each_part() -> None:
    from dataclasses import replace

    from modelforge.domain.evaluation import choose_threshold, choose_threshold_across
    from modelforge.domain.scoring import predict_scores
    from modelforge.domain.splitting import group_validation_split

    x, y, t = synthetic(n=6000, events=10)
    groups = np.arange(len(y)) // 600  # ten machines, a failure each
    config = SearchConfig(budget=1, max_rounds=40, early_stopping_rounds=5, refit=False, device="cpu",
                          nthread=1, validation_fraction=0.4, min_precision=0.9, threshold_parts=5)
    result = search_classifier(x, y, t, NAMES, config, purge_minutes=30, groups=groups)
    # The search's own validation machines: four of ten, so each of them is a part of its own.
    _, rows = group_validation_split(groups, y, fraction=0.4, seed=config.seed)
    assert len(np.unique(groups[rows])) == 4 and result.validation["threshold_parts"] == 4  # 5 asked
    scores = predict_scores(result.booster, x[rows])
    across = choose_threshold_across(y[rows], scores, groups[rows], min_precision=0.9)
    assert result.threshold is not None
    assert result.threshold.threshold == pytest.approx(across.threshold, abs=1e-9)
    assert result.validation["worst_part_recall"] == pytest.approx(across.worst_recall)
    pooled = choose_threshold(y[rows], scores, min_precision=0.9)
    assert across.worst_recall is not None and across.worst_recall <= pooled.recall + 1e-12

    plain = search_classifier(x, y, t, NAMES, replace(config, threshold_parts=1), purge_minutes=30, groups=groups)
    assert SearchConfig().threshold_parts == 1  # the default: the pooled rule (see the module docstring)
    assert plain.threshold is not None and plain.threshold.parts == 1
    assert plain.threshold.threshold == pytest.approx(pooled.threshold, abs=1e-9)


def test_grid_and_halving_count_their_fits_and_halving_is_cheaper() -> None:
    x, y, t = synthetic(n=3000, events=6)
    grid = {"n_estimators": [10, 30], "max_depth": [2, 3], "learning_rate": [0.3]}
    exhaustive = search_classifier(x, y, t, NAMES, SearchConfig(strategy="grid", grid=grid, cv_folds=2,
                                                                device="cpu", nthread=1), purge_minutes=30)
    halving = search_classifier(x, y, t, NAMES, SearchConfig(strategy="halving", grid=grid, cv_folds=2,
                                                             device="cpu", nthread=1), purge_minutes=30)
    assert exhaustive.fits == 4 * 2 + 2  # every cell on every fold, a probe for the threshold, the refit
    assert len(exhaustive.trials) == 4 and set(exhaustive.params) == {"max_depth", "learning_rate"}
    assert halving.fits < exhaustive.fits
    for result in (exhaustive, halving):
        assert result.threshold is not None and result.validation["recall"] > 0.5


def test_regressor_search_reports_rmse_and_no_threshold() -> None:
    x, y, t = synthetic()
    target = np.where(y > 0, 10.0, 240.0)
    result = search_regressor(x, target, t, NAMES, SearchConfig(budget=2, max_rounds=50, device="cpu", nthread=1),
                              purge_minutes=240)
    assert result.threshold is None and result.fits == 3
    assert result.validation["rmse"] < np.std(target)


def test_search_refuses_training_data_with_a_single_event() -> None:
    x, y, t = synthetic(events=1)
    with pytest.raises(ValueError, match="positives"):
        search_classifier(x, y, t, NAMES, SearchConfig(budget=1, device="cpu"), purge_minutes=30)


def test_bad_strategy_is_refused() -> None:
    with pytest.raises(ValueError, match="strategy"):
        SearchConfig(strategy="random")


def test_purged_folds_never_train_inside_the_window_before_their_test_rows() -> None:
    rng = np.random.default_rng(0)
    t = np.cumsum(rng.uniform(0.2, 3.0, 5000) * MINUTE).astype(np.int64)  # irregular sampling
    cv = PurgedTimeSeriesSplit(t, n_splits=4, purge_minutes=30)
    folds = list(cv.split(np.zeros((len(t), 1))))
    assert len(folds) == cv.get_n_splits() == 4
    for train, test in folds:
        assert t[train].max() < t[test].min() - 30 * MINUTE
        assert len(np.intersect1d(train, test)) == 0
        # Only the purge is left out between training and test rows.
        skipped = np.arange(train.max() + 1, test.min())
        assert (t[skipped] >= t[test].min() - 30 * MINUTE).all()
    with pytest.raises(ValueError, match="rows"):
        list(cv.split(np.zeros((10, 1))))


def test_chronological_split_purges_rows_whose_labels_look_into_the_test_period() -> None:
    t = np.arange(1000, dtype=np.int64) * MINUTE
    split = chronological_split(t, test_fraction=0.2, purge_minutes=30)
    assert split.test[0] == 800 and len(split.test) == 200
    assert split.train[-1] == 769 and split.purged_rows == 30


def test_validation_cut_moves_back_to_keep_an_event_on_each_side() -> None:
    t = np.arange(1000, dtype=np.int64) * MINUTE
    y = np.zeros(1000)
    y[100:130] = 1
    y[500:530] = 1  # the last event is before the default 80 % cut
    fit, val = validation_split(t, y, fraction=0.2, purge_minutes=30)
    assert val[0] == 500 and y[val].sum() == 30 and y[fit].sum() == 30
    assert fit[-1] == 469


def test_quantized_matrices_give_the_same_search() -> None:
    x, y, t = synthetic()
    plain = search_classifier(x, y, t, NAMES, SearchConfig(budget=2, max_rounds=40, device="cpu", nthread=1),
                              purge_minutes=30)
    quantized = search_classifier(x, y, t, NAMES, SearchConfig(budget=2, max_rounds=40, device="cpu", nthread=1,
                                                               quantized=True), purge_minutes=30)
    assert quantized.rounds == plain.rounds and quantized.params == plain.params
    assert plain.threshold is not None and quantized.threshold is not None
    assert quantized.threshold.threshold == pytest.approx(plain.threshold.threshold)
