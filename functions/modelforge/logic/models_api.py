"""Registry use cases behind GET /models, GET /models/{machine}/{indicator} and POST .../promote."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from modelforge.adapters.model_registry import model_name
from modelforge.errors import ModelNotFoundError
from modelforge.jobs import Indicator
from modelforge.logic.clock import utc_now
from modelforge.observability import logger
from modelforge.schemas import (
    ChampionResponse,
    ModelListResponse,
    ModelVersionSummary,
    PromoteRequest,
    PromoteResponse,
    PromotionRecord,
)


class Registry(Protocol):
    def list_versions(self, name: str, limit: int = ...) -> list[dict[str, Any]]: ...
    def get_version(self, name: str, version: str) -> dict[str, Any] | None: ...
    def champion_pointer(self, name: str) -> dict[str, Any] | None: ...
    def history(self, name: str, limit: int = ...) -> list[dict[str, Any]]: ...
    def promote(self, name: str, version: str, *, reason: str, by: str, now: datetime) -> dict[str, Any]: ...


class ArtifactVerifier(Protocol):
    def get_verified(self, uri: str, expected_sha256: str) -> bytes: ...


def summarize(item: dict[str, Any]) -> ModelVersionSummary:
    return ModelVersionSummary.model_validate({k: v for k, v in item.items() if k in ModelVersionSummary.model_fields})


def list_models(*, registry: Registry, machine_name: str, indicator: Indicator | None,
                limit: int) -> ModelListResponse:
    indicators = [indicator] if indicator else list(Indicator)
    versions = [summarize(item) for ind in indicators
                for item in registry.list_versions(model_name(machine_name, ind.value), limit)]
    versions.sort(key=lambda v: v.version, reverse=True)
    return ModelListResponse(versions=versions[:limit])


def get_champion(*, registry: Registry, machine_name: str, indicator: Indicator) -> ChampionResponse:
    name = model_name(machine_name, indicator.value)
    pointer = registry.champion_pointer(name)
    if pointer is None:
        raise ModelNotFoundError(f"{machine_name}/{indicator.value} has no champion yet")
    champion = registry.get_version(name, pointer["champion_version"])
    if champion is None:
        raise ModelNotFoundError(f"the champion of {machine_name}/{indicator.value} is missing from the registry")
    history = [PromotionRecord.model_validate(item) for item in registry.history(name, 20)]
    return ChampionResponse(champion=summarize(champion), promoted_by=pointer.get("promoted_by"),
                            reason=pointer.get("reason"), updated_at=pointer.get("updated_at"), history=history,
                            last_drift_check=champion.get("last_drift_check"))


def promote_version(request: PromoteRequest, *, registry: Registry, artifacts: ArtifactVerifier,
                    machine_name: str, indicator: Indicator, caller: str,
                    now: Callable[[], datetime] = utc_now) -> PromoteResponse:
    """Manual promotion or rollback. The artifact's sha256 is checked before it can serve anything."""
    name = model_name(machine_name, indicator.value)
    version = registry.get_version(name, request.version)
    if version is None:
        raise ModelNotFoundError(f"{machine_name}/{indicator.value} has no version {request.version}")
    artifacts.get_verified(version["artifact_uri"], version["artifact_sha256"])
    result = registry.promote(name, request.version, reason=request.reason, by=caller, now=now())
    logger.info("model promoted", extra={"model_name": name, "version": request.version, "by": caller})
    return PromoteResponse(machine_name=machine_name, indicator=indicator, champion_version=request.version,
                           previous_version=result.get("previous_version"))
