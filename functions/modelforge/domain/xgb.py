"""XGBoost models: a failure classifier (``status``) and a time-to-failure regressor (``health``).

Both use early stopping on a chronologically later validation slice of the training period, then refit on the
whole training period with the number of rounds found. The classifier weighs the rare pre-failure class with
``scale_pos_weight`` and picks its decision threshold on the validation slice (never on the test set).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
import xgboost as xgb
from sklearn.metrics import fbeta_score

DEFAULT_PARAMS: dict[str, Any] = {
    "max_depth": 6,
    "eta": 0.1,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "min_child_weight": 1.0,
    "tree_method": "hist",
}


@dataclass(frozen=True)
class XGBConfig:
    max_rounds: int = 400
    early_stopping_rounds: int = 30
    validation_fraction: float = 0.2
    params: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_PARAMS))
    device: str = "auto"  # auto | cpu | cuda
    nthread: int = 0  # 0: all cores


@dataclass(frozen=True)
class FittedModel:
    booster: xgb.Booster
    params: dict[str, Any]
    best_rounds: int
    threshold: float | None  # classifiers only
    device: str


@cache
def cuda_available() -> bool:
    """True when this XGBoost build can train on a visible GPU (checked once per process)."""
    if not xgb.build_info().get("USE_CUDA", False):
        return False
    try:
        probe = xgb.DMatrix(np.zeros((2, 1)), label=np.array([0.0, 1.0]))
        xgb.train({"device": "cuda", "tree_method": "hist"}, probe, num_boost_round=1)
    except xgb.core.XGBoostError:
        return False
    return True


def resolve_device(requested: str) -> str:
    if requested == "auto":
        return "cuda" if cuda_available() else "cpu"
    return requested


def _validation_cut(n_rows: int, fraction: float) -> int:
    return max(1, min(n_rows - 1, int(round(n_rows * (1 - fraction)))))


def fit_classifier(x: np.ndarray, y: np.ndarray, config: XGBConfig, feature_names: list[str]) -> FittedModel:
    """``x`` rows in time order. Requires positives in both the fit and the validation slice."""
    device = resolve_device(config.device)
    cut = _validation_cut(len(y), config.validation_fraction)
    pos_weight = _scale_pos_weight(y[:cut])
    params = {**config.params, "objective": "binary:logistic", "eval_metric": "aucpr",
              "scale_pos_weight": pos_weight, "device": device, "nthread": config.nthread}
    fit = xgb.DMatrix(x[:cut], label=y[:cut], feature_names=feature_names)
    val = xgb.DMatrix(x[cut:], label=y[cut:], feature_names=feature_names)
    probe = xgb.train(params, fit, num_boost_round=config.max_rounds, evals=[(val, "validation")],
                      early_stopping_rounds=config.early_stopping_rounds, verbose_eval=False)
    rounds = probe.best_iteration + 1
    threshold = choose_threshold(y[cut:], probe.predict(val, iteration_range=(0, rounds)))

    params["scale_pos_weight"] = _scale_pos_weight(y)
    booster = xgb.train(params, xgb.DMatrix(x, label=y, feature_names=feature_names), num_boost_round=rounds)
    return FittedModel(booster=booster, params=params, best_rounds=rounds, threshold=threshold, device=device)


def fit_regressor(x: np.ndarray, y: np.ndarray, config: XGBConfig, feature_names: list[str]) -> FittedModel:
    device = resolve_device(config.device)
    cut = _validation_cut(len(y), config.validation_fraction)
    params = {**config.params, "objective": "reg:squarederror", "eval_metric": "rmse", "device": device,
              "nthread": config.nthread}
    fit = xgb.DMatrix(x[:cut], label=y[:cut], feature_names=feature_names)
    val = xgb.DMatrix(x[cut:], label=y[cut:], feature_names=feature_names)
    probe = xgb.train(params, fit, num_boost_round=config.max_rounds, evals=[(val, "validation")],
                      early_stopping_rounds=config.early_stopping_rounds, verbose_eval=False)
    rounds = probe.best_iteration + 1
    booster = xgb.train(params, xgb.DMatrix(x, label=y, feature_names=feature_names), num_boost_round=rounds)
    return FittedModel(booster=booster, params=params, best_rounds=rounds, threshold=None, device=device)


def choose_threshold(y_true: np.ndarray, scores: np.ndarray, beta: float = 2.0) -> float:
    """The score cut that maximizes F-beta (beta=2: recall counts twice as much as precision) on validation
    data. A model that flags everything scores poorly on F2 when positives are rare, so this cannot cheat."""
    if y_true.sum() == 0:
        return 0.5
    candidates = np.unique(np.quantile(scores, np.linspace(0.5, 0.9995, 200)))
    best, best_score = 0.5, -1.0
    for cut in candidates:
        score = fbeta_score(y_true, scores >= cut, beta=beta, zero_division=0)
        if score > best_score:
            best, best_score = float(cut), score
    return best


def _scale_pos_weight(y: np.ndarray) -> float:
    positives = float(y.sum())
    return float((len(y) - positives) / positives) if positives else 1.0
