"""The training step of the state machine: read the job, train on its machine's data, store the model, its
report and its training profile, then its registry item. Either all of them exist afterwards, or none does.

Artifacts share the model's key stem, under a folder named by the job:
    <prefix>/<process_id>/xgb_model_<machine>_<YYYY_MM_DD_HH_MM_SS>.ubj              the model (XGBoost binary JSON)
    <prefix>/<process_id>/xgb_model_<machine>_<YYYY_MM_DD_HH_MM_SS>.report.html      the HTML report, plots embedded
    <prefix>/<process_id>/xgb_model_<machine>_<YYYY_MM_DD_HH_MM_SS>.profile.json     the training profile (drift)
    <prefix>/<process_id>/xgb_model_<machine>_<YYYY_MM_DD_HH_MM_SS>.holdout.parquet  the gate's held-out rows
    <prefix>/<process_id>/xgb_model_<machine>_<YYYY_MM_DD_HH_MM_SS>.recipe.json      the feature recipe (serving)

If a write fails, what was written is deleted here, version by version. If the process dies between its first
write and its registry item (out of memory, timed out), nothing here runs: the job's folder is what the
reconciler sweeps when the execution ends badly (``logic.reconcile.sweep_leftovers``), without listing the
rest of the bucket.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel

from modelforge import __version__
from modelforge.jobs import FailureEventSource, Job, TrainingOptions
from modelforge.logic.clock import utc_now
from modelforge.observability import logger
from modelforge.registry import ArtifactRef, ModelName, ModelVersion

if TYPE_CHECKING:
    import pandas as pd

    from modelforge.domain.pipeline import PipelineConfig, TrainedModel

MODEL_KEY_PREFIX = "model"  # where artifacts go in the models bucket unless MODEL_KEY_PREFIX says otherwise
REPORT_SUFFIX = ".report.html"
PROFILE_SUFFIX = ".profile.json"
HOLDOUT_SUFFIX = ".holdout.parquet"
RECIPE_SUFFIX = ".recipe.json"


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


class FailureEventReader(Protocol):
    def read(self, machine_names: Sequence[str], start: date | None, end: date | None) -> pd.DataFrame: ...


class Artifacts(Protocol):
    def put(self, key: str, data: bytes, content_type: str = ...) -> ArtifactRef: ...
    def delete(self, uri: str, version_id: str | None = ...) -> None: ...


class Registry(Protocol):
    def put_version(self, version: ModelVersion) -> None: ...


@dataclass(frozen=True)
class TrainingDependencies:
    jobs: JobReader
    telemetry: TelemetryReader
    artifacts: Artifacts
    registry: Registry
    failure_events: FailureEventReader | None = None  # needed by jobs whose failures are recorded events
    model_key_prefix: str = MODEL_KEY_PREFIX
    code_revision: str = ""  # e.g. the git commit the image was built from
    host: str = "lambda"  # lambda | batch: where it ran, recorded in the model's lineage


def job_prefix(prefix: str, process_id: str) -> str:
    """The folder of every object a job writes: the reconciler lists just this to find a dead job's leftovers.
    process_ids are the service's own UUIDs, never a ``/``."""
    return f"{prefix}/{process_id}/"


def artifact_key(prefix: str, process_id: str, machine_name: str, trained_at: datetime, model_format: str) -> str:
    stamp = trained_at.strftime("%Y_%m_%d_%H_%M_%S")
    return f"{job_prefix(prefix, process_id)}xgb_model_{machine_name}_{stamp}.{model_format}"


def sibling_key(model_key: str, suffix: str) -> str:
    """``model/<id>/xgb_model_M_2025_01_01_00_00_00.ubj`` -> ``model/<id>/xgb_model_M_2025_01_01_00_00_00<suffix>``."""
    return model_key.rsplit(".", 1)[0] + suffix


def code_version(revision: str = "") -> str:
    return f"{__version__}+{revision}" if revision else __version__


def train_for_job(task: TrainingTask, deps: TrainingDependencies, config: PipelineConfig,
                  now: Callable[[], datetime] = utc_now) -> TrainingOutcome:
    from modelforge.domain.pipeline import train_model  # numpy/xgboost only where training happens
    from modelforge.domain.report import render_report
    from modelforge.domain.scoring import holdout_parquet

    job = deps.jobs.get(task.process_id)
    clock = time.perf_counter()
    frames, events = _training_data(job, deps)
    read_seconds = time.perf_counter() - clock
    lineage = {"process_id": job.process_id, "start_date": _iso(job.start_date), "end_date": _iso(job.end_date),
               "code_version": code_version(deps.code_revision), "host": deps.host}
    trained = train_model(frames if job.machine_names else frames[job.machine_name], machine_name=job.machine_name,
                          indicator=job.indicator.value, config=apply_options(config, job.options),
                          lineage=lineage, events=events)
    if trained.data.get("sampled"):
        logger.warning("training rows sampled to fit the memory budget (every failure window kept)",
                       extra={"process_id": job.process_id, "rows_before": trained.data["rows_before_sampling"],
                              "rows_after": trained.data["rows_after_sampling"]})
    # Everything that can fail without I/O happens before the first write.
    clock = time.perf_counter()
    report = render_report(trained).encode()
    timings = {"read": round(read_seconds, 4), **trained.timings, "report": round(time.perf_counter() - clock, 4)}
    profile = json.dumps(trained.profile, allow_nan=False, default=str).encode()
    evaluation = trained.evaluation
    holdout = holdout_parquet(evaluation.x, evaluation.y_true, evaluation.timestamps_ns, trained.feature_names)
    recipe = trained.recipe.to_json() if trained.recipe is not None else None

    clock = time.perf_counter()
    trained_at = now()
    version = trained_at.strftime("%Y%m%dT%H%M%SZ") + "-" + job.process_id[:8]
    key = artifact_key(deps.model_key_prefix, job.process_id, job.machine_name, trained_at, trained.model_format)
    written: list[ArtifactRef] = []
    try:
        artifact = _put(deps.artifacts, written, key, trained.model_bytes, "application/octet-stream")
        report_ref = _put(deps.artifacts, written, sibling_key(key, REPORT_SUFFIX), report,
                          "text/html; charset=utf-8")
        profile_ref = _put(deps.artifacts, written, sibling_key(key, PROFILE_SUFFIX), profile, "application/json")
        holdout_ref = _put(deps.artifacts, written, sibling_key(key, HOLDOUT_SUFFIX), holdout,
                           "application/vnd.apache.parquet")
        recipe_ref = None if recipe is None else _put(deps.artifacts, written, sibling_key(key, RECIPE_SUFFIX),
                                                      recipe, "application/json")
        # "write": the artifacts; the registry item that records it is the one write after it.
        trained = replace(trained, timings={**timings, "write": round(time.perf_counter() - clock, 4)})
        deps.registry.put_version(model_version(job, trained, version=version, trained_at=trained_at,
                                                artifact=artifact, report=report_ref, profile=profile_ref,
                                                holdout=holdout_ref, recipe=recipe_ref))
    except Exception:
        for ref in reversed(written):  # no artifact without its registry item, not even an old version of one
            deps.artifacts.delete(ref.uri, ref.version_id)
        raise
    logger.info("model stored", extra={"process_id": job.process_id, "artifact_uri": artifact.uri,
                                       "version": version, "report_uri": report_ref.uri, "timings": trained.timings})
    return TrainingOutcome(model_id=version, bucket_address=artifact.uri)


def _training_data(job: Job, deps: TrainingDependencies) -> tuple[dict[str, pd.DataFrame], dict[str, Any] | None]:
    """The job's telemetry per machine, and its recorded failures (None: failures from RPM drops)."""
    machines = job.machine_names or [job.machine_name]
    frames = read_machines(deps.telemetry, machines, job.start_date, job.end_date)
    events = recorded_events(job, machines, deps) if job.failure_events is FailureEventSource.RECORDS else None
    logger.info("training data loaded", extra={
        "process_id": job.process_id, "machines": len(machines), "rows": sum(len(f) for f in frames.values()),
        "failure_events": job.failure_events.value,
        "recorded_events": None if events is None else sum(len(e) for e in events.values())})
    return frames, events


def read_machines(telemetry: TelemetryReader, machines: Sequence[str], start: date | None,
                  end: date | None) -> dict[str, pd.DataFrame]:
    """Each machine's telemetry: a fleet in a few large reads where the store offers them (``read_many``:
    TelemetryStore does), else machine by machine."""
    read_many = getattr(telemetry, "read_many", None)
    if read_many is not None and len(machines) > 1:
        frames: dict[str, pd.DataFrame] = read_many(list(machines), start, end)
        return frames
    return {name: telemetry.read(name, start, end) for name in machines}


def _put(artifacts: Artifacts, written: list[ArtifactRef], key: str, data: bytes, content_type: str) -> ArtifactRef:
    """Stores one artifact and notes it (URI and version) in ``written``: what to delete if a later write fails."""
    ref = artifacts.put(key, data, content_type)
    written.append(ref)
    return ref


def recorded_events(job: Job, machines: Sequence[str], deps: TrainingDependencies) -> dict[str, Any]:
    """Each machine's recorded failure timestamps (epoch ns) within the job's range."""
    if deps.failure_events is None:
        raise RuntimeError("this training function has no failure-events store configured")
    return events_in_range(deps.failure_events, machines, job.start_date, job.end_date)


def events_in_range(store: FailureEventReader, machines: Sequence[str], start: date | None,
                    end: date | None) -> dict[str, Any]:
    """Each machine's recorded failure timestamps (epoch ns) from ``start`` to ``end``: what training, and
    POST /validate, hand the pipeline as ``events``."""
    import numpy as np
    import pandas as pd

    frame = store.read(machines, start, end)
    events: dict[str, Any] = {name: np.array([], dtype=np.int64) for name in machines}
    if len(frame):
        stamps = pd.to_datetime(frame["timestamp"], utc=True)
        for name, rows in frame.groupby("machine_name").groups.items():
            if name in events:
                events[str(name)] = pd.DatetimeIndex(stamps.loc[rows]).as_unit("ns").asi8
    return events


def apply_options(config: PipelineConfig, options: TrainingOptions | None) -> PipelineConfig:
    """The job's options over the deployment's settings."""
    if options is None:
        return config
    from modelforge.domain.features import FeatureConfig

    labeling = replace(config.labeling, **_given(window_minutes=options.label_window_minutes,
                                                 health_horizon_minutes=options.health_horizon_minutes))
    features = FeatureConfig(
        windows_minutes=tuple(options.feature_windows_minutes or config.features.windows_minutes),
        statistics=tuple(options.feature_statistics or config.features.statistics),
        trend_window_minutes=(config.features.trend_window_minutes if options.trend_window_minutes is None
                              else options.trend_window_minutes or None))  # 0: no trend features
    search = replace(config.search, **_given(min_precision=options.min_precision))
    regimes = replace(config.regimes, settings=tuple(options.operating_settings or config.regimes.settings),
                      **_given(regimes=options.regimes))
    return replace(config, labeling=labeling, features=features, search=search, regimes=regimes,
                   **_given(holdout=options.holdout, test_fraction=options.test_fraction))


def _given(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def model_version(job: Job, trained: TrainedModel, *, version: str, trained_at: datetime, artifact: ArtifactRef,
                  report: ArtifactRef, profile: ArtifactRef, holdout: ArtifactRef,
                  recipe: ArtifactRef | None = None) -> ModelVersion:
    """The registry's record of a trained model: where its artifacts are, what trained it (job, data, options,
    code and library versions) and how it did, so that every version can be judged, served and explained."""
    return ModelVersion(
        model_name=ModelName(job.machine_name, job.indicator),
        version=version,
        machine_name=job.machine_name,
        machine_names=list(trained.machine_names),
        failure_events=job.failure_events,
        options=job.options.model_dump(exclude_none=True) if job.options else None,
        indicator=job.indicator,
        process_id=job.process_id,
        artifact_uri=artifact.uri,
        artifact_sha256=artifact.sha256,
        model_format=trained.model_format,
        report_uri=report.uri,
        report_sha256=report.sha256,
        profile_uri=profile.uri,
        profile_sha256=profile.sha256,
        holdout_uri=holdout.uri,
        holdout_sha256=holdout.sha256,
        # The exact versions hashed above: reads fetch these, never what the keys hold later.
        artifact_version_id=artifact.version_id,
        report_version_id=report.version_id,
        profile_version_id=profile.version_id,
        holdout_version_id=holdout.version_id,
        recipe_uri=recipe.uri if recipe else None,
        recipe_sha256=recipe.sha256 if recipe else None,
        recipe_version_id=recipe.version_id if recipe else None,
        feature_names=trained.feature_names,
        metrics=trained.metrics,
        baseline_metrics=trained.baseline_metrics,
        params=trained.params,
        data={**trained.data, "start_date": _iso(job.start_date), "end_date": _iso(job.end_date)},
        lineage=trained.lineage,
        feature_importance=dict(list(trained.feature_importance.items())[:20]),
        device=trained.params["device"],
        code_version=trained.lineage["code_version"],
        library_versions=trained.lineage["library_versions"],
        timings=trained.timings,
        trained_at=trained_at,
    )


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None
