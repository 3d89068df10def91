"""The training pipeline for one machine (the seed's ModelFactory): validate and clean, label, featurize,
split in time, search and train, evaluate on the held-out final period, profile, and serialize in XGBoost's
own format with the model's lineage inside it.

Indicators
    ``status``: a classifier of "fails within ``window_minutes``" (see :mod:`modelforge.domain.labeling`),
    judged by recall, precision, F1, F2, PR-AUC, ROC-AUC and events caught ahead, at a threshold chosen on
    validation data.
    ``health``: a regressor of the minutes to the next failure, capped at ``health_horizon_minutes``, judged by
    RMSE, MAE and R² (plus MAE on the rows near a failure, and the events its alarm "predicted minutes <=
    window" catches ahead).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np
import pandas as pd

from modelforge import __version__
from modelforge.domain import xgb as xgb_tools
from modelforge.domain.evaluation import classification_metrics, event_metrics, regression_metrics
from modelforge.domain.features import build_features
from modelforge.domain.labeling import LabelingConfig, Labels, label_failures, timestamps_ns
from modelforge.domain.profile import training_profile
from modelforge.domain.sampling import max_rows_for_budget, sample_within_budget
from modelforge.domain.search import SearchConfig, SearchResult, search_classifier, search_regressor
from modelforge.domain.splitting import NotEnoughEventsError, TimeSplit, chronological_split
from modelforge.domain.telemetry import RPM_VARIATION, CleanTelemetry, ValidationConfig, clean_telemetry
from modelforge.errors import InsufficientDataError, NoFailureEventsError

MODEL_FORMAT = xgb_tools.MODEL_FORMAT
INDICATORS = ("status", "health")
LIBRARIES = ("xgboost", "scikit-learn", "pandas", "numpy", "pyarrow", "matplotlib")


@dataclass(frozen=True)
class PipelineConfig:
    labeling: LabelingConfig = field(default_factory=LabelingConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    test_fraction: float = 0.2
    lead_minutes: float = 15.0  # "caught at least N minutes ahead"
    memory_budget_mb: float = 1024.0  # training rows beyond it are sampled (every failure window kept)
    profile_bins: int = 20

    def summary(self) -> dict[str, Any]:
        summary = asdict(self)
        summary["search"].pop("grid", None)
        summary["validation"].pop("sensor_bounds", None)
        return summary


@dataclass(frozen=True)
class Evaluation:
    """The held-out period's rows, for the report's plots."""

    timestamps_ns: np.ndarray
    y_true: np.ndarray
    predicted: np.ndarray  # status: probability of pre-failure; health: predicted minutes to failure
    alarm: np.ndarray
    onsets_ns: np.ndarray  # every onset in the data
    x: np.ndarray  # the held-out rows' features (float32, columns = feature_names): the gate's shared holdout


@dataclass(frozen=True)
class TrainedModel:
    model_bytes: bytes
    model_format: str
    indicator: str
    machine_name: str
    feature_names: list[str]
    metrics: dict[str, Any]  # flat headline numbers, baseline_* beside them
    baseline_metrics: dict[str, Any]
    params: dict[str, Any]  # hyperparameters, rounds, threshold, device, search summary, labeling settings
    data: dict[str, Any]  # range, row counts, events, sampling, fingerprint
    lineage: dict[str, Any]  # also stored inside the model file
    profile: dict[str, Any]
    feature_importance: dict[str, float]
    evaluation: Evaluation
    timings: dict[str, float]


def train_model(frame: pd.DataFrame, *, machine_name: str, indicator: str, config: PipelineConfig,
                lineage: Mapping[str, Any] | None = None) -> TrainedModel:
    """Trains one machine's model; raises a named TrainingDataError when the data cannot produce one."""
    if indicator not in INDICATORS:
        raise ValueError(f"indicator must be one of {INDICATORS}, not {indicator!r}")
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 4)
        clock = now

    clean = clean_telemetry(frame, machine_name=machine_name, config=config.validation)
    lap("validate")
    labels = label_failures(clean.frame, config.labeling)
    if len(labels.episodes) == 0:
        raise NoFailureEventsError(_no_failure_message(clean, machine_name, config.labeling))
    lap("label")
    t_all = timestamps_ns(clean.frame)
    x_all, names = build_features(clean.frame, clean.sensor_columns)
    lap("features")

    status = indicator == "status"
    target = labels.label if status else labels.time_to_failure
    usable = np.flatnonzero(~np.isnan(target))
    t, y = t_all[usable], target[usable]
    if len(t) < 2:
        raise InsufficientDataError(f"machine '{machine_name}' has no rows with a known target")
    window = config.labeling.window_minutes
    purge = window if status else config.labeling.health_horizon_minutes
    split = chronological_split(t, test_fraction=config.test_fraction, purge_minutes=purge)
    onsets = labels.episodes.onsets_ns
    _check_events(t, y, split, onsets, status, machine_name, config)
    # Straight from the full matrix: no intermediate copy of the usable rows.
    x_train, y_train, t_train = x_all[usable[split.train]], y[split.train], t[split.train]
    x_test, y_test, t_test = x_all[usable[split.test]], y[split.test], t[split.test]
    del x_all

    sample = sample_within_budget(
        t_train, onsets, max_rows=max_rows_for_budget(config.memory_budget_mb, len(names)),
        keep_minutes=max(4 * window, config.labeling.health_horizon_minutes), seed=config.search.seed)
    fit_x, fit_y, fit_t = ((x_train, y_train, t_train) if not sample.sampled
                           else (x_train[sample.rows], y_train[sample.rows], t_train[sample.rows]))
    lap("split")

    search_fn = search_classifier if status else search_regressor
    try:
        result = search_fn(fit_x, fit_y, fit_t, names, config.search, purge_minutes=purge, weight=sample.weight)
    except NotEnoughEventsError as error:
        raise InsufficientDataError(
            f"machine '{machine_name}' needs at least two failure events in its training period (the first "
            f"{1 - config.test_fraction:.0%} of the range) to validate a model: {error}") from error
    del fit_x
    lap("search")

    predicted = xgb_tools.predict(result.booster, x_test, names)
    if status:
        assert result.threshold is not None
        threshold = result.threshold.threshold
        alarm = predicted >= threshold
        metrics = classification_metrics(y_test, predicted, threshold)
        baseline = classification_metrics(y_test, np.ones_like(predicted), 0.5)  # flags everything
        baseline["kind"] = "always alarm (flags every row)"
        baseline_alarm = np.ones(len(predicted), dtype=bool)
    else:
        alarm = predicted <= window
        metrics = regression_metrics(y_test, predicted)
        near = y_test < config.labeling.health_horizon_minutes
        metrics["mae_near_failure"] = (float(np.mean(np.abs(predicted[near] - y_test[near])))
                                       if near.any() else None)
        metrics["horizon_minutes"] = config.labeling.health_horizon_minutes
        mean = float(np.average(fit_y, weights=sample.weight))
        baseline = regression_metrics(y_test, np.full(len(y_test), mean))
        baseline["mae_near_failure"] = float(np.mean(np.abs(mean - y_test[near]))) if near.any() else None
        baseline["kind"] = "constant: the training mean"
        baseline_alarm = np.full(len(predicted), mean <= window)
    event_args = {"window_minutes": window, "lead_minutes": config.lead_minutes}
    metrics.update(event_metrics(t_test, alarm, onsets, **event_args))
    baseline.update(event_metrics(t_test, baseline_alarm, onsets, **event_args))
    for key in ("recall", "precision", "f2", "pr_auc", "rmse", "mae", "r2", "events_caught_ahead"):
        if key in baseline:
            metrics[f"baseline_{key}"] = baseline[key]
    lap("evaluate")

    importance = _importance(result, names)
    profile = training_profile(x_train, names, bins=config.profile_bins,
                               extra={"machine_name": machine_name, "indicator": indicator,
                                      "target_mean": float(np.mean(y_train)),
                                      "first_timestamp": _iso(t_train[0]), "last_timestamp": _iso(t_train[-1])})
    data = _data_summary(clean, labels, t, split, sample.summary(), onsets, status, window)
    lineage_info = {
        **dict(lineage or {}),
        "machine_name": machine_name,
        "indicator": indicator,
        "first_timestamp": data["first_timestamp"],
        "last_timestamp": data["last_timestamp"],
        "split_time": data["split_time"],
        "rows_in": data["rows_in"],
        "rows_train": data["rows_train"],
        "rows_test": data["rows_test"],
        "fingerprint": data["fingerprint"],
        "code_version": (lineage or {}).get("code_version") or __version__,
        "library_versions": library_versions(),
        "device": result.device,
    }
    params = {
        **result.params,
        "num_boost_round": result.rounds,
        "threshold": result.threshold.threshold if result.threshold else None,
        "scale_pos_weight": _scale_pos_weight_of(result) if status else None,
        "device": result.device,
        "search": result.summary(),
        "config": config.summary(),
    }
    lap("profile")
    model_bytes = xgb_tools.serialize(result.booster, {
        "modelforge_lineage": lineage_info,
        "modelforge_indicator": indicator,
        "modelforge_threshold": str(params["threshold"]),
        "modelforge_feature_names": names,
    })
    lap("serialize")
    return TrainedModel(
        model_bytes=model_bytes, model_format=MODEL_FORMAT, indicator=indicator, machine_name=machine_name,
        feature_names=names, metrics=metrics, baseline_metrics=baseline, params=params, data=data,
        lineage=lineage_info, profile=profile, feature_importance=importance,
        evaluation=Evaluation(timestamps_ns=t_test, y_true=y_test, predicted=predicted, alarm=alarm,
                              onsets_ns=onsets, x=x_test),
        timings=timings,
    )


def _check_events(t: np.ndarray, y: np.ndarray, split: TimeSplit, onsets: np.ndarray, status: bool,
                  machine_name: str, config: PipelineConfig) -> None:
    split_day = _iso(split.split_ns)[:10]
    if status:
        if y[split.train].sum() == 0:
            raise InsufficientDataError(
                f"machine '{machine_name}' has no observed pre-failure readings (the "
                f"{config.labeling.window_minutes} minutes before a failure) before {split_day}, the start of "
                "the test period: widen the date range to include earlier failures")
        if y[split.test].sum() == 0:
            raise InsufficientDataError(
                f"machine '{machine_name}' has no failure event in its test period (the last "
                f"{config.test_fraction:.0%} of the range, from {split_day}): widen the date range so that "
                "the model can be evaluated")
    elif not (y[split.test] < config.labeling.health_horizon_minutes).any():
        raise InsufficientDataError(
            f"machine '{machine_name}' has no failure in its test period (the last {config.test_fraction:.0%} "
            f"of the range, from {split_day}): widen the date range so that the model can be evaluated")


def _no_failure_message(clean: CleanTelemetry, machine_name: str, labeling: LabelingConfig) -> str:
    frame = clean.frame
    lowest = float(frame[RPM_VARIATION].min())
    return (f"no failure event in the data of '{machine_name}' from {frame['timestamp'].iloc[0]:%Y-%m-%d} to "
            f"{frame['timestamp'].iloc[-1]:%Y-%m-%d}: no reading of {RPM_VARIATION} is at or below "
            f"-{labeling.drop_threshold_pct:g}% (the lowest is {lowest:.1f}%), so there is no failure to learn "
            "to predict; choose a range that contains failures")


def _data_summary(clean: CleanTelemetry, labels: Labels, t: np.ndarray, split: TimeSplit,
                  sampling: dict[str, Any], onsets: np.ndarray, status: bool, window: int) -> dict[str, Any]:
    lead_up_start = onsets - window * 60 * 10**9
    train_end = t[split.train[-1]] if len(split.train) else split.split_ns
    return {
        "first_timestamp": clean.frame["timestamp"].iloc[0].isoformat(),
        "last_timestamp": clean.frame["timestamp"].iloc[-1].isoformat(),
        "split_time": _iso(split.split_ns),
        **clean.counts(),
        **labels.counts(),
        "rows_usable": len(t),
        "rows_purged_at_split": split.purged_rows,
        "rows_train": len(split.train),
        "rows_test": len(split.test),
        "failure_events_train": int((onsets <= train_end).sum()),
        "failure_events_test": int(((lead_up_start < t[-1]) & (onsets >= split.split_ns)).sum()),
        **sampling,
        "fingerprint": fingerprint(clean.frame),
    }


def _importance(result: SearchResult, names: list[str]) -> dict[str, float]:
    gains = {k: float(v) if not isinstance(v, list) else float(sum(v))
             for k, v in result.booster.get_score(importance_type="total_gain").items()}
    total = sum(gains.values()) or 1.0
    ranked = sorted(((name, gains.get(name, 0.0) / total) for name in names), key=lambda kv: -kv[1])
    return {name: round(float(share), 6) for name, share in ranked}


def _scale_pos_weight_of(result: SearchResult) -> float | None:
    import json

    config = json.loads(result.booster.save_config())
    value = config["learner"].get("objective", {}).get("reg_loss_param", {}).get("scale_pos_weight")
    return float(value) if value is not None else None


def fingerprint(frame: pd.DataFrame) -> str:
    """sha256 over the cleaned rows (values, column names and dtypes), so two models can be shown to have
    seen the same data."""
    digest = hashlib.sha256()
    digest.update(repr([(str(c), str(d)) for c, d in frame.dtypes.items()]).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def library_versions() -> dict[str, str]:
    versions = {}
    for package in LIBRARIES:
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            continue
    return versions


def _iso(ns: int | np.integer) -> str:
    return pd.Timestamp(int(ns), unit="ns", tz="UTC").isoformat()
