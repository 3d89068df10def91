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

import dataclasses
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
from modelforge.domain.evaluation import fleet_event_metrics
from modelforge.domain.features import FeatureConfig, build_features, feature_names
from modelforge.domain.indicators import INDICATORS, EventWording, indicator_spec
from modelforge.domain.labeling import LabelingConfig, Labels, label_failures, timestamps_ns
from modelforge.domain.profile import training_profile
from modelforge.domain.sampling import max_rows_for_budget, sample_fleet_within_budget
from modelforge.domain.search import SearchConfig, SearchResult
from modelforge.domain.splitting import NotEnoughEventsError, TimeSplit, chronological_split, machine_split
from modelforge.domain.telemetry import RPM_VARIATION, CleanTelemetry, ValidationConfig, clean_telemetry
from modelforge.errors import InsufficientDataError, NoFailureEventsError, TelemetrySchemaError

MODEL_FORMAT = xgb_tools.MODEL_FORMAT
__all__ = ["HOLDOUTS", "INDICATORS", "MODEL_FORMAT", "Evaluation", "PipelineConfig", "TrainedModel", "fingerprint",
           "fingerprint_all", "library_versions", "train_model"]
LIBRARIES = ("xgboost", "scikit-learn", "pandas", "numpy", "pyarrow", "matplotlib")


HOLDOUTS = ("auto", "time", "machines")


@dataclass(frozen=True)
class PipelineConfig:
    labeling: LabelingConfig = field(default_factory=LabelingConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    test_fraction: float = 0.2
    # time: test on the final period (every machine's rows after one cut in time); machines: test on whole
    # machines never trained on (run-to-failure fleets, where every machine's end is its failure); auto:
    # time for one machine, machines for a fleet.
    holdout: str = "auto"
    lead_minutes: float = 15.0  # "caught at least N minutes ahead"
    memory_budget_mb: float = 1024.0  # training rows beyond it are sampled (every failure window kept)
    profile_bins: int = 20

    def __post_init__(self) -> None:
        if self.holdout not in HOLDOUTS:
            raise ValueError(f"holdout must be one of {HOLDOUTS}, not {self.holdout!r}")

    def summary(self) -> dict[str, Any]:
        summary = asdict(self)
        summary["search"].pop("grid", None)
        summary["validation"].pop("sensor_bounds", None)
        return summary


@dataclass(frozen=True)
class Evaluation:
    """The held-out rows, for the report's plots and the gate."""

    timestamps_ns: np.ndarray
    y_true: np.ndarray
    predicted: np.ndarray  # status: probability of pre-failure; health: predicted minutes to failure
    alarm: np.ndarray
    onsets_ns: np.ndarray  # every onset in the data (of every machine)
    x: np.ndarray  # the held-out rows' features (float32, columns = feature_names): the gate's shared holdout
    machine: np.ndarray | None = None  # fleets: index into machine_names, per row
    onset_machine: np.ndarray | None = None  # fleets: index into machine_names, per onset
    machine_names: tuple[str, ...] = ()

    def timeline_view(self) -> Evaluation:
        """One machine's held-out rows (the one with the most), in time order: what a timeline can show."""
        if self.machine is None or len(self.machine) == 0:
            return self
        counts = np.bincount(self.machine, minlength=len(self.machine_names))
        chosen = int(np.argmax(counts))
        rows = np.flatnonzero(self.machine == chosen)
        rows = rows[np.argsort(self.timestamps_ns[rows], kind="stable")]
        onsets = self.onsets_ns if self.onset_machine is None else self.onsets_ns[self.onset_machine == chosen]
        return Evaluation(timestamps_ns=self.timestamps_ns[rows], y_true=self.y_true[rows],
                          predicted=self.predicted[rows], alarm=self.alarm[rows], onsets_ns=onsets,
                          x=self.x[rows], machine=None, onset_machine=None,
                          machine_names=(self.machine_names[chosen],))


@dataclass(frozen=True)
class TrainedModel:
    model_bytes: bytes
    model_format: str
    indicator: str
    machine_name: str  # the model's name: the machine's, or the fleet's
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
    machine_names: tuple[str, ...] = ()  # the machines whose data trained it


@dataclass
class _Machine:
    """One machine's data, cleaned, labeled and featurized on its own (no window spans two machines)."""

    name: str
    clean: CleanTelemetry
    labels: Labels
    t: np.ndarray  # every cleaned row's timestamp
    x: np.ndarray | None  # every cleaned row's features (released once pooled)
    usable: np.ndarray  # rows with a known target
    target: np.ndarray  # the indicator's target on every row (NaN: excluded)


def train_model(frame: pd.DataFrame | Mapping[str, pd.DataFrame], *, machine_name: str, indicator: str,
                config: PipelineConfig, lineage: Mapping[str, Any] | None = None,
                events: Mapping[str, np.ndarray] | None = None) -> TrainedModel:
    """Trains one model; raises a named TrainingDataError when the data cannot produce one.

    ``frame`` is one machine's telemetry, or a mapping machine name -> telemetry for a fleet model named
    ``machine_name``. ``events``: recorded failure timestamps (epoch ns) per machine; without it, failures are
    the RPM drops in the telemetry.
    """
    spec = indicator_spec(indicator)
    frames = dict(frame) if isinstance(frame, Mapping) else {machine_name: frame}
    if not frames:
        raise InsufficientDataError(f"model '{machine_name}' names no machine to train on")
    fleet = len(frames) > 1
    holdout = config.holdout if config.holdout != "auto" else ("machines" if fleet else "time")
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 4)
        clock = now

    source = "rpm_drop" if events is None else "records"
    # A fleet needs min_rows in all; one machine may bring fewer (each fails too rarely to learn alone).
    per_machine = config.validation if not fleet else dataclasses.replace(config.validation, min_rows=2)
    cleaned = {name: clean_telemetry(machine_frame, machine_name=name, config=per_machine,
                                     require_rpm_variation=events is None)
               for name, machine_frame in frames.items()}
    if fleet and (rows := sum(len(c.frame) for c in cleaned.values())) < config.validation.min_rows:
        raise InsufficientDataError(f"fleet '{machine_name}' has {rows} valid rows in the range, at least "
                                    f"{config.validation.min_rows} are needed")
    _check_same_sensors(cleaned)
    # A sensor that never changes carries no information, only columns: C-MAPSS has seven of them.
    sensors, constant = _informative_sensors(cleaned)
    machines: list[_Machine] = []
    for name, clean in cleaned.items():
        recorded = None if events is None else np.asarray(events.get(name, np.array([], dtype=np.int64)))
        labels = label_failures(clean.frame, config.labeling, recorded)
        x, names = build_features(clean.frame, sensors, config.features)
        target = spec.target(labels)
        machines.append(_Machine(name=name, clean=clean, labels=labels, t=timestamps_ns(clean.frame), x=x,
                                 usable=np.flatnonzero(~np.isnan(target)), target=target))
    del cleaned
    lap("validate_label_features")
    names = feature_names(sensors, config.features)
    if sum(len(m.labels.episodes) for m in machines) == 0:
        raise NoFailureEventsError(_no_failure_message(machines, machine_name, config.labeling, source))

    # Pooled rows: target, time and machine of every usable row, and where its features are. One machine's
    # rows are taken straight from its matrix: no intermediate copy of the usable rows.
    if fleet:
        x_source = np.concatenate([m.x[m.usable] for m in machines if m.x is not None])
        index = np.arange(len(x_source))
    else:
        assert machines[0].x is not None
        x_source, index = machines[0].x, machines[0].usable
    for m in machines:
        m.x = None
    y = np.concatenate([m.target[m.usable] for m in machines])
    t = np.concatenate([m.t[m.usable] for m in machines])
    group = np.concatenate([np.full(len(m.usable), i, dtype=np.int32) for i, m in enumerate(machines)])
    onsets = np.concatenate([m.labels.episodes.onsets_ns for m in machines])
    onset_group = np.concatenate([np.full(len(m.labels.episodes), i, dtype=np.int32)
                                  for i, m in enumerate(machines)])
    if len(t) < 2:
        raise InsufficientDataError(f"'{machine_name}' has no rows with a known target")
    if holdout == "time" and fleet:
        order = np.lexsort((group, t))  # one timeline for the fleet: a cut in time is the same for all
        index, y, t, group = index[order], y[order], t[order], group[order]

    window = config.labeling.window_minutes
    purge = spec.purge_minutes(config.labeling)
    if holdout == "time":
        split = chronological_split(t, test_fraction=config.test_fraction, purge_minutes=purge)
    else:
        split = machine_split(group, spec.has_event(y, config.labeling), test_fraction=config.test_fraction,
                              seed=config.search.seed, t=t)
    spec.check_events(y[split.train], y[split.test], model_name=machine_name, labeling=config.labeling,
                      wording=_event_wording(split, config, holdout))
    x_train, y_train, t_train, g_train = (x_source[index[split.train]], y[split.train], t[split.train],
                                          group[split.train])
    x_test, y_test, t_test, g_test = x_source[index[split.test]], y[split.test], t[split.test], group[split.test]
    del x_source

    sample = sample_fleet_within_budget(
        t_train, g_train, onsets, onset_group, max_rows=max_rows_for_budget(config.memory_budget_mb, len(names)),
        keep_minutes=max(4 * window, config.labeling.health_horizon_minutes), seed=config.search.seed)
    fit_x, fit_y, fit_t, fit_g = ((x_train, y_train, t_train, g_train) if not sample.sampled
                                  else (x_train[sample.rows], y_train[sample.rows], t_train[sample.rows],
                                        g_train[sample.rows]))
    lap("split")

    try:
        result = spec.search(fit_x, fit_y, fit_t, names, config.search, purge_minutes=purge, weight=sample.weight,
                           groups=fit_g if holdout == "machines" else None)
    except NotEnoughEventsError as error:
        where = ("machines" if holdout == "machines"
                 else f"period (the first {1 - config.test_fraction:.0%} of the range)")
        raise InsufficientDataError(
            f"'{machine_name}' needs failure events on both sides of its validation cut, so at least two in "
            f"its training {where}, to validate a model: {error}") from error
    del fit_x
    lap("search")

    predicted = xgb_tools.predict(result.booster, x_test, names)
    alarm = spec.alarm(predicted, result, config.labeling)
    metrics = spec.metrics(y_test, predicted, result, config.labeling)
    baseline, baseline_alarm = spec.baseline(y_test, predicted, fit_y, sample.weight, config.labeling)
    event_args = {"window_minutes": window, "lead_minutes": config.lead_minutes}
    metrics.update(fleet_event_metrics(t_test, g_test, alarm, onsets, onset_group, **event_args))
    baseline.update(fleet_event_metrics(t_test, g_test, baseline_alarm, onsets, onset_group, **event_args))
    for key in ("recall", "precision", "f2", "pr_auc", "rmse", "mae", "r2", "events_caught_ahead"):
        if key in baseline:
            metrics[f"baseline_{key}"] = baseline[key]
    lap("evaluate")

    machine_names = tuple(m.name for m in machines)
    importance = _importance(result, names)
    first_train, last_train = (int(t_train.min()), int(t_train.max())) if len(t_train) else (0, 0)
    profile = training_profile(x_train, names, bins=config.profile_bins,
                               extra={"machine_name": machine_name, "indicator": indicator,
                                      "machine_names": list(machine_names),
                                      "target_mean": float(np.mean(y_train)),
                                      "first_timestamp": _iso(first_train), "last_timestamp": _iso(last_train)})
    data = _data_summary(machines, t, split, sample.summary(), onsets, window, holdout, source, g_test)
    data["sensors_constant_dropped"] = list(constant)
    lineage_info = {
        **dict(lineage or {}),
        "machine_name": machine_name,
        "machine_names": list(machine_names),
        "indicator": indicator,
        "failure_events": source,
        "holdout": holdout,
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
        "scale_pos_weight": spec.scale_pos_weight(result),
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
                              onsets_ns=onsets, x=x_test, machine=g_test if fleet else None,
                              onset_machine=onset_group if fleet else None,
                              machine_names=machine_names),
        timings=timings, machine_names=machine_names,
    )


def _check_same_sensors(cleaned: Mapping[str, CleanTelemetry]) -> None:
    (reference_name, reference), *others = cleaned.items()
    for name, clean in others:
        if clean.sensor_columns != reference.sensor_columns:
            missing = sorted(set(reference.sensor_columns) - set(clean.sensor_columns))
            extra = sorted(set(clean.sensor_columns) - set(reference.sensor_columns))
            raise TelemetrySchemaError(
                f"a fleet model needs the same sensor columns on every machine: '{name}' differs from "
                f"'{reference_name}' (missing: {', '.join(missing) or 'none'}; extra: {', '.join(extra) or 'none'}"
                "; or the same columns in another order)")


def _informative_sensors(cleaned: Mapping[str, CleanTelemetry]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The sensors that vary somewhere in the data, and those that never do (same value, or always missing)."""
    sensors = next(iter(cleaned.values())).sensor_columns
    low = {s: np.inf for s in sensors}
    high = {s: -np.inf for s in sensors}
    for clean in cleaned.values():
        for sensor in sensors:
            values = clean.frame[sensor]
            low[sensor] = min(low[sensor], float(values.min(skipna=True)) if values.notna().any() else np.inf)
            high[sensor] = max(high[sensor], float(values.max(skipna=True)) if values.notna().any() else -np.inf)
    constant = tuple(s for s in sensors if not high[s] > low[s])
    kept = tuple(s for s in sensors if s not in constant)
    if not kept:
        raise TelemetrySchemaError(f"every sensor is constant or empty in the data ({', '.join(sensors)}): "
                                   "there is nothing to learn from")
    return kept, constant


def _event_wording(split: TimeSplit, config: PipelineConfig, holdout: str) -> EventWording:
    if holdout == "machines":
        return EventWording(before="in its training machines", test_part="its held-out machines",
                            widen="add machines with recorded failures")
    split_day = _iso(split.split_ns)[:10]
    return EventWording(
        before=f"before {split_day}, the test period",
        test_part=f"its test period (the last {config.test_fraction:.0%} of the range, from {split_day})",
        widen="widen the date range to include earlier failures")


def _no_failure_message(machines: list[_Machine], machine_name: str, labeling: LabelingConfig,
                        source: str) -> str:
    first = min(m.clean.frame["timestamp"].iloc[0] for m in machines)
    last = max(m.clean.frame["timestamp"].iloc[-1] for m in machines)
    where = f"the data of '{machine_name}' from {first:%Y-%m-%d} to {last:%Y-%m-%d}"
    if source == "records":
        names = ", ".join(m.name for m in machines[:5]) + (" ..." if len(machines) > 5 else "")
        return (f"no failure event in {where}: the failure-events dataset records no failure of {names} in the "
                "range, so there is no failure to learn to predict; import the failure records or widen the range")
    lowest = min(float(m.clean.frame[RPM_VARIATION].min()) for m in machines)
    return (f"no failure event in {where}: no reading of {RPM_VARIATION} is at or below "
            f"-{labeling.drop_threshold_pct:g}% (the lowest is {lowest:.1f}%), so there is no failure to learn "
            "to predict; choose a range that contains failures")


def _data_summary(machines: list[_Machine], t: np.ndarray, split: TimeSplit, sampling: dict[str, Any],
                  onsets: np.ndarray, window: int, holdout: str, source: str,
                  test_group: np.ndarray) -> dict[str, Any]:
    counts: dict[str, Any] = {}
    for m in machines:
        for key, value in (m.clean.counts() | m.labels.counts()).items():
            if isinstance(value, dict):
                merged = counts.setdefault(key, {})
                for k, v in value.items():
                    merged[k] = merged.get(k, 0) + v if isinstance(v, int) else v
            else:
                counts[key] = counts.get(key, 0) + value
    test_machines = sorted({machines[i].name for i in np.unique(test_group)})
    train_rows_machines = [m.name for m in machines if m.name not in test_machines]
    if holdout == "machines":
        onset_counts = {"failure_events_train": int(sum(len(m.labels.episodes) for m in machines
                                                        if m.name in train_rows_machines)),
                        "failure_events_test": int(sum(len(m.labels.episodes) for m in machines
                                                       if m.name in test_machines))}
    else:
        lead_up_start = onsets - window * 60 * 10**9
        train_end = t[split.train].max() if len(split.train) else split.split_ns
        onset_counts = {"failure_events_train": int((onsets <= train_end).sum()),
                        "failure_events_test": int(((lead_up_start < t.max()) & (onsets >= split.split_ns)).sum())}
    return {
        "first_timestamp": min(m.clean.frame["timestamp"].iloc[0] for m in machines).isoformat(),
        "last_timestamp": max(m.clean.frame["timestamp"].iloc[-1] for m in machines).isoformat(),
        "split_time": _iso(split.split_ns),
        "failure_events_source": source,
        "holdout": holdout,
        "machines": len(machines),
        "machines_test": test_machines if holdout == "machines" else None,
        **counts,
        "rows_usable": len(t),
        "rows_purged_at_split": split.purged_rows,
        "rows_train": len(split.train),
        "rows_test": len(split.test),
        **onset_counts,
        **sampling,
        "fingerprint": fingerprint_all([m.clean.frame for m in machines]),
    }


def _importance(result: SearchResult, names: list[str]) -> dict[str, float]:
    gains = {k: float(v) if not isinstance(v, list) else float(sum(v))
             for k, v in result.booster.get_score(importance_type="total_gain").items()}
    total = sum(gains.values()) or 1.0
    ranked = sorted(((name, gains.get(name, 0.0) / total) for name in names), key=lambda kv: -kv[1])
    return {name: round(float(share), 6) for name, share in ranked}


def fingerprint(frame: pd.DataFrame) -> str:
    """sha256 over the cleaned rows (values, column names and dtypes), so two models can be shown to have
    seen the same data."""
    return fingerprint_all([frame])


def fingerprint_all(frames: list[pd.DataFrame]) -> str:
    """:func:`fingerprint` over several machines' rows, in order (one frame gives the same digest as before)."""
    digest = hashlib.sha256()
    for frame in frames:
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
