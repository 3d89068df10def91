"""Drift checks: a champion's recent data against its training profile, recorded on the champion's registry
item (``last_drift_check``, shown by ``GET /models/{machine}/{indicator}`` and ``modelforge drift``). The
retraining state machine's items run ``check_champion`` for every model it considers, and only they start
retrains (with a trigger record and the in-flight lock: ``logic.retrain``); ``DriftFunction`` runs the same
check for one named model, by hand, and starts nothing. A fleet's champion is checked on all of its machines,
a machine's on that machine.

Beside the data-drift verdict (``status``, ``drift_share``, per feature in ``features``: see
``modelforge.domain.drift``), a check computes the champion's live performance from the predictions ``/predict``
captured and the failure events recorded since (``modelforge.domain.live``): ``live_recall`` below the floor
(``DriftConfig.live_recall_floor``), on at least ``min_live_failures`` observed failures, is ``concept_drift``.
Both are emitted as metrics per model (DriftShare, MaxPSI, LiveRecall, dimension ``model_name``)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from modelforge.domain.drift import DriftConfig as DriftPolicy  # the domain's defaults, overridden by settings
from modelforge.domain.labeling import LabelingConfig
from modelforge.errors import DriftCheckFailedError, TrainingDataError
from modelforge.jobs import Indicator
from modelforge.logic.clock import utc_now
from modelforge.logic.recipes import load_recipe
from modelforge.observability import emit_model_metric, logger
from modelforge.registry import ModelName, ModelVersion
from modelforge.schemas import MachineName, MachineSummary, TrainRequest

MAX_WINDOW_DAYS = 366


class DriftCheckRequest(BaseModel):
    """What DriftFunction is invoked with: one model. Every champion is the retraining state machine's job (its
    Distributed Map), so a check here never loops over the registry."""

    model_config = ConfigDict(extra="forbid")  # a retired field (retrain, source) is refused, not ignored

    machine_name: MachineName  # the model's name: a machine's or a fleet's
    indicator: Indicator
    window_days: int | None = Field(default=None, ge=1, le=MAX_WINDOW_DAYS)


class DriftCheckResult(BaseModel):
    model_name: str
    machine_name: str
    indicator: Indicator
    version: str
    machines: list[str]
    start_date: date | None = None
    end_date: date | None = None
    status: str  # stable | moderate | drift | no_data | error
    max_psi: float | None = None
    threshold: float
    rows: int = 0
    top_features: list[dict[str, Any]] = Field(default_factory=list)
    message: str | None = None
    checked_at: datetime
    # Data drift beyond PSI (domain.drift): the share of the recipe's features whose two-sample test drifted
    # (None: a profile without reference samples, judged by PSI only), and every feature's figures.
    drift_share: float | None = None  # share of the recipe's features that drifted
    drift_share_threshold: float | None = None
    method: str | None = None  # two_sample | psi_only
    features_tested: int = 0
    features_drifted: int = 0
    max_missing_change: float | None = None
    max_out_of_range_share: float | None = None
    features: list[dict[str, Any]] = Field(default_factory=list)
    # Concept drift (domain.live): the champion's captured predictions against the failures recorded since.
    concept_drift: bool = False  # live recall below the floor
    live_recall: float | None = None
    live_false_alarm_rate: float | None = None
    live_failures: int = 0
    live: dict[str, Any] | None = None  # the details: counts, window, floor, by day, and the test-time figures


class Registry(Protocol):
    def champion(self, name: ModelName) -> ModelVersion | None: ...
    def record_drift(self, name: ModelName, version: str, check: dict[str, Any]) -> None: ...


class Artifacts(Protocol):
    def get_verified(self, uri: str, expected_sha256: str, version_id: str | None = None) -> bytes: ...


class Telemetry(Protocol):
    def read(self, machine_name: str, start: date | None, end: date | None) -> Any: ...


class Catalog(Protocol):
    def describe(self, machine_name: str) -> MachineSummary | None: ...


class Captures(Protocol):
    def read(self, model_key: str, start: date, end: date, *, max_objects: int) -> list[dict[str, Any]]: ...


class FailureEvents(Protocol):
    def read(self, machine_names: Sequence[str], start: date | None = None, end: date | None = None) -> Any: ...


@dataclass(frozen=True)
class DriftDependencies:
    registry: Registry
    artifacts: Artifacts
    telemetry: Telemetry
    catalog: Catalog
    captures: Captures | None = None  # None: no live-performance check (nothing captured to read)
    failure_events: FailureEvents | None = None


def run_drift_check(request: DriftCheckRequest, deps: DriftDependencies, policy: DriftPolicy,
                    now: Callable[[], datetime] = utc_now) -> DriftCheckResult:
    """One named champion's check, recorded on it; a failure is recorded as ``error`` on the champion and raised
    as ``DriftCheckFailedError`` (so a by-hand asynchronous invocation ends in the failure queue and its alarm)."""
    champion = deps.registry.champion(ModelName(request.machine_name, request.indicator))
    if champion is None:
        raise LookupError(f"{request.machine_name}/{request.indicator.value} has no champion to check")
    window = request.window_days or policy.window_days
    try:
        return check_champion(champion, deps, window_days=window, threshold=policy.psi_threshold, now=now,
                              policy=policy)
    except Exception as error:
        logger.exception("drift check failed", extra={"model_name": champion.model_name.key})
        _record(DriftCheckResult(**_identity(champion), status="error", threshold=policy.psi_threshold,
                                 message=f"{type(error).__name__}: {error}", checked_at=now()), deps)
        raise DriftCheckFailedError(f"{champion.model_name.key}: {type(error).__name__}: {error}") from error


def _identity(champion: ModelVersion) -> dict[str, Any]:
    """The fields that say which model, version and machines a check is about."""
    return {"model_name": champion.model_name.key, "machine_name": champion.machine_name,
            "indicator": champion.indicator, "version": champion.version, "machines": champion.machines}


def check_champion(champion: ModelVersion, deps: DriftDependencies, *, window_days: int, threshold: float,
                   now: Callable[[], datetime] = utc_now,
                   policy: DriftPolicy | None = None) -> DriftCheckResult:
    """``policy``: the rest of the deployment's DriftConfig (the share threshold, the tests' thresholds, the
    live-recall floor); ``window_days`` and ``threshold`` (PSI) win over its own."""
    from modelforge.domain.drift import check_drift

    config = replace(policy or DriftPolicy(), window_days=window_days, psi_threshold=threshold)
    base: dict[str, Any] = {**_identity(champion), "threshold": threshold, "checked_at": now()}
    machines = champion.machines
    summaries = [s for s in (deps.catalog.describe(m) for m in machines) if s is not None]
    if not summaries:
        result = DriftCheckResult(**base, status="no_data", message="none of the model's machines has data")
        return _record(result, deps)
    last = max(s.last_timestamp for s in summaries)
    end = last.date()
    start = end - timedelta(days=window_days - 1)
    base |= {"start_date": start, "end_date": end, **live_figures(champion, deps, config, last, now)}
    try:
        profile = json.loads(deps.artifacts.get_verified(*champion.profile_artifact()))
        frames = {m: deps.telemetry.read(m, start, end) for m in machines}
        verdict = check_drift(frames, champion.feature_names, profile, config=config,
                              recipe=load_recipe(champion, deps.artifacts), labeling=labeling_of(champion),
                              events=_recorded_events(champion, deps, start, end))
    except TrainingDataError as error:
        result = DriftCheckResult(**base, status="no_data", message=str(error))
        return _record(result, deps)
    result = DriftCheckResult(**{**base, **{k: v for k, v in verdict.items() if k in DriftCheckResult.model_fields}})
    logger.info("drift checked", extra={"model_name": result.model_name, "status": result.status,
                                        "max_psi": result.max_psi, "drift_share": result.drift_share,
                                        "live_recall": result.live_recall, "concept_drift": result.concept_drift})
    _emit_metrics(result)
    return _record(result, deps)


def labeling_of(champion: ModelVersion) -> LabelingConfig:
    """How the champion's training told a failure from service (its own label window over the defaults):
    the drift check leaves out the same rows of a machine down or recovering (``domain.drift.in_service``)."""
    options = champion.training_options
    window = options.label_window_minutes if options is not None else None
    return LabelingConfig() if window is None else LabelingConfig(window_minutes=window)


def _recorded_events(champion: ModelVersion, deps: DriftDependencies, start: date,
                     end: date) -> dict[str, Any] | None:
    """The recorded failures in the window, for a champion that learnt from records (its lineage says so);
    None for one that found its failures in the telemetry, as the check then does."""
    if (champion.lineage or {}).get("failure_events") != "records" or deps.failure_events is None:
        return None
    from modelforge.logic.training_job import events_in_range

    return events_in_range(deps.failure_events, champion.machines, start, end)


def live_figures(champion: ModelVersion, deps: DriftDependencies, config: DriftPolicy, observed_until: datetime,
                 now: Callable[[], datetime] = utc_now) -> dict[str, Any]:
    """The champion's live recall and false-alarm rate (DriftCheckResult's live fields): the predictions it
    was asked for in the last ``live_window_days`` (by request day) against the failures recorded for its
    machines until ``observed_until`` (the newest telemetry: how far the ground truth is known to reach). A
    failure without a captured prediction in its window is not judged, so all recorded events are read (one
    small object per machine)."""
    import pandas as pd

    from modelforge.domain.live import live_performance

    if deps.captures is None or deps.failure_events is None:
        return {}
    today = now().date()
    start = today - timedelta(days=config.live_window_days - 1)
    lines = deps.captures.read(champion.model_name.key, start, today, max_objects=config.max_capture_objects)
    window = label_window_minutes(champion)
    captures = captures_frame(lines, champion, window)
    events = deps.failure_events.read(champion.machines, None, observed_until.date())
    live = live_performance(captures, events, window_minutes=window, observed_until=pd.Timestamp(observed_until))
    concept_drift = (live.recall is not None and live.failures >= config.min_live_failures
                     and live.recall < config.live_recall_floor)
    details = {"window_minutes": window, "failures": live.failures, "caught": live.caught,
               "alarms": live.alarms, "false_alarms": live.false_alarms, "predictions": live.predictions,
               "recall_floor": config.live_recall_floor, "min_failures": config.min_live_failures,
               "requests_since": start.isoformat(), "observed_until": observed_until.isoformat(), "by_day": live.by_day,
               "test": holdout_figures(champion)}
    return {"concept_drift": concept_drift, "live_recall": _rounded(live.recall),
            "live_false_alarm_rate": _rounded(live.false_alarm_rate), "live_failures": live.failures,
            "live": details}


def captures_frame(lines: list[dict[str, Any]], champion: ModelVersion, window_minutes: float) -> Any:
    """The champion's own captured records (its version; a fleet's records naming one of its machines) as the
    frame domain.live reads: machine, time (the record's, else the capture's), alarm, captured_at."""
    import pandas as pd

    mine = [line for line in lines if line.get("model_version") == champion.version]
    if not champion.is_fleet:
        mine = [{**line, "machine_name": champion.machine_name} for line in mine]
    mine = [line for line in mine if line.get("machine_name") in champion.machines]
    frame = pd.DataFrame(mine, columns=["machine_name", "timestamp", "captured_at", "alarm", "prediction"])
    captured_at = pd.to_datetime(frame["captured_at"], utc=True, errors="coerce", format="ISO8601")
    stamps = frame["timestamp"].where(frame["timestamp"].map(lambda v: isinstance(v, str)), None)
    time = pd.to_datetime(stamps, utc=True, errors="coerce", format="ISO8601").fillna(captured_at)
    # A health model's alarm is its prediction (minutes to failure) within the window.
    alarm = frame["alarm"].where(frame["alarm"].notna(), pd.to_numeric(frame["prediction"]) <= window_minutes)
    return pd.DataFrame({"machine_name": frame["machine_name"], "time": time, "alarm": alarm.astype(bool),
                         "captured_at": captured_at}).dropna(subset=["time"])


def label_window_minutes(champion: ModelVersion) -> float:
    """The label window the champion was trained with: the one its alarms answer for."""
    from modelforge.domain.labeling import LabelingConfig

    labeling = ((champion.params or {}).get("config") or {}).get("labeling") or {}
    if labeling.get("window_minutes"):
        return float(labeling["window_minutes"])
    options = champion.training_options
    if options is not None and options.label_window_minutes:
        return float(options.label_window_minutes)
    return float(LabelingConfig().window_minutes)


def holdout_figures(champion: ModelVersion) -> dict[str, Any]:
    """The same figures on the champion's test period, from its training metrics, to read beside the live ones."""
    metrics = champion.metrics or {}
    total, caught = metrics.get("events_total"), metrics.get("events_caught")
    precision = metrics.get("precision")
    return {"recall": _rounded(caught / total) if total else None, "failures": total,
            "false_alarm_rate": _rounded(1 - precision) if precision is not None else None,
            "false_alarms_per_day": metrics.get("false_alarms_per_day")}


def _emit_metrics(result: DriftCheckResult) -> None:
    for name, value in (("DriftShare", result.drift_share), ("MaxPSI", result.max_psi),
                        ("LiveRecall", result.live_recall)):
        if value is not None:
            emit_model_metric(name, value, model_name=result.model_name)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)


def retrain_request(champion: ModelVersion) -> TrainRequest:
    """The champion's own job again, on all the data there is now: the same machines (a fleet stays a fleet),
    failure-event source and options."""
    return TrainRequest(indicator=champion.indicator, machine_name=champion.machine_name,
                        machine_names=champion.machines if champion.is_fleet else None,
                        failure_events=champion.failure_events, options=champion.training_options)


def _record(result: DriftCheckResult, deps: DriftDependencies) -> DriftCheckResult:
    deps.registry.record_drift(ModelName.parse(result.model_name), result.version, result.model_dump(mode="json"))
    return result
