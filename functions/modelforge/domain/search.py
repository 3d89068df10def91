"""Hyperparameter search that maximizes recall without cheating, and picks the decision threshold on
validation data (the test period is never looked at here).

Strategies (``SearchConfig.strategy``)
    ``early_stopping`` (default): the training period is cut in time into a *fit* part and a later
        *validation* part (purged between them, and moved so that both hold failures). Each of ``budget``
        candidate configurations (default 3) is trained once on the fit part, with early stopping on the
        validation part's log-loss deciding its number of trees, then scored on the validation part with the
        selection metric at its best threshold: ``budget + 1`` model fits in all, each stopping as soon as
        more trees stop helping.
    ``halving``: sklearn's successive halving (``HalvingGridSearchCV``) over ``grid``, with the number of
        trees as the resource, cross-validated with :class:`PurgedTimeSeriesSplit`.
    ``grid``: the seed's exhaustive ``GridSearchCV`` over ``grid``, cross-validated with
        :class:`PurgedTimeSeriesSplit` (time-ordered folds with a gap in time), kept for comparison.
    The classifier's score is ``selection_metric`` (see :mod:`modelforge.domain.evaluation`): the best recall
    at precision >= ``min_precision``, or F2. Whatever the strategy, the threshold of the chosen
    configuration is then chosen on the validation part, and the final model is refitted on the whole
    training period (``refit``) with the number of trees scaled to its size.

The threshold across partitions (fleets validated by machines; ``threshold_parts``)
    With ``threshold_parts`` k >= 2 and a validation of whole machines (``groups``), the validation machines
    are dealt at random (seeded) into k parts and the threshold must hold on every part: each part with a
    failure reaches ``min_precision``, and the worst part's recall is maximized
    (:func:`~modelforge.domain.evaluation.choose_threshold_across`); candidates are ranked by the same
    worst-part objective. A time validation (one later period, few failures in it) always uses the pooled
    rule. The default is 1, the pooled rule (``choose_threshold``), because the grouped CV on NASA C-MAPSS
    training engines (benchmarks/cmapss_study/status_threshold.py, logs beside it) measured that the worst
    part's rule buys precision the pooled rule already had and pays for it in recall, the side that binds:
    FD001, 5 folds, engines judged at random truncations, pooled P 0.976 / R 0.890, worst of 2 parts
    0.988 / 0.868, of 3 0.986 / 0.791, of 5 0.986 / 0.758; FD002's first two folds the same way (pooled
    precision 1.0 in both, recall 0.857 / 0.84; worst of 5 parts 0.837 / 0.66). The row-level floor of a
    small part is stricter than the machine-level precision it stands for.

Measured on the 12-machine demo fleet against the seed's grid search (``benchmarks/training.py``):
early stopping on log-loss gave better recall and PR-AUC than on PR-AUC (which saturates after a few trees
when validation holds two or three failures), refitting beat keeping the probe, and budgets 2-4 scored the
same within noise; ``early_stopping`` matched or beat ``halving`` and ``grid`` at a fraction of their fits.

Every candidate weighs the rare pre-failure class with ``scale_pos_weight`` (negatives / positives).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xgboost as xgb
from sklearn.metrics import average_precision_score, make_scorer, precision_recall_curve

from modelforge.domain.evaluation import (
    ThresholdChoice,
    choose_threshold,
    choose_threshold_across,
    max_recall_at_precision,
)
from modelforge.domain.splitting import (
    PurgedTimeSeriesSplit,
    group_validation_split,
    validation_split,
)
from modelforge.domain.xgb import BASE_PARAMS, predict, resolve_device, scale_pos_weight, training_matrix
from modelforge.errors import NotEnoughEventsError

STRATEGIES = ("early_stopping", "halving", "grid")

# Ordered: the first ``budget`` are tried. The first is the usual strong default, the next ones move the
# capacity down, up and sideways; further candidates are drawn at random from SEARCH_SPACE.
CANDIDATES: tuple[dict[str, Any], ...] = (
    {"max_depth": 6, "learning_rate": 0.1, "subsample": 0.8, "colsample_bytree": 0.8, "min_child_weight": 1},
    {"max_depth": 4, "learning_rate": 0.1, "subsample": 0.8, "colsample_bytree": 0.8, "min_child_weight": 1},
    {"max_depth": 8, "learning_rate": 0.1, "subsample": 0.8, "colsample_bytree": 0.6, "min_child_weight": 5},
    {"max_depth": 5, "learning_rate": 0.2, "subsample": 1.0, "colsample_bytree": 0.8, "min_child_weight": 3},
)
SEARCH_SPACE: dict[str, tuple[Any, ...]] = {
    "max_depth": (3, 4, 5, 6, 7, 8),
    "learning_rate": (0.05, 0.1, 0.2),
    "subsample": (0.7, 0.8, 1.0),
    "colsample_bytree": (0.6, 0.8, 1.0),
    "min_child_weight": (1, 3, 5, 10),
}
# The seed's kind of grid (n_estimators x max_depth x learning_rate x subsample), for ``grid``/``halving``.
SEED_GRID: dict[str, list[Any]] = {
    "n_estimators": [100, 200],
    "max_depth": [4, 6, 8],
    "learning_rate": [0.05, 0.1, 0.2],
    "subsample": [0.8, 1.0],
}


@dataclass(frozen=True)
class SearchConfig:
    strategy: str = "early_stopping"
    budget: int = 3  # candidate configurations for early_stopping
    cv_folds: int = 3  # grid / halving
    grid: dict[str, list[Any]] = field(default_factory=lambda: {k: list(v) for k, v in SEED_GRID.items()})
    selection_metric: str = "recall_at_precision"
    min_precision: float = 0.5
    max_rounds: int = 400
    early_stopping_rounds: int = 20
    early_stopping_metric: str = "logloss"  # classifiers: logloss | aucpr (measured: logloss is better)
    validation_fraction: float = 0.2
    threshold_parts: int = 1  # >= 2, validation by machines: the threshold holds on each of this many parts
    refit: bool = True
    # Also quantize the fit/validation matrices: less memory, same models, ~40 % slower searches (measured).
    quantized: bool = False
    device: str = "auto"  # auto | cpu | cuda
    nthread: int = 0  # 0: every core
    seed: int = 0

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, not {self.strategy!r}")
        if self.budget < 1 or self.cv_folds < 2 or self.max_rounds < 1 or self.threshold_parts < 1:
            raise ValueError("budget must be >= 1, cv_folds >= 2, max_rounds >= 1 and threshold_parts >= 1")


@dataclass(frozen=True)
class SearchResult:
    booster: xgb.Booster
    params: dict[str, Any]  # the chosen hyperparameters, XGBoost's names
    rounds: int
    threshold: ThresholdChoice | None  # classifiers only
    validation: dict[str, Any]  # the chosen configuration's validation numbers
    trials: list[dict[str, Any]]
    fits: int
    device: str
    strategy: str
    seconds: float

    def summary(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "fits": self.fits, "seconds": round(self.seconds, 3),
                "candidates": len(self.trials), "validation": self.validation, "trials": self.trials}


def candidate_configurations(budget: int, seed: int = 0) -> list[dict[str, Any]]:
    chosen = [dict(c) for c in CANDIDATES[:budget]]
    rng = np.random.default_rng(seed)
    seen = {tuple(sorted(c.items())) for c in chosen}
    attempts = 0
    while len(chosen) < budget and attempts < 1000:
        attempts += 1
        draw = {k: values[int(rng.integers(len(values)))] for k, values in SEARCH_SPACE.items()}
        draw = {k: v.item() if isinstance(v, np.generic) else v for k, v in draw.items()}
        key = tuple(sorted(draw.items()))
        if key not in seen:
            seen.add(key)
            chosen.append(draw)
    return chosen


def search_classifier(x: np.ndarray, y: np.ndarray, t: np.ndarray, feature_names: list[str],
                      config: SearchConfig, *, purge_minutes: float,
                      weight: np.ndarray | None = None, groups: np.ndarray | None = None) -> SearchResult:
    """``x``, ``y`` (0/1), ``t`` (epoch ns): the training period, in time order. ``groups`` (a machine per
    row): validate on whole machines instead of a later period (fleets held out by machine)."""
    return _Search(x, y, t, feature_names, config, purge_minutes, weight, classify=True, groups=groups).run()


def search_regressor(x: np.ndarray, y: np.ndarray, t: np.ndarray, feature_names: list[str],
                     config: SearchConfig, *, purge_minutes: float,
                     weight: np.ndarray | None = None, groups: np.ndarray | None = None) -> SearchResult:
    return _Search(x, y, t, feature_names, config, purge_minutes, weight, classify=False, groups=groups).run()


class _Search:
    def __init__(self, x: np.ndarray, y: np.ndarray, t: np.ndarray, feature_names: list[str],
                 config: SearchConfig, purge_minutes: float, weight: np.ndarray | None, *,
                 classify: bool, groups: np.ndarray | None = None) -> None:
        self.x, self.y, self.t, self.names, self.config = x, y, t, feature_names, config
        self.weight, self.classify, self.purge = weight, classify, purge_minutes
        self.device = resolve_device(config.device)
        self.fits = 0
        # Both sides of the validation cut need failures: positives for a classifier, rows below the cap
        # (a failure ahead) for the time-to-failure regressor.
        events = y if classify else (y < np.max(y)).astype(float)
        self.groups = groups
        if groups is not None:
            if self.config.strategy != "early_stopping":
                raise ValueError("a validation by machines (groups) needs the early_stopping strategy")
            try:
                self.fit_rows, self.val_rows = group_validation_split(
                    groups, events, fraction=config.validation_fraction, seed=config.seed)
            except NotEnoughEventsError:
                if classify:
                    raise
                self.fit_rows, self.val_rows = group_validation_split(
                    groups, None, fraction=config.validation_fraction, seed=config.seed)
        else:
            self._time_validation(t, events, classify, config, purge_minutes)
        self.val_parts = None if groups is None else _deal_parts(groups[self.val_rows], config)
        self._matrices: dict[str, xgb.DMatrix] = {}  # built once per search and shared by every candidate
        self._x_val: np.ndarray | None = None

    def _time_validation(self, t: np.ndarray, events: np.ndarray, classify: bool, config: SearchConfig,
                         purge_minutes: float) -> None:
        try:
            self.fit_rows, self.val_rows = validation_split(t, events, fraction=config.validation_fraction,
                                                            purge_minutes=purge_minutes)
        except NotEnoughEventsError:
            if classify:
                raise
            self.fit_rows, self.val_rows = validation_split(t, None, fraction=config.validation_fraction,
                                                            purge_minutes=purge_minutes)

    # ---------------------------------------------------------------- shared pieces

    def base_params(self, rows: np.ndarray | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {**BASE_PARAMS, "device": self.device, "seed": self.config.seed,
                                  "verbosity": 0}
        if self.config.nthread > 0:
            params["nthread"] = self.config.nthread
        if self.classify:
            rows = np.arange(len(self.y)) if rows is None else rows
            w = None if self.weight is None else self.weight[rows]
            params.update(objective="binary:logistic", eval_metric=self.config.early_stopping_metric,
                          scale_pos_weight=scale_pos_weight(self.y[rows], w))
        else:
            params.update(objective="reg:squarederror", eval_metric="rmse")
        return params

    def matrix(self, part: str) -> xgb.DMatrix:
        if part not in self._matrices:
            if part == "all":
                self._matrices.clear()  # the refit is last: free the fit/validation matrices first
                rows = np.arange(len(self.y))
            else:
                rows = self.fit_rows if part == "fit" else self.val_rows
            w = None if self.weight is None else self.weight[rows]
            ref = self.matrix("fit") if part == "val" else None
            # The refit's matrix has no evaluation set to share bins with: always quantize it (a byte per
            # value instead of a float copy: measured, the same model and speed for ~20 MB less per 85k rows).
            quantized = self.config.quantized or part == "all"
            self._matrices[part] = training_matrix(_take(self.x, rows), self.y[rows], self.names, w,
                                                   quantized=quantized, ref=ref)
        return self._matrices[part]

    def train(self, params: dict[str, Any], part: str, rounds: int, early_stopping: bool = False) -> xgb.Booster:
        self.fits += 1
        data = self.matrix(part)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # xgboost's device notices
            if not early_stopping:
                return xgb.train(params, data, num_boost_round=rounds)
            return xgb.train(params, data, num_boost_round=rounds, evals=[(self.matrix("val"), "val")],
                             early_stopping_rounds=self.config.early_stopping_rounds, verbose_eval=False)

    def validate(self, booster: xgb.Booster, rounds: int) -> tuple[tuple[float, ...], dict[str, Any],
                                                                    ThresholdChoice | None]:
        if self._x_val is None:
            self._x_val = _take(self.x, self.val_rows)
        scores = predict(booster, self._x_val, rounds=rounds)
        y_val = self.y[self.val_rows]
        w_val = None if self.weight is None else self.weight[self.val_rows]
        if not self.classify:
            rmse = float(np.sqrt(np.average((scores - y_val) ** 2, weights=w_val)))
            return (-rmse,), {"rmse": rmse}, None
        if self.val_parts is not None:
            choice = choose_threshold_across(y_val, scores, self.val_parts, metric=self.config.selection_metric,
                                             min_precision=self.config.min_precision, weight=w_val)
        else:
            choice = choose_threshold(y_val, scores, metric=self.config.selection_metric,
                                      min_precision=self.config.min_precision, weight=w_val)
        pr_auc = float(average_precision_score(y_val, scores, sample_weight=w_val))
        numbers = {"threshold": choice.threshold, "recall": choice.recall, "precision": choice.precision,
                   "f2": choice.f2, "precision_floor_met": choice.precision_floor_met, "pr_auc": pr_auc,
                   "threshold_parts": choice.parts, "worst_part_recall": choice.worst_recall,
                   "worst_part_precision": choice.worst_precision}
        return (*choice.objective(self.config.selection_metric), pr_auc), numbers, choice

    def finish(self, params: dict[str, Any], probe: xgb.Booster, rounds: int, trials: list[dict[str, Any]],
               started: float) -> SearchResult:
        _, numbers, choice = self.validate(probe, rounds)
        booster = probe
        final_rounds = rounds
        if self.config.refit:
            # More rows support proportionally more trees at the same learning rate.
            final_rounds = min(self.config.max_rounds,
                               max(1, round(rounds * len(self.y) / max(len(self.fit_rows), 1))))
            booster = self.train({**self.base_params(), **params}, "all", final_rounds)
        elif booster.num_boosted_rounds() != rounds:
            booster = booster[:rounds]
        return SearchResult(booster=booster, params=params, rounds=final_rounds, threshold=choice,
                            validation={**numbers, "rows": len(self.val_rows), "fit_rows": len(self.fit_rows)},
                            trials=trials, fits=self.fits, device=self.device, strategy=self.config.strategy,
                            seconds=time.perf_counter() - started)

    def run(self) -> SearchResult:
        if self.config.strategy == "early_stopping":
            return self.early_stopping()
        return self.sklearn_search(halving=self.config.strategy == "halving")

    # ---------------------------------------------------------------- strategies

    def early_stopping(self) -> SearchResult:
        started = time.perf_counter()
        base = self.base_params(self.fit_rows)
        best: tuple[tuple[float, ...], dict[str, Any], xgb.Booster, int] | None = None
        trials = []
        for candidate in candidate_configurations(self.config.budget, self.config.seed):
            began = time.perf_counter()
            params = {**base, **candidate}
            booster = self.train(params, "fit", self.config.max_rounds, early_stopping=True)
            rounds = booster.best_iteration + 1
            objective, numbers, _ = self.validate(booster, rounds)
            trials.append({"params": candidate, "rounds": rounds, **numbers,
                           "seconds": round(time.perf_counter() - began, 3)})
            if best is None or objective > best[0]:
                best = (objective, candidate, booster, rounds)
        assert best is not None
        return self.finish(best[1], best[2], best[3], trials, started)

    def sklearn_search(self, *, halving: bool) -> SearchResult:
        from sklearn.model_selection import GridSearchCV

        started = time.perf_counter()
        grid = {k: list(v) for k, v in self.config.grid.items()}
        fixed = {k: v for k, v in self.base_params().items() if k not in ("objective", "eval_metric", "seed")}
        fixed["random_state"] = fixed.pop("seed", self.config.seed)
        fixed["n_jobs"] = fixed.pop("nthread", None)
        estimator: Any
        if self.classify:
            estimator = xgb.XGBClassifier(objective="binary:logistic", **fixed)
            scoring: Any = make_scorer(_threshold_free_score, response_method="predict_proba",
                                       metric=self.config.selection_metric,
                                       min_precision=self.config.min_precision)
        else:
            estimator = xgb.XGBRegressor(objective="reg:squarederror", **fixed)
            scoring = "neg_root_mean_squared_error"
        cv = PurgedTimeSeriesSplit(self.t, n_splits=self.config.cv_folds, purge_minutes=self.purge)
        search: Any
        if halving:
            from sklearn.experimental import enable_halving_search_cv  # noqa: F401
            from sklearn.model_selection import HalvingGridSearchCV

            max_trees = int(max(grid.pop("n_estimators", [self.config.max_rounds])))
            search = HalvingGridSearchCV(estimator, grid, resource="n_estimators", max_resources=max_trees,
                                         min_resources=max(10, max_trees // 9), factor=3, cv=cv,
                                         scoring=scoring, refit=False, random_state=self.config.seed)
        else:
            search = GridSearchCV(estimator, grid, cv=cv, scoring=scoring, refit=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            search.fit(self.x, self.y, sample_weight=self.weight)
        if halving:
            self.fits += int(sum(search.n_candidates_)) * self.config.cv_folds
        else:
            self.fits += len(search.cv_results_["params"]) * self.config.cv_folds
        trials = [{"params": _plain(p), "cv_score": float(s)}
                  for p, s in zip(search.cv_results_["params"], search.cv_results_["mean_test_score"],
                                  strict=True)]
        best = dict(search.best_params_)
        rounds = int(best.pop("n_estimators", self.config.max_rounds))
        params = {**self.base_params(self.fit_rows), **best}
        probe = self.train(params, "fit", rounds)
        return self.finish(_plain(best), probe, rounds, trials, started)


def _deal_parts(val_groups: np.ndarray, config: SearchConfig) -> np.ndarray | None:
    """Each validation row's part: its machine's, the machines dealt round-robin in a seeded random order."""
    if config.threshold_parts < 2:
        return None
    machines = np.unique(val_groups)
    order = np.random.default_rng(config.seed + 2).permutation(len(machines))  # not the split's draws
    part_of = np.empty(len(machines), dtype=np.int64)
    part_of[order] = np.arange(len(machines)) % config.threshold_parts
    return part_of[np.searchsorted(machines, val_groups)]


def _take(x: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``x[rows]``, as a view (no copy) when the rows are a contiguous run, as they are for time splits."""
    if len(rows) and rows[-1] - rows[0] + 1 == len(rows):
        return x[rows[0]:rows[-1] + 1]
    return x[rows]


def _threshold_free_score(y: np.ndarray, scores: np.ndarray, *, metric: str, min_precision: float) -> float:
    """A fold's score for ranking candidates: the best value of ``metric`` over all thresholds."""
    if y.sum() == 0:
        return 0.0  # a fold without failures ranks nobody
    if metric == "f2":
        precision, recall, _ = precision_recall_curve(y, scores)
        with np.errstate(divide="ignore", invalid="ignore"):
            return float(np.nan_to_num(5 * precision * recall / (4 * precision + recall)).max())
    return max_recall_at_precision(y, scores, min_precision)


def _plain(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v.item() if isinstance(v, np.generic) else v for k, v in params.items()}
