"""The training pipeline for one machine or a fleet (the seed's ModelFactory): validate and clean, label,
featurize, hold out the final period or whole machines, search and train, evaluate on the held-out rows,
profile, and serialize in XGBoost's own format with the model's lineage inside it.

:func:`train_model` runs it as six stages, each a function of small dataclasses (see "what the stages hand
each other" below), so a stage can be read, and changed, on its own:

1. prepare each machine (:func:`_prepare_machines`): clean, label and featurize it on its own (a fleet's
   cleaning and labeling as one pooled pass each, grouped by machine: domain/cleaning.py, label_fleet);
2. pool (:func:`_pool`): every machine's usable rows as one set;
3. split and sample (:func:`_split`, :func:`_sample`): the holdout, then the training rows within the memory
   budget;
4. search (:func:`_search`): hyperparameters chosen on validation data, the model trained;
5. evaluate (:func:`_evaluate`): the model and its baseline on the held-out rows;
6. describe and serialize (:func:`_describe`, :func:`_serialize`): profile, data summary, lineage, params.

Indicators (each an :class:`~modelforge.domain.indicators.IndicatorSpec`, which makes every decision that
differs between them)
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
from modelforge.domain.cleaning import clean_fleet
from modelforge.domain.evaluation import fleet_event_metrics
from modelforge.domain.features import FeatureConfig
from modelforge.domain.indicators import INDICATORS, EventWording, IndicatorSpec, indicator_spec
from modelforge.domain.labeling import LabelingConfig, Labels, label_failures, label_fleet, timestamps_ns
from modelforge.domain.profile import training_profile
from modelforge.domain.recipe import FeatureRecipe
from modelforge.domain.regimes import RegimeConfig, fit_regimes
from modelforge.domain.sampling import SampleResult, max_rows_for_budget, sample_fleet_within_budget
from modelforge.domain.scoring import predict_scores
from modelforge.domain.search import SearchConfig, SearchResult
from modelforge.domain.splitting import TimeSplit, chronological_split, machine_split
from modelforge.domain.telemetry import RPM_VARIATION, CleanTelemetry, ValidationConfig, clean_telemetry
from modelforge.domain.units import MINUTE_NS
from modelforge.errors import InsufficientDataError, NoFailureEventsError, NotEnoughEventsError, TelemetrySchemaError

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
    regimes: RegimeConfig = field(default_factory=RegimeConfig)
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
    recipe: FeatureRecipe | None = None  # what turns telemetry into its features (stored beside the model)


# ---------------------------------------------------------------- what the stages hand each other
#
# train_model runs six stages, each taking and returning the small dataclasses below rather than a long
# list of arrays (all frozen but _Machine, whose matrix is released once pooled): prepare each machine
# (clean, label, featurize) -> pool -> split and sample -> search -> evaluate -> describe (profile, data
# summary, lineage, params) and serialize. What differs between the indicators is asked of the plan's
# IndicatorSpec; fleet vs one machine and the holdout are resolved once, in the plan, so no stage re-derives
# them.


@dataclass(frozen=True)
class _Plan:
    """What one call trains and how, resolved once from train_model's arguments."""

    model_name: str  # the machine's name, or the fleet's
    indicator: str
    spec: IndicatorSpec
    config: PipelineConfig
    fleet: bool  # more than one machine: their rows are pooled into one model
    holdout: str  # "time" or "machines": "auto" resolved (machines for a fleet, time for one machine)
    source: str  # failure events from "records" (recorded timestamps) or "rpm_drop" (the telemetry itself)
    lineage: Mapping[str, Any] | None  # the caller's (job id, dates...), completed and stored in the model

    @property
    def by_machines(self) -> bool:
        return self.holdout == "machines"

    @property
    def purge_minutes(self) -> float:
        return self.spec.purge_minutes(self.config.labeling)

    def machine_validation(self) -> ValidationConfig:
        # A fleet needs min_rows in all; one machine may bring fewer (each fails too rarely to learn alone).
        return self.config.validation if not self.fleet else dataclasses.replace(self.config.validation, min_rows=2)

    def event_wording(self, split: TimeSplit) -> EventWording:
        """How a missing-events error names the split's sides: whole machines, or the periods of one cut."""
        if self.by_machines:
            return EventWording(before="in its training machines", test_part="its held-out machines",
                                widen="add machines with recorded failures")
        split_day = _iso(split.split_ns)[:10]
        return EventWording(
            before=f"before {split_day}, the test period",
            test_part=f"its test period (the last {self.config.test_fraction:.0%} of the range, from {split_day})",
            widen="widen the date range to include earlier failures")


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


@dataclass(frozen=True)
class _Prepared:
    """Every machine, prepared; the sensors the features are made of, and those dropped as constant."""

    machines: list[_Machine]
    sensors: tuple[str, ...]
    constant: tuple[str, ...]
    feature_names: list[str]
    recipe: FeatureRecipe

    @property
    def machine_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.machines)


@dataclass(frozen=True)
class _Pool:
    """Target, time and machine (an index into the machines) of every usable row, in the order the split
    sees them; and every failure onset with its machine."""

    y: np.ndarray
    t: np.ndarray
    group: np.ndarray
    onsets: np.ndarray
    onset_group: np.ndarray


@dataclass(frozen=True)
class _Features:
    """Where the pooled rows' features are: pooled row i is row ``index[i]`` of ``x``. One machine's matrix is
    used in place (no copy of its usable rows); a fleet's usable rows are concatenated once."""

    x: np.ndarray
    index: np.ndarray

    def take(self, rows: np.ndarray) -> np.ndarray:
        return self.x[self.index[rows]]


@dataclass(frozen=True)
class _Rows:
    """Some pooled rows: features, target, time and machine."""

    x: np.ndarray
    y: np.ndarray
    t: np.ndarray
    g: np.ndarray

    def subset(self, rows: np.ndarray) -> _Rows:
        return _Rows(self.x[rows], self.y[rows], self.t[rows], self.g[rows])


@dataclass(frozen=True)
class _Held:
    """The split, and the rows on each side of it."""

    split: TimeSplit
    train: _Rows
    test: _Rows


@dataclass(frozen=True)
class _Fit:
    """The training rows the model is fitted on (all of them, or a sample within the memory budget)."""

    rows: _Rows
    sample: SampleResult


@dataclass(frozen=True)
class _Scores:
    """The model on the held-out rows, beside its baseline's numbers."""

    predicted: np.ndarray
    alarm: np.ndarray
    metrics: dict[str, Any]
    baseline: dict[str, Any]


@dataclass(frozen=True)
class _Description:
    """What is stored beside (and, for lineage, inside) the model."""

    profile: dict[str, Any]
    data: dict[str, Any]
    lineage: dict[str, Any]
    params: dict[str, Any]
    feature_importance: dict[str, float]


class _Stopwatch:
    """Seconds per stage, for the job's record (TrainedModel.timings): read, clean, label, features, pool,
    split, search, evaluate, profile, serialize (the use case adds read, report and write around them), so the
    next bottleneck of a fleet shows by name (benchmarks/fleet.py)."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._clock = time.perf_counter()

    def lap(self, name: str) -> None:
        """The time since the last lap, added to ``name`` (a stage run in several pieces sums them)."""
        now = time.perf_counter()
        self.timings[name] = round(self.timings.get(name, 0.0) + now - self._clock, 4)
        self._clock = now


# ---------------------------------------------------------------- the pipeline


def train_model(frame: pd.DataFrame | Mapping[str, pd.DataFrame], *, machine_name: str, indicator: str,
                config: PipelineConfig, lineage: Mapping[str, Any] | None = None,
                events: Mapping[str, np.ndarray] | None = None) -> TrainedModel:
    """Trains one model; raises a named TrainingDataError when the data cannot produce one.

    ``frame`` is one machine's telemetry, or a mapping machine name -> telemetry for a fleet model named
    ``machine_name``. ``events``: recorded failure timestamps (epoch ns) per machine; without it, failures are
    the RPM drops in the telemetry.
    """
    plan, frames = _resolve_plan(frame, machine_name=machine_name, indicator=indicator, config=config,
                                 events=events, lineage=lineage)
    watch = _Stopwatch()
    prepared = _prepare_machines(frames, plan, events, watch)
    pool, features = _pool(prepared, plan)
    watch.lap("pool")
    held = _split(pool, features, plan)
    del features  # the pooled matrix: only the train and test rows' copies are needed from here on
    fit = _sample(held.train, pool, plan, len(prepared.feature_names))
    watch.lap("split")
    result = _search(fit, prepared.feature_names, plan)
    watch.lap("search")
    scores = _evaluate(result, held.test, fit, pool, prepared.feature_names, plan)
    watch.lap("evaluate")
    described = _describe(result, prepared, pool, held, fit.sample, plan)
    watch.lap("profile")
    model_bytes = _serialize(result, described, prepared.feature_names, plan)
    watch.lap("serialize")
    machine_names = prepared.machine_names
    return TrainedModel(
        model_bytes=model_bytes, model_format=MODEL_FORMAT, indicator=indicator, machine_name=machine_name,
        feature_names=prepared.feature_names, metrics=scores.metrics, baseline_metrics=scores.baseline,
        params=described.params, data=described.data, lineage=described.lineage, profile=described.profile,
        feature_importance=described.feature_importance,
        evaluation=Evaluation(timestamps_ns=held.test.t, y_true=held.test.y, predicted=scores.predicted,
                              alarm=scores.alarm, onsets_ns=pool.onsets, x=held.test.x,
                              machine=held.test.g if plan.fleet else None,
                              onset_machine=pool.onset_group if plan.fleet else None,
                              machine_names=machine_names),
        timings=watch.timings, machine_names=machine_names, recipe=prepared.recipe,
    )


def _resolve_plan(frame: pd.DataFrame | Mapping[str, pd.DataFrame], *, machine_name: str, indicator: str,
                  config: PipelineConfig, events: Mapping[str, np.ndarray] | None = None,
                  lineage: Mapping[str, Any] | None = None) -> tuple[_Plan, dict[str, pd.DataFrame]]:
    """The plan, and the telemetry per machine (one machine's frame is named after the model)."""
    spec = indicator_spec(indicator)
    frames = dict(frame) if isinstance(frame, Mapping) else {machine_name: frame}
    if not frames:
        raise InsufficientDataError(f"model '{machine_name}' names no machine to train on")
    fleet = len(frames) > 1
    holdout = config.holdout if config.holdout != "auto" else ("machines" if fleet else "time")
    return _Plan(model_name=machine_name, indicator=indicator, spec=spec, config=config, fleet=fleet,
                 holdout=holdout, source="rpm_drop" if events is None else "records", lineage=lineage), frames


# ---------------------------------------------------------------- stage 1: prepare each machine


def _prepare_machines(frames: Mapping[str, pd.DataFrame], plan: _Plan, events: Mapping[str, np.ndarray] | None,
                      watch: _Stopwatch | None = None) -> _Prepared:
    """Cleans, labels and featurizes each machine on its own; raises when no machine shows a failure."""
    watch = watch or _Stopwatch()
    cleaned = _clean_machines(frames, plan, require_rpm_variation=events is None)
    _check_same_sensors(cleaned)
    # A sensor that never changes carries no information, only columns: C-MAPSS has seven of them.
    sensors, constant = _informative_sensors(cleaned)
    recipe = _recipe(cleaned, sensors, plan.config)
    watch.lap("clean")
    labeled = _label_machines(cleaned, plan, events)
    watch.lap("label")
    machines = [_featurize_machine(name, cleaned[name], labels, recipe, plan) for name, labels in labeled.items()]
    watch.lap("features")
    if sum(len(m.labels.episodes) for m in machines) == 0:
        raise NoFailureEventsError(_no_failure_message(machines, plan))
    return _Prepared(machines=machines, sensors=recipe.sensors, constant=constant,
                     feature_names=recipe.feature_names, recipe=recipe)


def _recipe(cleaned: Mapping[str, CleanTelemetry], sensors: tuple[str, ...], config: PipelineConfig) -> FeatureRecipe:
    """The features' recipe; with regimes, fitted on the training data given: the operating settings define
    the regimes and are not featurized themselves, and the sensors are those that vary within a regime."""
    regimes = config.regimes
    if not regimes.enabled:
        return FeatureRecipe(sensors=sensors, features=config.features)
    for name, clean in cleaned.items():
        missing = [s for s in regimes.settings if s not in clean.frame.columns]
        if missing:
            raise TelemetrySchemaError(f"options.operating_settings: '{name}' has no column "
                                       f"{', '.join(missing)} (its columns: {', '.join(clean.sensor_columns)})")
    candidates = [s for s in sensors if s not in regimes.settings]
    if not candidates:
        raise TelemetrySchemaError("options.operating_settings names every varying column: no sensor is left")
    model = fit_regimes([c.frame for c in cleaned.values()], candidates, regimes)
    if not model.sensors:
        raise TelemetrySchemaError("no sensor varies within an operating regime: there is nothing to learn from")
    return FeatureRecipe(sensors=model.sensors, features=config.features, regimes=model)


def _clean_machines(frames: Mapping[str, pd.DataFrame], plan: _Plan, *,
                    require_rpm_variation: bool) -> dict[str, CleanTelemetry]:
    per_machine = plan.machine_validation()
    # A fleet in one pooled pass where its frames are uniform (domain/cleaning.py), else machine by machine:
    # the same CleanTelemetry either way.
    pooled = clean_fleet(frames, config=per_machine, require_rpm_variation=require_rpm_variation)
    cleaned = pooled if pooled is not None else {
        name: clean_telemetry(machine_frame, machine_name=name, config=per_machine,
                              require_rpm_variation=require_rpm_variation)
        for name, machine_frame in frames.items()}
    min_rows = plan.config.validation.min_rows
    if plan.fleet and (rows := sum(len(c.frame) for c in cleaned.values())) < min_rows:
        raise InsufficientDataError(f"fleet '{plan.model_name}' has {rows} valid rows in the range, at least "
                                    f"{min_rows} are needed")
    return cleaned


def _label_machines(cleaned: Mapping[str, CleanTelemetry], plan: _Plan,
                    events: Mapping[str, np.ndarray] | None) -> dict[str, Labels]:
    """Each machine's labels, from its own rows and its own recorded failures only: a fleet's in one pooled
    pass (``label_fleet``, searches within each machine), one machine's by ``label_failures``."""
    names = list(cleaned)
    recorded = None if events is None else [np.asarray(events.get(name, np.array([], dtype=np.int64)))
                                            for name in names]
    if plan.fleet:
        labels = label_fleet([cleaned[name].frame for name in names], plan.config.labeling, recorded)
        return dict(zip(names, labels, strict=True))
    return {names[0]: label_failures(cleaned[names[0]].frame, plan.config.labeling,
                                     None if recorded is None else recorded[0])}


def _featurize_machine(name: str, clean: CleanTelemetry, labels: Labels, recipe: FeatureRecipe,
                       plan: _Plan) -> _Machine:
    """One machine's features (its windows never reach another machine's rows) and target."""
    x, _ = recipe.build(clean.frame)
    target = plan.spec.target(labels)
    return _Machine(name=name, clean=clean, labels=labels, t=timestamps_ns(clean.frame), x=x,
                    usable=np.flatnonzero(~np.isnan(target)), target=target)


# ---------------------------------------------------------------- stage 2: pool


def _pool(prepared: _Prepared, plan: _Plan) -> tuple[_Pool, _Features]:
    """Every machine's usable rows as one set; releases the machines' matrices (the pool's features own
    them now)."""
    machines = prepared.machines
    if plan.fleet:
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
        raise InsufficientDataError(f"'{plan.model_name}' has no rows with a known target")
    if plan.holdout == "time" and plan.fleet:
        order = np.lexsort((group, t))  # one timeline for the fleet: a cut in time is the same for all
        index, y, t, group = index[order], y[order], t[order], group[order]
    return (_Pool(y=y, t=t, group=group, onsets=onsets, onset_group=onset_group),
            _Features(x=x_source, index=index))


# ---------------------------------------------------------------- stage 3: split and sample


def _split(pool: _Pool, features: _Features, plan: _Plan) -> _Held:
    """Holds out the final period or whole machines; checks both sides hold failures before copying rows."""
    config = plan.config
    if plan.by_machines:
        split = machine_split(pool.group, plan.spec.has_event(pool.y, config.labeling),
                              test_fraction=config.test_fraction, seed=config.search.seed, t=pool.t)
    else:
        split = chronological_split(pool.t, test_fraction=config.test_fraction, purge_minutes=plan.purge_minutes)
    plan.spec.check_events(pool.y[split.train], pool.y[split.test], model_name=plan.model_name,
                           labeling=config.labeling, wording=plan.event_wording(split))
    train = _Rows(features.take(split.train), pool.y[split.train], pool.t[split.train], pool.group[split.train])
    test = _Rows(features.take(split.test), pool.y[split.test], pool.t[split.test], pool.group[split.test])
    return _Held(split=split, train=train, test=test)


def _sample(train: _Rows, pool: _Pool, plan: _Plan, n_features: int) -> _Fit:
    """The training rows within the memory budget: far-from-failure rows sampled, every failure window kept."""
    config = plan.config
    sample = sample_fleet_within_budget(
        train.t, train.g, pool.onsets, pool.onset_group,
        max_rows=max_rows_for_budget(config.memory_budget_mb, n_features),
        keep_minutes=max(4 * config.labeling.window_minutes, config.labeling.health_horizon_minutes),
        seed=config.search.seed)
    return _Fit(rows=train.subset(sample.rows) if sample.sampled else train, sample=sample)


# ---------------------------------------------------------------- stage 4: search


def _search(fit: _Fit, names: list[str], plan: _Plan) -> SearchResult:
    config = plan.config
    try:
        return plan.spec.search(fit.rows.x, fit.rows.y, fit.rows.t, names, config.search,
                                purge_minutes=plan.purge_minutes, weight=fit.sample.weight,
                                groups=fit.rows.g if plan.by_machines else None)
    except NotEnoughEventsError as error:
        where = ("machines" if plan.by_machines
                 else f"period (the first {1 - config.test_fraction:.0%} of the range)")
        raise InsufficientDataError(
            f"'{plan.model_name}' needs failure events on both sides of its validation cut, so at least two in "
            f"its training {where}, to validate a model: {error}") from error


# ---------------------------------------------------------------- stage 5: evaluate


def _evaluate(result: SearchResult, test: _Rows, fit: _Fit, pool: _Pool, names: list[str], plan: _Plan) -> _Scores:
    """The model and its baseline on the held-out rows: the spec's row metrics, then the events caught."""
    spec, labeling = plan.spec, plan.config.labeling
    predicted = predict_scores(result.booster, test.x)
    alarm = spec.alarm(predicted, result, labeling)
    metrics = spec.metrics(test.y, predicted, result, labeling)
    baseline, baseline_alarm = spec.baseline(test.y, predicted, fit.rows.y, fit.sample.weight, labeling)
    event_args = {"window_minutes": labeling.window_minutes, "lead_minutes": plan.config.lead_minutes}
    metrics.update(fleet_event_metrics(test.t, test.g, alarm, pool.onsets, pool.onset_group, **event_args))
    baseline.update(fleet_event_metrics(test.t, test.g, baseline_alarm, pool.onsets, pool.onset_group,
                                        **event_args))
    for key in ("recall", "precision", "f2", "pr_auc", "rmse", "mae", "r2", "events_caught_ahead"):
        if key in baseline:
            metrics[f"baseline_{key}"] = baseline[key]
    return _Scores(predicted=predicted, alarm=alarm, metrics=metrics, baseline=baseline)


# ---------------------------------------------------------------- stage 6: describe and serialize


def _describe(result: SearchResult, prepared: _Prepared, pool: _Pool, held: _Held, sample: SampleResult,
              plan: _Plan) -> _Description:
    names = prepared.feature_names
    importance = _importance(result, names)
    profile = _profile(held.train, prepared, plan)
    data = _data_summary(prepared, pool, held, sample, plan)
    return _Description(profile=profile, data=data, lineage=_lineage(data, result, prepared, plan),
                        params=_params(result, plan), feature_importance=importance)


def _profile(train: _Rows, prepared: _Prepared, plan: _Plan) -> dict[str, Any]:
    """The training rows feature by feature: what a later drift check compares new data with."""
    first_train, last_train = (int(train.t.min()), int(train.t.max())) if len(train.t) else (0, 0)
    return training_profile(train.x, prepared.feature_names, bins=plan.config.profile_bins,
                            extra={"machine_name": plan.model_name, "indicator": plan.indicator,
                                   "machine_names": list(prepared.machine_names),
                                   "target_mean": float(np.mean(train.y)),
                                   "first_timestamp": _iso(first_train), "last_timestamp": _iso(last_train)})


def _lineage(data: dict[str, Any], result: SearchResult, prepared: _Prepared, plan: _Plan) -> dict[str, Any]:
    """The caller's lineage (job id, dates...) completed with what this training saw; stored in the model."""
    lineage = plan.lineage or {}
    return {
        **dict(lineage),
        "machine_name": plan.model_name,
        "machine_names": list(prepared.machine_names),
        "indicator": plan.indicator,
        "failure_events": plan.source,
        "holdout": plan.holdout,
        "first_timestamp": data["first_timestamp"],
        "last_timestamp": data["last_timestamp"],
        "split_time": data["split_time"],
        "rows_in": data["rows_in"],
        "rows_train": data["rows_train"],
        "rows_test": data["rows_test"],
        "fingerprint": data["fingerprint"],
        "code_version": lineage.get("code_version") or __version__,
        "library_versions": library_versions(),
        "device": result.device,
        "regimes": None if prepared.recipe.regimes is None else prepared.recipe.regimes.to_dict(),
    }


def _params(result: SearchResult, plan: _Plan) -> dict[str, Any]:
    return {
        **result.params,
        "num_boost_round": result.rounds,
        "threshold": result.threshold.threshold if result.threshold else None,
        "scale_pos_weight": plan.spec.scale_pos_weight(result),
        "device": result.device,
        "search": result.summary(),
        "config": plan.config.summary(),
    }


def _serialize(result: SearchResult, described: _Description, names: list[str], plan: _Plan) -> bytes:
    """XGBoost's own format, with the lineage and what inference needs (indicator, threshold, features)."""
    return xgb_tools.serialize(result.booster, {
        "modelforge_lineage": described.lineage,
        "modelforge_indicator": plan.indicator,
        "modelforge_threshold": str(described.params["threshold"]),
        "modelforge_feature_names": names,
    })


# ---------------------------------------------------------------- checks and summaries


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
    # Over every machine's rows at once: one pass, not one per machine (a sensor always missing has NaN
    # for both, and NaN > NaN is False: constant).
    values = pd.concat([c.frame[list(sensors)] for c in cleaned.values()], ignore_index=True)
    low, high = values.min(skipna=True), values.max(skipna=True)
    constant = tuple(s for s in sensors if not high[s] > low[s])
    kept = tuple(s for s in sensors if s not in constant)
    if not kept:
        raise TelemetrySchemaError(f"every sensor is constant or empty in the data ({', '.join(sensors)}): "
                                   "there is nothing to learn from")
    return kept, constant


def _no_failure_message(machines: list[_Machine], plan: _Plan) -> str:
    first = min(m.clean.frame["timestamp"].iloc[0] for m in machines)
    last = max(m.clean.frame["timestamp"].iloc[-1] for m in machines)
    where = f"the data of '{plan.model_name}' from {first:%Y-%m-%d} to {last:%Y-%m-%d}"
    if plan.source == "records":
        names = ", ".join(m.name for m in machines[:5]) + (" ..." if len(machines) > 5 else "")
        return (f"no failure event in {where}: the failure-events dataset records no failure of {names} in the "
                "range, so there is no failure to learn to predict; import the failure records or widen the range")
    lowest = min(float(m.clean.frame[RPM_VARIATION].min()) for m in machines)
    return (f"no failure event in {where}: no reading of {RPM_VARIATION} is at or below "
            f"-{plan.config.labeling.drop_threshold_pct:g}% (the lowest is {lowest:.1f}%), so there is no failure "
            "to learn to predict; choose a range that contains failures")


def _data_summary(prepared: _Prepared, pool: _Pool, held: _Held, sample: SampleResult,
                  plan: _Plan) -> dict[str, Any]:
    """Range, row counts (cleaning, labeling, split, sampling), failure events per side, and the fingerprint."""
    machines, split = prepared.machines, held.split
    test_machines = sorted({machines[i].name for i in np.unique(held.test.g)})
    return {
        "first_timestamp": min(m.clean.frame["timestamp"].iloc[0] for m in machines).isoformat(),
        "last_timestamp": max(m.clean.frame["timestamp"].iloc[-1] for m in machines).isoformat(),
        "split_time": _iso(split.split_ns),
        "failure_events_source": plan.source,
        "holdout": plan.holdout,
        "machines": len(machines),
        "machines_test": test_machines if plan.by_machines else None,
        **_summed_counts(machines),
        "rows_usable": len(pool.t),
        "rows_purged_at_split": split.purged_rows,
        "rows_train": len(split.train),
        "rows_test": len(split.test),
        **_event_counts(machines, pool, split, test_machines, plan),
        **sample.summary(),
        "fingerprint": fingerprint_all([m.clean.frame for m in machines]),
        "sensors_constant_dropped": list(prepared.constant),
    }


def _summed_counts(machines: list[_Machine]) -> dict[str, Any]:
    """Each machine's cleaning and labeling counts, summed over the machines (nested counts key by key)."""
    counts: dict[str, Any] = {}
    for m in machines:
        for key, value in (m.clean.counts() | m.labels.counts()).items():
            if isinstance(value, dict):
                merged = counts.setdefault(key, {})
                for k, v in value.items():
                    merged[k] = merged.get(k, 0) + v if isinstance(v, int) else v
            else:
                counts[key] = counts.get(key, 0) + value
    return counts


def _event_counts(machines: list[_Machine], pool: _Pool, split: TimeSplit, test_machines: list[str],
                  plan: _Plan) -> dict[str, int]:
    """Failure events on each side: by machine for a machines holdout; by time otherwise, where a test event
    is one whose lead-up starts before the data ends (so that it could be caught) and after the cut."""
    if plan.by_machines:
        train_rows_machines = [m.name for m in machines if m.name not in test_machines]
        return {"failure_events_train": int(sum(len(m.labels.episodes) for m in machines
                                                if m.name in train_rows_machines)),
                "failure_events_test": int(sum(len(m.labels.episodes) for m in machines
                                               if m.name in test_machines))}
    onsets, t = pool.onsets, pool.t
    lead_up_start = onsets - plan.config.labeling.window_minutes * MINUTE_NS
    train_end = t[split.train].max() if len(split.train) else split.split_ns
    return {"failure_events_train": int((onsets <= train_end).sum()),
            "failure_events_test": int(((lead_up_start < t.max()) & (onsets >= split.split_ns)).sum())}


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
    headers = [repr([(str(c), str(d)) for c, d in frame.dtypes.items()]).encode() for frame in frames]
    if len(frames) > 1 and len(set(headers)) == 1:
        # A fleet's rows hashed in one call (a row's hash depends on its values only), then fed machine by
        # machine: the same digest as one call per machine.
        hashes = pd.util.hash_pandas_object(pd.concat(frames, ignore_index=True), index=False).to_numpy()
        bounds = np.r_[0, np.cumsum([len(frame) for frame in frames])]
        for i, header in enumerate(headers):
            digest.update(header)
            digest.update(hashes[bounds[i]:bounds[i + 1]].tobytes())
        return digest.hexdigest()
    for header, frame in zip(headers, frames, strict=True):
        digest.update(header)
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
