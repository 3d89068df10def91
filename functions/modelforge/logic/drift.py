"""Scheduled drift checks: each champion's recent data against its training profile, recorded on the
champion's registry item (``last_drift_check``, shown by ``GET /models/{machine}/{indicator}``), and, when
the deployment allows it (``DriftRetrain``), a retraining job for a champion whose inputs drifted. A fleet's
champion is checked on all of its machines, a machine's on that machine. Retraining goes through the same
``POST /train`` use case as a user's request, with the champion's own fields (machines, failure-event source,
options), so the gate then decides between the retrained model and the champion as for any other."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from modelforge.domain.drift import DriftConfig as DriftPolicy  # the domain's defaults, overridden by settings
from modelforge.errors import TrainingDataError
from modelforge.jobs import Indicator
from modelforge.logic.clock import utc_now
from modelforge.observability import logger
from modelforge.registry import ModelName, ModelVersion
from modelforge.schemas import MachineName, MachineSummary, TrainRequest, TrainResponse

MAX_WINDOW_DAYS = 366


class DriftCheckRequest(BaseModel):
    """What the function is invoked with: nothing (the schedule: every champion) or one model."""

    model_config = ConfigDict(extra="ignore")  # EventBridge adds its own fields to scheduled events

    machine_name: MachineName | None = None  # the model's name: a machine's or a fleet's
    indicator: Indicator | None = None
    window_days: int | None = Field(default=None, ge=1, le=MAX_WINDOW_DAYS)
    retrain: bool | None = None  # None: the deployment's setting


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
    retrain_process_id: str | None = None
    checked_at: datetime


class Registry(Protocol):
    def champion(self, name: ModelName) -> ModelVersion | None: ...
    def list_champions(self) -> list[ModelVersion]: ...
    def record_drift(self, name: ModelName, version: str, check: dict[str, Any]) -> None: ...


class Artifacts(Protocol):
    def get_verified(self, uri: str, expected_sha256: str, version_id: str | None = None) -> bytes: ...


class Telemetry(Protocol):
    def read(self, machine_name: str, start: date | None, end: date | None) -> Any: ...


class Catalog(Protocol):
    def describe(self, machine_name: str) -> MachineSummary | None: ...


@dataclass(frozen=True)
class DriftDependencies:
    registry: Registry
    artifacts: Artifacts
    telemetry: Telemetry
    catalog: Catalog
    submit_training: Callable[[TrainRequest], TrainResponse]


def run_drift_checks(request: DriftCheckRequest, deps: DriftDependencies, policy: DriftPolicy,
                     now: Callable[[], datetime] = utc_now) -> list[DriftCheckResult]:
    if (request.machine_name is None) != (request.indicator is None):
        raise ValueError("name both machine_name and indicator, or neither (every champion)")
    if request.machine_name is not None and request.indicator is not None:
        champion = deps.registry.champion(ModelName(request.machine_name, request.indicator))
        if champion is None:
            raise LookupError(f"{request.machine_name}/{request.indicator.value} has no champion to check")
        champions = [champion]
    else:
        champions = deps.registry.list_champions()
    window = request.window_days or policy.window_days
    retrain = policy.retrain if request.retrain is None else request.retrain
    results = []
    for champion in champions:
        try:
            results.append(check_champion(champion, deps, window_days=window, threshold=policy.psi_threshold,
                                          retrain=retrain, now=now))
        except Exception as error:  # one champion's failure must not stop the others' checks
            logger.exception("drift check failed", extra={"model_name": champion.model_name.key})
            results.append(_record(DriftCheckResult(
                **_identity(champion), status="error", threshold=policy.psi_threshold,
                message=f"{type(error).__name__}: {error}", checked_at=now()), deps))
    return results


def _identity(champion: ModelVersion) -> dict[str, Any]:
    """The fields that say which model, version and machines a check is about."""
    return {"model_name": champion.model_name.key, "machine_name": champion.machine_name,
            "indicator": champion.indicator, "version": champion.version, "machines": champion.machines}


def check_champion(champion: ModelVersion, deps: DriftDependencies, *, window_days: int, threshold: float,
                   retrain: bool, now: Callable[[], datetime] = utc_now) -> DriftCheckResult:
    from modelforge.domain.drift import DRIFT, check_drift

    base = {**_identity(champion), "threshold": threshold, "checked_at": now()}
    machines = champion.machines
    summaries = [s for s in (deps.catalog.describe(m) for m in machines) if s is not None]
    if not summaries:
        result = DriftCheckResult(**base, status="no_data", message="none of the model's machines has data")
        return _record(result, deps)
    end = max(s.last_timestamp for s in summaries).date()
    start = end - timedelta(days=window_days - 1)
    base |= {"start_date": start, "end_date": end}
    try:
        profile = json.loads(deps.artifacts.get_verified(*champion.profile_artifact()))
        frames = {m: deps.telemetry.read(m, start, end) for m in machines}
        verdict = check_drift(frames, champion.feature_names, profile, threshold=threshold)
    except TrainingDataError as error:
        result = DriftCheckResult(**base, status="no_data", message=str(error))
        return _record(result, deps)
    result = DriftCheckResult(**{**base, **{k: v for k, v in verdict.items() if k in DriftCheckResult.model_fields}})
    if verdict["status"] == DRIFT and retrain:
        earlier = champion.last_drift_check or {}
        if earlier.get("retrain_process_id") and earlier.get("end_date") == end.isoformat():
            # A retried run over the same data: the retraining it asked for is already under way.
            process_id = str(earlier["retrain_process_id"])
        else:
            process_id = deps.submit_training(retrain_request(champion)).process_id
        result = result.model_copy(update={"retrain_process_id": process_id})
    logger.info("drift checked", extra={"model_name": result.model_name, "status": result.status,
                                        "max_psi": result.max_psi, "retrain": result.retrain_process_id})
    return _record(result, deps)


def retrain_request(champion: ModelVersion) -> TrainRequest:
    """The champion's own job again, on all the data there is now: the same machines (a fleet stays a fleet),
    failure-event source and options."""
    return TrainRequest(indicator=champion.indicator, machine_name=champion.machine_name,
                        machine_names=champion.machines if champion.is_fleet else None,
                        failure_events=champion.failure_events, options=champion.training_options)


def _record(result: DriftCheckResult, deps: DriftDependencies) -> DriftCheckResult:
    deps.registry.record_drift(ModelName.parse(result.model_name), result.version, result.model_dump(mode="json"))
    return result
