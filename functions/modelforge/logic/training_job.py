"""The training step of the state machine: read the job, train on its machine's data, store the model and its
metadata. Either both the artifact and the registry item exist afterwards, or neither does."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel

from modelforge import __version__
from modelforge.adapters.model_registry import model_name
from modelforge.jobs import Job
from modelforge.logic.clock import utc_now
from modelforge.observability import logger

if TYPE_CHECKING:
    import pandas as pd

    from modelforge.domain.pipeline import PipelineConfig


class TrainingTask(BaseModel):
    """What the state machine passes to the training function: ids only."""

    process_id: str


class TrainingOutcome(BaseModel):
    """What the training function returns to the state machine: ids and an S3 URI only."""

    model_id: str
    bucket_address: str


class JobReader(Protocol):
    def get(self, process_id: str) -> Job: ...


class TelemetryReader(Protocol):
    def read(self, machine_name: str, start: date | None, end: date | None) -> pd.DataFrame: ...


class Artifacts(Protocol):
    def put(self, key: str, data: bytes, content_type: str = ...) -> tuple[str, str]: ...
    def delete(self, uri: str) -> None: ...


class Registry(Protocol):
    def put_version(self, item: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class TrainingDependencies:
    jobs: JobReader
    telemetry: TelemetryReader
    artifacts: Artifacts
    registry: Registry
    model_key_prefix: str = "model"


def artifact_key(prefix: str, machine_name: str, trained_at: datetime, model_format: str) -> str:
    return f"{prefix}/xgb_model_{machine_name}_{trained_at.strftime('%Y_%m_%d_%H_%M_%S')}.{model_format}"


def train_for_job(task: TrainingTask, deps: TrainingDependencies, config: PipelineConfig,
                  now: Callable[[], datetime] = utc_now) -> TrainingOutcome:
    from modelforge.domain.pipeline import train_model  # numpy/xgboost only where training happens

    job = deps.jobs.get(task.process_id)
    frame = deps.telemetry.read(job.machine_name, job.start_date, job.end_date)
    logger.info("training data loaded", extra={"process_id": job.process_id, "rows": len(frame)})
    trained = train_model(frame, machine_name=job.machine_name, indicator=job.indicator.value, config=config)

    trained_at = now()
    version = trained_at.strftime("%Y%m%dT%H%M%SZ") + "-" + job.process_id[:8]
    key = artifact_key(deps.model_key_prefix, job.machine_name, trained_at, trained.model_format)
    uri, sha256 = deps.artifacts.put(key, trained.model_bytes)
    item = {
        "model_name": model_name(job.machine_name, job.indicator.value),
        "version": version,
        "machine_name": job.machine_name,
        "indicator": job.indicator.value,
        "process_id": job.process_id,
        "artifact_uri": uri,
        "artifact_sha256": sha256,
        "model_format": trained.model_format,
        "feature_names": trained.feature_names,
        "metrics": trained.metrics,
        "baseline_metrics": trained.baseline_metrics,
        "params": trained.params,
        "data": {**trained.data, "start_date": _iso(job.start_date), "end_date": _iso(job.end_date)},
        "code_version": __version__,
        "library_versions": _library_versions(),
        "trained_at": trained_at.isoformat(),
    }
    try:
        deps.registry.put_version(item)
    except Exception:
        deps.artifacts.delete(uri)  # no artifact without its registry item
        raise
    logger.info("model stored", extra={"process_id": job.process_id, "artifact_uri": uri, "version": version})
    return TrainingOutcome(model_id=version, bucket_address=uri)


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None


def _library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for package in ("xgboost", "scikit-learn", "pandas", "numpy", "pyarrow", "awswrangler"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            continue
    return versions
