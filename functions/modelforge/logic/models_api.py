"""Registry use cases behind GET /models, GET /models/{machine}/{indicator} and POST .../promote."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from modelforge.errors import ModelNotFoundError, OverrideRequiredError
from modelforge.jobs import Indicator
from modelforge.logic.clock import utc_now
from modelforge.observability import logger
from modelforge.registry import (
    ChampionPointer,
    ModelName,
    ModelVersion,
    PromotionEvent,
    PromotionResult,
    VersionStatus,
)
from modelforge.schemas import (
    ChampionResponse,
    LivePerformance,
    ModelListResponse,
    ModelVersionSummary,
    PromoteRequest,
    PromoteResponse,
    PromotionRecord,
)

# What a person may promote without an override: a former champion (the gate passed it once; a rollback) and
# the champion itself (nothing changes). A rejected version, or a candidate the gate has not decided on, needs
# one.
PROMOTABLE_WITHOUT_OVERRIDE = frozenset({VersionStatus.ARCHIVED, VersionStatus.CHAMPION})


class Registry(Protocol):
    def list_versions(self, name: ModelName, limit: int = ...) -> list[ModelVersion]: ...
    def get_version(self, name: ModelName, version: str) -> ModelVersion | None: ...
    def champion_pointer(self, name: ModelName) -> ChampionPointer | None: ...
    def history(self, name: ModelName, limit: int = ...) -> list[PromotionEvent]: ...
    def promote(self, name: ModelName, version: str, *, reason: str, by: str, now: datetime,
                expected_status: VersionStatus | None = ..., override: bool = ...) -> PromotionResult: ...


class ArtifactVerifier(Protocol):
    def get_verified(self, uri: str, expected_sha256: str, version_id: str | None = None) -> bytes: ...


class ReportLinks(Protocol):
    def presigned_get(self, uri: str, version_id: str | None = ..., expires_seconds: int = ...) -> str: ...


# How long a report link stays valid: long enough to open it, short enough that a leaked one soon expires.
REPORT_URL_SECONDS = 300


def summarize(version: ModelVersion) -> ModelVersionSummary:
    return ModelVersionSummary(
        machine_name=version.machine_name, indicator=version.indicator, version=version.version,
        status=version.status.value, status_reason=version.status_reason, decided_by=version.decided_by,
        override=bool(version.override), trained_at=version.trained_at, process_id=version.process_id,
        artifact_uri=version.artifact_uri, artifact_sha256=version.artifact_sha256, metrics=version.metrics,
        feature_names=list(version.feature_names))


def with_report_url(summary: ModelVersionSummary, version: ModelVersion,
                    links: ReportLinks | None) -> ModelVersionSummary:
    """The summary with a presigned GET of the version's report, when it has one and links are given."""
    if links is None or not version.report_uri:
        return summary
    url = links.presigned_get(version.report_uri, version.report_version_id, REPORT_URL_SECONDS)
    return summary.model_copy(update={"report_url": url})


def promotion_record(event: PromotionEvent) -> PromotionRecord:
    return PromotionRecord(from_version=event.from_version, to_version=event.to_version, reason=event.reason,
                           promoted_by=event.promoted_by, at=event.at, override=event.override,
                           overridden_status=event.overridden_status.value if event.overridden_status else None)


def list_models(*, registry: Registry, machine_name: str, indicator: Indicator | None,
                limit: int, links: ReportLinks | None = None) -> ModelListResponse:
    indicators = [indicator] if indicator else list(Indicator)
    versions = [with_report_url(summarize(version), version, links) for ind in indicators
                for version in registry.list_versions(ModelName(machine_name, ind), limit)]
    versions.sort(key=lambda v: v.version, reverse=True)
    return ModelListResponse(versions=versions[:limit])


def get_champion(*, registry: Registry, machine_name: str, indicator: Indicator,
                 links: ReportLinks | None = None) -> ChampionResponse:
    name = ModelName(machine_name, indicator)
    pointer = registry.champion_pointer(name)
    if pointer is None:
        raise ModelNotFoundError(f"{name.label} has no champion yet")
    champion = registry.get_version(name, pointer.champion_version)
    if champion is None:
        raise ModelNotFoundError(f"the champion of {name.label} is missing from the registry")
    history = [promotion_record(event) for event in registry.history(name, 20)]
    summary = with_report_url(summarize(champion), champion, links)
    return ChampionResponse(champion=summary, promoted_by=pointer.promoted_by, reason=pointer.reason,
                            updated_at=pointer.updated_at, history=history,
                            last_drift_check=champion.last_drift_check,
                            live_performance=live_performance(champion.last_drift_check))


def live_performance(check: dict[str, Any] | None) -> LivePerformance | None:
    """The live figures of the latest drift check (logic.drift.live_figures), with the test-time ones it
    recorded beside them; None when that check read no captures."""
    live = (check or {}).get("live")
    if not check or not live:
        return None
    test = live.get("test") or {}
    return LivePerformance(
        checked_at=check.get("checked_at"), window_minutes=live.get("window_minutes"),
        live_recall=check.get("live_recall"), test_recall=test.get("recall"),
        live_false_alarm_rate=check.get("live_false_alarm_rate"), test_false_alarm_rate=test.get("false_alarm_rate"),
        live_failures=int(check.get("live_failures") or 0), test_failures=test.get("failures"),
        recall_floor=live.get("recall_floor"), concept_drift=bool(check.get("concept_drift")))


def promote_version(request: PromoteRequest, *, registry: Registry, artifacts: ArtifactVerifier,
                    machine_name: str, indicator: Indicator, caller: str,
                    now: Callable[[], datetime] = utc_now) -> PromoteResponse:
    """Manual promotion or rollback. A version the gate rejected or never decided on needs the request's
    override (checked on the status read, and again inside the promotion's transaction, so a gate decision in
    between cancels it). The artifact's sha256 is checked before it can serve anything."""
    name = ModelName(machine_name, indicator)
    version = registry.get_version(name, request.version)
    if version is None:
        raise ModelNotFoundError(f"{name.label} has no version {request.version}")
    overriding = version.status not in PROMOTABLE_WITHOUT_OVERRIDE
    if overriding and not request.override:
        raise OverrideRequiredError(_override_hint(name, version))
    artifacts.get_verified(*version.artifact)
    result = registry.promote(name, request.version, reason=request.reason, by=caller, now=now(),
                              expected_status=version.status, override=overriding)
    logger.info("model promoted", extra={"model_name": name.key, "version": request.version, "by": caller,
                                         "override": overriding})
    return PromoteResponse(machine_name=machine_name, indicator=indicator, champion_version=request.version,
                           previous_version=result.previous_version)


def _override_hint(name: ModelName, version: ModelVersion) -> str:
    """Why a promotion was refused and how to make it anyway: the 409's message."""
    if version.status is VersionStatus.REJECTED:
        why = f"was rejected by {version.decided_by or 'the gate'}"
        if version.status_reason:
            why += f" ({version.status_reason[:200]})"
    else:
        why = f"is a {version.status.value} the gate has not decided on"
    return (f"{name.label} version {version.version} {why}; to promote it anyway, send \"override\": true with a "
            "reason saying why (it is recorded with your identity on the version and in the promotion history)")
