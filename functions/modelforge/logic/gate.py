"""The gate step of the state machine: after training, score the challenger and the champion on the same
recent holdout (the challenger's held-out final period, stored beside it), then promote or reject.

A rejected or failed challenger never touches the champion: only ``ModelRegistry.promote`` changes it, and
only here (or by an explicit POST .../promote).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel

from modelforge.errors import ModelNotFoundError, PromotionConflictError
from modelforge.jobs import Job
from modelforge.logic.clock import utc_now
from modelforge.observability import logger
from modelforge.registry import ModelName, ModelVersion, PromotionResult

if TYPE_CHECKING:
    import pandas as pd

PROMOTION_ATTEMPTS = 3


class GateTask(BaseModel):
    process_id: str
    model_id: str


class GateOutcome(BaseModel):
    decision: Literal["promoted", "rejected"]
    reason: str


class JobReader(Protocol):
    def get(self, process_id: str) -> Job: ...


class Registry(Protocol):
    def get_version(self, name: ModelName, version: str) -> ModelVersion | None: ...
    def champion(self, name: ModelName) -> ModelVersion | None: ...
    def promote(self, name: ModelName, version: str, *, reason: str, by: str,
                now: datetime) -> PromotionResult: ...
    def reject(self, name: ModelName, version: str, reason: str, by: str, now: datetime) -> None: ...


class ArtifactVerifier(Protocol):
    def get_verified(self, uri: str, expected_sha256: str, version_id: str | None = None) -> bytes: ...


@dataclass(frozen=True)
class GateDependencies:
    jobs: JobReader
    registry: Registry
    artifacts: ArtifactVerifier


def gate_challenger(task: GateTask, deps: GateDependencies, config: Any,
                    now: Callable[[], datetime] = utc_now) -> GateOutcome:
    from modelforge.domain.gate import decide
    from modelforge.domain.scoring import read_holdout

    job = deps.jobs.get(task.process_id)
    name = ModelName(job.machine_name, job.indicator)
    challenger = deps.registry.get_version(name, task.model_id)
    if challenger is None:
        raise ModelNotFoundError(f"{name} has no version {task.model_id}")
    holdout = read_holdout(deps.artifacts.get_verified(*challenger.holdout_artifact()))
    challenger_metrics = score(challenger, holdout, deps.artifacts)
    by = f"gate:{job.process_id}"
    for _attempt in range(PROMOTION_ATTEMPTS):
        champion_metrics = champion_score(deps.registry.champion(name), holdout, deps.artifacts)
        decision = decide(job.indicator.value, challenger_metrics, champion_metrics, config)
        logger.info("gate decided", extra={"model_name": name.key, "version": task.model_id,
                                            "promote": decision.promote, "reason": decision.reason})
        if not decision.promote:
            deps.registry.reject(name, task.model_id, decision.reason, by=by, now=now())
            return GateOutcome(decision="rejected", reason=decision.reason)
        try:
            deps.registry.promote(name, task.model_id, reason=decision.reason, by=by, now=now())
        except PromotionConflictError:
            continue  # another promotion won meanwhile: judge this challenger against the new champion
        return GateOutcome(decision="promoted", reason=decision.reason)
    raise PromotionConflictError(f"the champion of {name} kept changing during the gate; try again")


def champion_score(champion: ModelVersion | None, holdout: pd.DataFrame,
                   artifacts: ArtifactVerifier) -> dict[str, Any] | None:
    """The champion's metrics on the challenger's holdout; None when there is no champion, or when it reads
    features the holdout lacks (the challenger is then judged on the floors alone)."""
    from modelforge.domain.scoring import scorable_on

    if champion is None:
        return None
    if not scorable_on(holdout, champion.feature_names):
        logger.warning("champion cannot be scored on the challenger's holdout (other features)",
                       extra={"model_name": champion.model_name.key, "champion": champion.version})
        return None
    return score(champion, holdout, artifacts)


def score(version: ModelVersion, holdout: pd.DataFrame, artifacts: ArtifactVerifier) -> dict[str, Any]:
    """Metrics of one registered model on the holdout (its artifact's sha256 checked before loading)."""
    from modelforge.domain.scoring import holdout_metrics, load_booster

    booster = load_booster(artifacts.get_verified(*version.artifact))
    return holdout_metrics(booster, holdout, feature_names=version.feature_names,
                           indicator=version.indicator.value, threshold=version.decision_threshold)
