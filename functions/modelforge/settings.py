"""Typed configuration, read from the environment at a handler's entry (never at import time).

Each model lists the variables its function needs; template.yaml sets them, and the local cloud copies them
from there, so a missing variable fails loudly with its name instead of surfacing as a None deep inside.

Each default is declared once. A value that tunes the domain (a gate floor, the drift window, a labeling or
search choice) has its default in the domain's configuration (``GateConfig``, ``DriftConfig``,
``PipelineConfig`` and its parts); its setting here is an optional override (None unless its variable is set)
with the bounds it must respect, and ``OVERRIDES`` maps it onto the configuration field it replaces. One
method per model (``gate_config``, ``drift_config``, ``pipeline_config``) builds the configuration from the
domain's defaults plus the overrides given. Wiring (table and bucket names, the state machine) is required;
data-layout names default to their adapter's constant. An empty variable counts as unset: template.yaml passes
an operator parameter left at its default (``""``) as an empty variable, which leaves the code's default.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import fields, is_dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from modelforge.adapters.failure_events import DEFAULT_PREFIX as FAILURE_EVENTS_PREFIX
from modelforge.adapters.prediction_capture import DEFAULT_PREFIX as CAPTURE_PREFIX
from modelforge.adapters.retrain_items import DEFAULT_PREFIX as RETRAIN_ITEMS_PREFIX
from modelforge.adapters.telemetry import DEFAULT_PREFIX as TELEMETRY_PREFIX
from modelforge.errors import SettingsError

if TYPE_CHECKING:
    from modelforge.domain.compute import ComputeConfig
    from modelforge.domain.drift import DriftConfig
    from modelforge.domain.gate import GateConfig
    from modelforge.domain.live import CaptureConfig
    from modelforge.domain.pipeline import PipelineConfig
    from modelforge.domain.retrain_policy import RetrainPolicy

Config = TypeVar("Config")


class _EnvSettings(BaseModel):
    # str_min_length: an empty value is as missing as an absent one (it would only fail inside botocore);
    # from_env drops empty variables before validation, so this guards values given in code. defer_build: a
    # function reads one of these models, and each is built when first read, not at every cold import.
    model_config = ConfigDict(frozen=True, extra="ignore", str_min_length=1, defer_build=True)

    # settings field -> the field of the domain's configuration it overrides ("labeling.window_minutes" for a
    # nested one). Every field named here defaults to None: the domain's configuration holds the default.
    OVERRIDES: ClassVar[Mapping[str, str]] = {}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        env = os.environ if environ is None else environ
        # Field names are the lower-case forms of the variables: JOBS_TABLE_NAME -> jobs_table_name. An empty
        # variable is not set: a required one is then missing, an optional one keeps its default.
        values = {name: env[name.upper()] for name in cls.model_fields if env.get(name.upper(), "") != ""}
        try:
            return cls.model_validate(values)
        except ValidationError as error:
            missing = ", ".join(str(e["loc"][0]).upper() for e in error.errors())
            raise SettingsError(f"{cls.__name__}: bad or missing environment variables: {missing}") from error

    def overrides(self) -> dict[str, Any]:
        """The configuration fields these settings replace: {dotted config field: value}, the set ones only."""
        return {target: getattr(self, name) for name, target in self.OVERRIDES.items()
                if getattr(self, name) is not None}

    def _configure(self, defaults: Config) -> Config:
        return override(defaults, self.overrides())


def override(config: Config, values: Mapping[str, Any]) -> Config:
    """``config`` (a frozen dataclass) with the dotted fields in ``values`` replaced, nested configurations
    rebuilt in turn, so each one's own validation (``__post_init__``) runs on the result."""
    if not is_dataclass(config) or isinstance(config, type):
        raise TypeError(f"not a dataclass instance: {config!r}")
    known = {f.name for f in fields(config)}
    direct: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for path, value in values.items():
        head, _, rest = path.partition(".")
        if head not in known:
            raise ValueError(f"{type(config).__name__} has no field {head!r}")
        if rest:
            nested.setdefault(head, {})[rest] = value
        else:
            direct[head] = value
    for head, inner in nested.items():
        direct[head] = override(getattr(config, head), inner)
    return replace(config, **direct)


class ApiSettings(_EnvSettings):
    jobs_table_name: str
    models_table_name: str
    data_bucket_name: str
    state_machine_arn: str
    models_bucket_name: str
    idempotency_table_name: str
    # How long an Idempotency-Key is remembered (the same key and body return the same job meanwhile).
    idempotency_ttl_seconds: int = Field(default=24 * 3600, ge=60, le=30 * 24 * 3600)
    processed_data_prefix: str = TELEMETRY_PREFIX
    # Cost guard: POST /train answers 429 while this many jobs are pending or running. None: unbounded; the
    # template's MaxJobsInFlight parameter is the one default (and its bounds are these).
    max_jobs_in_flight: int | None = Field(default=None, ge=1, le=1000)
    # Retraining (POST /retrain, GET /retrains/{run_id}, GET /triggers, POST /triggers/resolve).
    triggers_table_name: str
    retrain_state_machine_arn: str
    # Where jobs run (modelforge.domain.compute): the template sets the first two from BatchEnabled and
    # BatchGpuEnabled and the Batch CPU job definitions' memory from BatchCpuMemoryMiB and BatchLargeMemoryMiB
    # (wiring); the rest override ComputeConfig (None: the domain's default).
    batch_available: bool | None = None
    gpu_available: bool | None = None
    batch_cpu_memory_mib: float | None = Field(default=None, gt=0)
    batch_large_memory_mib: float | None = Field(default=None, gt=0)
    compute_lambda_margin: float | None = Field(default=None, gt=0, le=1)
    compute_batch_margin: float | None = Field(default=None, gt=0, le=1)
    compute_gpu_preferred_above_cells: float | None = Field(default=None, gt=0)

    OVERRIDES: ClassVar[Mapping[str, str]] = {
        "batch_available": "batch_available", "gpu_available": "gpu_available",
        "batch_cpu_memory_mib": "batch_cpu_memory_mib", "batch_large_memory_mib": "batch_large_memory_mib",
        "compute_lambda_margin": "lambda_margin", "compute_batch_margin": "batch_margin",
        "compute_gpu_preferred_above_cells": "gpu_preferred_above_cells"}

    def compute_config(self) -> ComputeConfig:
        from modelforge.domain.compute import ComputeConfig

        return self._configure(ComputeConfig())


class TrainingSettings(_EnvSettings):
    jobs_table_name: str
    models_table_name: str
    data_bucket_name: str
    models_bucket_name: str
    processed_data_prefix: str = TELEMETRY_PREFIX
    # Recorded failure events (jobs with failure_events "records"): see README, "Data contract".
    failure_events_prefix: str = FAILURE_EVENTS_PREFIX
    # Where artifacts go in the models bucket, and the code revision (e.g. git commit) the image was built
    # from; None: TrainingDependencies' defaults.
    model_key_prefix: str | None = None
    code_revision: str | None = None
    # Everything below overrides PipelineConfig (see OVERRIDES); None: the domain's default.
    # Failure labeling: see modelforge.domain.labeling for what each one means.
    label_window_minutes: int | None = Field(default=None, ge=1, le=24 * 60)
    failure_drop_threshold_pct: float | None = Field(default=None, gt=0, le=100)
    post_failure_exclusion_minutes: int | None = Field(default=None, ge=0, le=7 * 24 * 60)
    test_fraction: float | None = Field(default=None, gt=0, lt=0.9)
    # XGBoost device: "auto" uses CUDA when a GPU is visible, else the CPU.
    training_device: str | None = Field(default=None, pattern="^(auto|cpu|cuda)$")
    # Low readings less than this apart are one failure episode (one onset).
    failure_episode_gap_minutes: int | None = Field(default=None, ge=0, le=24 * 60)
    # health: the regression target is the minutes to the next failure, capped at this horizon.
    health_horizon_minutes: int | None = Field(default=None, ge=10, le=7 * 24 * 60)
    # Evaluation: a failure is "caught ahead" when an alarm comes at least this long before it.
    alert_lead_minutes: float | None = Field(default=None, ge=0, le=24 * 60)
    # Data validation: fewer valid rows than this fail the job (InsufficientDataError).
    min_training_rows: int | None = Field(default=None, ge=10)
    # Training rows whose feature matrices exceed this are sampled, keeping every failure window.
    training_memory_budget_mb: float | None = Field(default=None, gt=0)
    # Search (see modelforge.domain.search): strategy, its budget, and how the model is chosen.
    search_strategy: str | None = Field(default=None, pattern="^(early_stopping|halving|grid)$")
    search_budget: int | None = Field(default=None, ge=1, le=64)
    search_cv_folds: int | None = Field(default=None, ge=2, le=10)
    selection_metric: str | None = Field(default=None, pattern="^(recall_at_precision|f2)$")
    min_precision: float | None = Field(default=None, gt=0, lt=1)
    # A fleet validated by machines: the threshold must hold on each of this many parts of them (1: pooled).
    threshold_parts: int | None = Field(default=None, ge=1, le=20)
    max_boost_rounds: int | None = Field(default=None, ge=10, le=10_000)
    early_stopping_rounds: int | None = Field(default=None, ge=1, le=1000)
    validation_fraction: float | None = Field(default=None, gt=0, lt=0.5)
    training_nthread: int | None = Field(default=None, ge=0, le=256)
    training_seed: int | None = Field(default=None, ge=0)

    OVERRIDES: ClassVar[Mapping[str, str]] = {
        "label_window_minutes": "labeling.window_minutes",
        "failure_drop_threshold_pct": "labeling.drop_threshold_pct",
        "post_failure_exclusion_minutes": "labeling.post_failure_exclusion_minutes",
        "failure_episode_gap_minutes": "labeling.episode_gap_minutes",
        "health_horizon_minutes": "labeling.health_horizon_minutes",
        "search_strategy": "search.strategy",
        "search_budget": "search.budget",
        "search_cv_folds": "search.cv_folds",
        "selection_metric": "search.selection_metric",
        "min_precision": "search.min_precision",
        "threshold_parts": "search.threshold_parts",
        "max_boost_rounds": "search.max_rounds",
        "early_stopping_rounds": "search.early_stopping_rounds",
        "validation_fraction": "search.validation_fraction",
        "training_device": "search.device",
        "training_nthread": "search.nthread",
        "training_seed": "search.seed",
        "min_training_rows": "validation.min_rows",
        "test_fraction": "test_fraction",
        "alert_lead_minutes": "lead_minutes",
        "training_memory_budget_mb": "memory_budget_mb",
    }

    def pipeline_config(self) -> PipelineConfig:
        """The training pipeline's configuration: the domain's defaults with these settings' overrides (domain
        code never reads the environment)."""
        from modelforge.domain.pipeline import PipelineConfig

        return self._configure(PipelineConfig())


class ReconcileSettings(_EnvSettings):
    jobs_table_name: str
    # The sweep of a dead job's leftovers: its registry items, and its folder in the models bucket, under the
    # prefix the training function writes to (None: the same default, logic.training_job.MODEL_KEY_PREFIX).
    models_table_name: str
    models_bucket_name: str
    model_key_prefix: str | None = None


class PredictSettings(_EnvSettings):
    models_table_name: str
    models_bucket_name: str
    # How stale the champion may be: a promotion reaches predictions within this many seconds.
    champion_refresh_seconds: float = Field(default=30, ge=0, le=3600)
    # Prediction capture (logic.predict.capture_predictions): the bucket (template.yaml: the data bucket; unset,
    # as in a deployment without one, captures nothing), its prefix (the one the IAM grant names), and the share
    # of requests captured (overrides CaptureConfig.sample_rate; None: the domain's default).
    capture_bucket_name: str | None = None
    capture_prefix: str = CAPTURE_PREFIX
    capture_sample_rate: float | None = Field(default=None, ge=0, le=1)
    # When a warm container writes the records it buffered (CaptureConfig.flush_rows / flush_seconds): 1 row
    # writes each request at once, as the local cloud's integration tests want.
    capture_flush_rows: int | None = Field(default=None, ge=1, le=1_000_000)
    capture_flush_seconds: float | None = Field(default=None, ge=0, le=3600)

    OVERRIDES: ClassVar[Mapping[str, str]] = {"capture_sample_rate": "sample_rate",
                                              "capture_flush_rows": "flush_rows",
                                              "capture_flush_seconds": "flush_seconds"}

    def capture_config(self) -> CaptureConfig:
        from modelforge.domain.live import CaptureConfig

        return self._configure(CaptureConfig())


class GateSettings(_EnvSettings):
    jobs_table_name: str
    models_table_name: str
    models_bucket_name: str
    # Override GateConfig (see modelforge.domain.gate): a challenger must reach the floors on the shared
    # holdout (status models) and may trail the champion's F2 by at most gate_tolerance; health models may
    # trail the champion's RMSE by gate_rmse_tolerance (relative). None: the domain's default.
    gate_min_recall: float | None = Field(default=None, ge=0, le=1)
    gate_min_precision: float | None = Field(default=None, ge=0, le=1)
    gate_tolerance: float | None = Field(default=None, ge=0, le=1)
    gate_rmse_tolerance: float | None = Field(default=None, ge=0, le=10)

    OVERRIDES: ClassVar[Mapping[str, str]] = {
        "gate_min_recall": "min_recall",
        "gate_min_precision": "min_precision",
        "gate_tolerance": "tolerance",
        "gate_rmse_tolerance": "rmse_tolerance",
    }

    def gate_config(self) -> GateConfig:
        from modelforge.domain.gate import GateConfig

        return self._configure(GateConfig())


class DriftSettings(_EnvSettings):
    """DriftFunction (one model's check, by hand): where the champions, profiles and data are. It starts no
    training, so it has no jobs table and no state machine."""

    models_table_name: str
    models_bucket_name: str
    data_bucket_name: str
    processed_data_prefix: str = TELEMETRY_PREFIX
    # Override DriftConfig (see modelforge.domain.drift): the window of newest data a check compares with the
    # training profile and the PSI above which a feature has drifted. None: the domain's default. Only the
    # retraining state machine starts retrains (RetrainSettings), so a drift check has no switch for it.
    drift_window_days: int | None = Field(default=None, ge=1, le=366)
    drift_psi_threshold: float | None = Field(default=None, gt=0, le=10)
    # The share of drifted features at which a model has drifted, and the live recall below which it has
    # concept drift (DriftConfig.drift_share, live_recall_floor). None: the domain's default.
    drift_share_threshold: float | None = Field(default=None, gt=0, le=1)
    live_recall_floor: float | None = Field(default=None, ge=0, le=1)
    # Where the live-recall check reads captured predictions and recorded failures (the prefixes granted).
    capture_prefix: str = CAPTURE_PREFIX
    failure_events_prefix: str = FAILURE_EVENTS_PREFIX

    OVERRIDES: ClassVar[Mapping[str, str]] = {
        "drift_window_days": "window_days",
        "drift_psi_threshold": "psi_threshold",
        "drift_share_threshold": "drift_share",
        "live_recall_floor": "live_recall_floor",
    }

    def drift_config(self) -> DriftConfig:
        from modelforge.domain.drift import DriftConfig

        return self._configure(DriftConfig())


class ValidateSettings(_EnvSettings):
    """POST /validate (ValidateFunction): where the data is. The checks use the training pipeline's defaults
    (PipelineConfig), as TrainingFunction does, and the request's options over them."""

    data_bucket_name: str
    processed_data_prefix: str = TELEMETRY_PREFIX
    failure_events_prefix: str = FAILURE_EVENTS_PREFIX

    def pipeline_config(self) -> PipelineConfig:
        from modelforge.domain.pipeline import PipelineConfig

        return PipelineConfig()


class RetrainSettings(DriftSettings):
    """The retraining state machine's functions (plan, item, summary): the drift check's settings (each item
    checks its model as DriftFunction does), the triggers table, the jobs table and training state machine its
    retrains are submitted to, and the retraining policy's overrides."""

    triggers_table_name: str
    jobs_table_name: str
    state_machine_arn: str
    retrain_items_prefix: str = RETRAIN_ITEMS_PREFIX
    # Override RetrainPolicy (modelforge.domain.retrain_policy). None: the domain's default.
    retrain_max_age_days: float | None = Field(default=None, gt=0, le=3650)
    retrain_min_new_rows: int | None = Field(default=None, gt=0)
    retrain_min_new_failures: int | None = Field(default=None, gt=0)
    # Where the retrains it starts may run (as ApiSettings': the template wires them from the same parameters),
    # so a fleet too big for the Lambda goes to Batch, and to the same size class, from the schedule as from
    # the API.
    batch_available: bool | None = None
    gpu_available: bool | None = None
    batch_cpu_memory_mib: float | None = Field(default=None, gt=0)
    batch_large_memory_mib: float | None = Field(default=None, gt=0)

    def compute_config(self) -> ComputeConfig:
        from modelforge.domain.compute import ComputeConfig

        return override(ComputeConfig(), {target: value for target, value in (
            ("batch_available", self.batch_available), ("gpu_available", self.gpu_available),
            ("batch_cpu_memory_mib", self.batch_cpu_memory_mib),
            ("batch_large_memory_mib", self.batch_large_memory_mib)) if value is not None})

    def retrain_policy(self) -> RetrainPolicy:
        from modelforge.domain.retrain_policy import RetrainPolicy

        return override(RetrainPolicy(), {target: value for target, value in (
            ("max_age_days", self.retrain_max_age_days), ("min_new_rows", self.retrain_min_new_rows),
            ("min_new_failures", self.retrain_min_new_failures))
            if value is not None})


class TriggerEventsSettings(_EnvSettings):
    """TriggerEventsFunction: the trigger records the training executions' status events update."""

    triggers_table_name: str
