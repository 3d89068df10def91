"""The gate step of the state machine: after training, score the challenger and the champion on the same
recent holdout (the challenger's held-out final period, stored beside it), then promote or reject.

A rejected or failed challenger never touches the champion: only ``ModelRegistry.promote`` changes it, and
only here (or by an explicit POST .../promote).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from pydantic import BaseModel

from modelforge.adapters.model_registry import decision_threshold, model_name
from modelforge.errors import ModelNotFoundError, PromotionConflictError
from modelforge.jobs import Job
from modelforge.logic.clock import utc_now
from modelforge.observability import logger

PROMOTION_ATTEMPTS = 3
HOLDOUT_TARGET = "target"  # the label (status) or minutes to failure (health) of each holdout row


class GateTask(BaseModel):
    process_id: str
    model_id: str


class GateOutcome(BaseModel):
    decision: Literal["promoted", "rejected"]
    reason: str


class JobReader(Protocol):
    def get(self, process_id: str) -> Job: ...


class Registry(Protocol):
    def get_version(self, name: str, version: str) -> dict[str, Any] | None: ...
    def champion(self, name: str) -> dict[str, Any] | None: ...
    def promote(self, name: str, version: str, *, reason: str, by: str, now: datetime) -> dict[str, Any]: ...
    def reject(self, name: str, version: str, reason: str, by: str, now: datetime) -> None: ...


class ArtifactVerifier(Protocol):
    def get_verified(self, uri: str, expected_sha256: str) -> bytes: ...


@dataclass(frozen=True)
class GateDependencies:
    jobs: JobReader
    registry: Registry
    artifacts: ArtifactVerifier


def gate_challenger(task: GateTask, deps: GateDependencies, config: Any,
                    now: Callable[[], datetime] = utc_now) -> GateOutcome:
    import pandas as pd

    from modelforge.domain.gate import decide

    job = deps.jobs.get(task.process_id)
    name = model_name(job.machine_name, job.indicator.value)
    challenger = deps.registry.get_version(name, task.model_id)
    if challenger is None:
        raise ModelNotFoundError(f"{name} has no version {task.model_id}")
    holdout = pd.read_parquet(io.BytesIO(
        deps.artifacts.get_verified(challenger["holdout_uri"], challenger["holdout_sha256"])))
    challenger_metrics = score(challenger, holdout, deps.artifacts)
    by = f"gate:{job.process_id}"
    for _attempt in range(PROMOTION_ATTEMPTS):
        champion = deps.registry.champion(name)
        champion_metrics = None
        if champion is not None:
            if set(champion["feature_names"]) <= set(holdout.columns):
                champion_metrics = score(champion, holdout, deps.artifacts)
            else:
                logger.warning("champion cannot be scored on the challenger's holdout (other features)",
                               extra={"model_name": name, "champion": champion["version"]})
        decision = decide(job.indicator.value, challenger_metrics, champion_metrics, config)
        logger.info("gate decided", extra={"model_name": name, "version": task.model_id,
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


def score(version: dict[str, Any], holdout: Any, artifacts: ArtifactVerifier) -> dict[str, Any]:
    """Metrics of one registered model on the holdout (its artifact's sha256 checked before loading)."""
    import numpy as np

    from modelforge.domain.evaluation import classification_metrics, regression_metrics
    from modelforge.domain.inference import load_booster

    booster = load_booster(artifacts.get_verified(version["artifact_uri"], version["artifact_sha256"]))
    x = np.ascontiguousarray(holdout[list(version["feature_names"])].to_numpy(dtype="float32"))
    predictions = booster.inplace_predict(x)
    target = holdout[HOLDOUT_TARGET].to_numpy()
    if version["indicator"] == "status":
        return classification_metrics(target.astype(int), predictions, decision_threshold(version) or 0.5)
    metrics = regression_metrics(target.astype(float), predictions)
    metrics["baseline_rmse"] = float(np.sqrt(np.mean((target - target.mean()) ** 2)))
    return metrics
