"""Scoring with a stored model, in one place: load the booster, score a feature matrix, apply the decision
threshold, and judge a model on a holdout (what the gate compares the challenger and the champion on), plus
the holdout's file format.

Pure numpy, pandas and XGBoost: the caller reads the bytes and checks their sha256 (``get_verified``) before
anything here parses them.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb

DEFAULT_THRESHOLD = 0.5  # a status model without a recorded decision threshold
# The holdout file: the model's feature columns, then these two.
HOLDOUT_TARGET = "target"  # the label (status) or minutes to failure (health) of each holdout row
HOLDOUT_TIMESTAMP = "timestamp"


def load_booster(data: bytes) -> xgb.Booster:
    """From XGBoost's own format only: nothing here can execute code from the artifact."""
    booster = xgb.Booster()
    booster.load_model(bytearray(data))
    return booster


def predict_scores(booster: xgb.Booster, x: Any) -> np.ndarray:
    """The model's raw output per row (status: the failure score; health: minutes to failure), from the
    features in the model's column order, as the contiguous float32 matrix XGBoost predicts from in place."""
    return np.asarray(booster.inplace_predict(np.ascontiguousarray(x, dtype=np.float32)))


def effective_threshold(threshold: float | None) -> float:
    """The recorded decision threshold, or 0.5 when none was recorded (0.0 is a threshold)."""
    return DEFAULT_THRESHOLD if threshold is None else float(threshold)


def apply_threshold(scores: np.ndarray, threshold: float | None) -> np.ndarray:
    """Status decisions: True ("pre-failure") where the score reaches the threshold."""
    return np.asarray(scores) >= effective_threshold(threshold)


def scorable_on(holdout: pd.DataFrame, feature_names: Sequence[str]) -> bool:
    """Whether the holdout has every column the model reads (a model with another recipe cannot be scored)."""
    return set(feature_names) <= set(holdout.columns)


def holdout_metrics(booster: xgb.Booster, holdout: pd.DataFrame, *, feature_names: Sequence[str],
                    indicator: str, threshold: float | None) -> dict[str, Any]:
    """A model's metrics on the holdout: classification metrics at its decision threshold (status), or
    regression metrics with the RMSE of always predicting the mean (health)."""
    from modelforge.domain.evaluation import classification_metrics, regression_metrics  # scikit-learn: gate only

    predictions = predict_scores(booster, holdout[list(feature_names)].to_numpy(dtype="float32"))
    target = holdout[HOLDOUT_TARGET].to_numpy()
    if indicator == "status":
        return classification_metrics(target.astype(int), predictions, effective_threshold(threshold))
    metrics = regression_metrics(target.astype(float), predictions)
    metrics["baseline_rmse"] = float(np.sqrt(np.mean((target - target.mean()) ** 2)))
    return metrics


def holdout_parquet(x: np.ndarray, target: np.ndarray, timestamps_ns: np.ndarray,
                    feature_names: Sequence[str]) -> bytes:
    """The held-out rows (features, target, timestamp) as parquet: what the gate scores the challenger and the
    champion on. Parquet, not pickle: reading it back cannot run code."""
    frame = pd.DataFrame(x, columns=list(feature_names))
    frame[HOLDOUT_TARGET] = target
    frame[HOLDOUT_TIMESTAMP] = pd.to_datetime(timestamps_ns, utc=True)
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def read_holdout(data: bytes) -> pd.DataFrame:
    return pd.read_parquet(io.BytesIO(data))
