"""domain.scoring: loading a stored booster, scoring, the decision threshold, holdout metrics and the holdout
file, on small real XGBoost models (no mocks)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from modelforge.domain.scoring import (
    HOLDOUT_TARGET,
    HOLDOUT_TIMESTAMP,
    apply_threshold,
    effective_threshold,
    holdout_metrics,
    holdout_parquet,
    load_booster,
    predict_scores,
    read_holdout,
    scorable_on,
)

NAMES = ["a", "b"]


def _data(seed: int = 0, rows: int = 300) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 2)).astype(np.float32)
    return x, (x[:, 0] > 0.5).astype(float)


def _model(objective: str = "binary:logistic") -> bytes:
    x, y = _data()
    booster = xgb.train({"objective": objective, "nthread": 1, "max_depth": 2},
                        xgb.DMatrix(x, label=y if objective.startswith("binary") else x[:, 0] * 10,
                                    feature_names=NAMES), 10)
    return bytes(booster.save_raw(raw_format="ubj"))


def _holdout(x: np.ndarray, target: np.ndarray) -> pd.DataFrame:
    timestamps = pd.date_range("2025-01-01", periods=len(x), freq="min", tz="UTC").as_unit("ns").asi8
    return read_holdout(holdout_parquet(x, target, timestamps, NAMES))


def test_a_stored_booster_scores_like_the_one_that_was_saved() -> None:
    data = _model()
    booster = load_booster(data)
    x, _ = _data(seed=1, rows=50)
    scores = predict_scores(booster, x.astype(np.float64))  # any float matrix: scored as float32
    assert scores.shape == (50,) and scores.dtype == np.float32
    np.testing.assert_array_equal(scores, booster.predict(xgb.DMatrix(x, feature_names=NAMES)))
    assert ((scores >= 0) & (scores <= 1)).all()


def test_the_threshold_decides_at_or_above_and_only_none_means_the_default() -> None:
    scores = np.array([0.0, 0.2, 0.5, 0.7], dtype=np.float32)
    assert apply_threshold(scores, 0.5).tolist() == [False, False, True, True]
    assert apply_threshold(scores, None).tolist() == [False, False, True, True]
    assert apply_threshold(scores, 0.2).tolist() == [False, True, True, True]
    assert apply_threshold(scores, 0.0).tolist() == [True, True, True, True]  # 0.0 is kept, not "missing"
    assert (effective_threshold(None), effective_threshold(0.0), effective_threshold(0.3)) == (0.5, 0.0, 0.3)


def test_status_metrics_on_a_holdout_use_the_model_s_threshold() -> None:
    booster = load_booster(_model())
    x, y = _data(seed=2, rows=200)
    holdout = _holdout(x, y)
    metrics = holdout_metrics(booster, holdout, feature_names=NAMES, indicator="status", threshold=0.4)
    predicted = predict_scores(booster, x) >= 0.4
    assert metrics["threshold"] == 0.4 and metrics["rows"] == 200 and metrics["positives"] == int(y.sum())
    assert metrics["confusion_matrix"]["tp"] == int((predicted & (y == 1)).sum())
    assert metrics["recall"] > 0.8 and metrics["roc_auc"] > 0.9
    assert holdout_metrics(booster, holdout, feature_names=NAMES, indicator="status",
                           threshold=None)["threshold"] == 0.5


def test_health_metrics_on_a_holdout_come_with_the_mean_baseline() -> None:
    booster = load_booster(_model("reg:squarederror"))
    x, _ = _data(seed=3, rows=200)
    target = x[:, 0].astype(float) * 10
    metrics = holdout_metrics(booster, _holdout(x, target), feature_names=NAMES, indicator="health", threshold=None)
    assert metrics["baseline_rmse"] == pytest.approx(float(np.std(target)))
    assert metrics["rmse"] < metrics["baseline_rmse"] and "recall" not in metrics


def test_the_holdout_file_round_trips_features_target_and_time() -> None:
    x, y = _data(seed=4, rows=20)
    timestamps = pd.date_range("2025-03-01", periods=20, freq="min", tz="UTC").as_unit("ns").asi8
    frame = read_holdout(holdout_parquet(x, y, timestamps, NAMES))
    assert list(frame.columns) == [*NAMES, HOLDOUT_TARGET, HOLDOUT_TIMESTAMP]
    np.testing.assert_array_equal(frame[NAMES].to_numpy(), x)
    np.testing.assert_array_equal(frame[HOLDOUT_TARGET].to_numpy(), y)
    assert pd.DatetimeIndex(frame[HOLDOUT_TIMESTAMP]).as_unit("ns").asi8.tolist() == timestamps.tolist()
    assert scorable_on(frame, NAMES) and not scorable_on(frame, [*NAMES, "c"])
