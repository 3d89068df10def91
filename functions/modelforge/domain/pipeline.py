"""The training pipeline for one machine (the seed's ModelFactory): clean, label, featurize, split in time,
train, evaluate on the held-out final period, and serialize in XGBoost's own format."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb

from modelforge.domain.evaluation import classification_metrics, regression_metrics
from modelforge.domain.features import add_rolling_features
from modelforge.domain.labeling import LABEL, TIME_TO_FAILURE, LabelingConfig, label_failures
from modelforge.domain.splitting import chronological_split
from modelforge.domain.telemetry import TIMESTAMP, clean_telemetry
from modelforge.domain.xgb import XGBConfig, fit_classifier, fit_regressor
from modelforge.errors import InsufficientDataError, NoFailureEventsError

MODEL_FORMAT = "ubj"  # XGBoost's binary JSON: loadable without pickle, stable across versions


@dataclass(frozen=True)
class PipelineConfig:
    labeling: LabelingConfig = field(default_factory=LabelingConfig)
    xgb: XGBConfig = field(default_factory=XGBConfig)
    test_fraction: float = 0.2


@dataclass(frozen=True)
class TrainedModel:
    model_bytes: bytes
    model_format: str
    indicator: str
    feature_names: list[str]
    metrics: dict[str, Any]
    baseline_metrics: dict[str, Any]
    params: dict[str, Any]
    data: dict[str, Any]  # range, row counts, events, fingerprint


def train_model(frame: pd.DataFrame, *, machine_name: str, indicator: str, config: PipelineConfig) -> TrainedModel:
    clean = clean_telemetry(frame, machine_name=machine_name)
    labeled, episodes = label_failures(clean.frame, config.labeling)
    if len(episodes) == 0:
        raise NoFailureEventsError(
            f"no failure event in the data of '{machine_name}' for this range: no reading of "
            f"Eng_RPM_variation_percentage at or below -{config.labeling.drop_threshold_pct:g}%, so there is "
            "nothing to learn to predict")
    featured, features = add_rolling_features(labeled, clean.sensor_columns)
    split = chronological_split(featured, test_fraction=config.test_fraction,
                                purge_minutes=max(config.labeling.window_minutes, 1))

    if indicator == "status":
        fitted, metrics, baseline = _train_status(split.train, split.test, features, config, machine_name)
    else:
        fitted, metrics, baseline = _train_health(split.train, split.test, features, config, machine_name)

    data = {
        "first_timestamp": clean.frame[TIMESTAMP].iloc[0].isoformat(),
        "last_timestamp": clean.frame[TIMESTAMP].iloc[-1].isoformat(),
        "split_time": split.split_time.isoformat(),
        "rows_in": clean.rows_in,
        "rows_dropped_missing_key": clean.rows_dropped_missing_key,
        "rows_dropped_impossible": clean.rows_dropped_impossible,
        "rows_dropped_duplicate": clean.rows_dropped_duplicate,
        "rows_excluded_around_failures": len(clean.frame) - len(labeled),
        "rows_purged_at_split": split.purged_rows,
        "rows_train": len(split.train),
        "rows_test": len(split.test),
        "failure_events": len(episodes),
        "failure_events_test": int((episodes.onsets >= split.split_time).sum()),
        "fingerprint": fingerprint(clean.frame),
    }
    params = {**{k: _plain(v) for k, v in fitted.params.items()}, "num_boost_round": fitted.best_rounds,
              "labeling": vars(config.labeling)}
    return TrainedModel(
        model_bytes=bytes(fitted.booster.save_raw(raw_format=MODEL_FORMAT)), model_format=MODEL_FORMAT,
        indicator=indicator, feature_names=features, metrics={**metrics, "device": fitted.device},
        baseline_metrics=baseline, params=params, data=data,
    )


def _train_status(train: pd.DataFrame, test: pd.DataFrame, features: list[str], config: PipelineConfig,
                  machine_name: str) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    y_train = train[LABEL].to_numpy()
    y_test = test[LABEL].to_numpy()
    if y_train.sum() == 0:
        raise InsufficientDataError(f"no pre-failure rows for '{machine_name}' in the training period")
    if y_test.sum() == 0:
        raise InsufficientDataError(
            f"no failure event for '{machine_name}' in the test period (the last {config.test_fraction:.0%} of "
            "the range): widen the date range so the model can be evaluated")
    x_train = train[features].to_numpy(dtype="float32")
    fitted = fit_classifier(x_train, y_train, config.xgb, features)
    scores = fitted.booster.predict(xgb.DMatrix(test[features].to_numpy(dtype="float32"), feature_names=features))
    assert fitted.threshold is not None
    metrics = classification_metrics(y_test, scores, fitted.threshold)
    # The trivial baseline flags everything: recall 1.0, precision = prevalence. The model must beat its F2.
    baseline = classification_metrics(y_test, np.ones_like(scores), 0.5)
    return fitted, metrics, baseline


def _train_health(train: pd.DataFrame, test: pd.DataFrame, features: list[str], config: PipelineConfig,
                  machine_name: str) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    train = train[train[TIME_TO_FAILURE].notna()]
    test = test[test[TIME_TO_FAILURE].notna()]
    if len(train) < 100 or len(test) < 10:
        raise InsufficientDataError(f"too few rows with a known time to failure for '{machine_name}'")
    y_train = train[TIME_TO_FAILURE].to_numpy(dtype="float64")
    fitted = fit_regressor(train[features].to_numpy(dtype="float32"), y_train, config.xgb, features)
    predicted = fitted.booster.predict(xgb.DMatrix(test[features].to_numpy(dtype="float32"),
                                                   feature_names=features))
    y_test = test[TIME_TO_FAILURE].to_numpy(dtype="float64")
    metrics = {**regression_metrics(y_test, predicted), "cap_minutes": config.labeling.health_cap_minutes}
    baseline = regression_metrics(y_test, np.full_like(y_test, y_train.mean()))  # predict the training mean
    return fitted, metrics, baseline


def fingerprint(frame: pd.DataFrame) -> str:
    """sha256 over the cleaned rows, so two models can be shown to have seen the same data."""
    hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return hashlib.sha256(hashed.tobytes()).hexdigest()


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
