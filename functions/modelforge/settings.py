"""Typed configuration, read from the environment at a handler's entry (never at import time).

Each model lists the variables its function needs; template.yaml sets them, and the local cloud copies them
from there, so a missing variable fails loudly with its name instead of surfacing as a None deep inside.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from modelforge.errors import SettingsError


class _EnvSettings(BaseModel):
    # str_min_length: an empty variable is as missing as an absent one (it would only fail inside botocore).
    model_config = ConfigDict(frozen=True, extra="ignore", str_min_length=1)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        env = os.environ if environ is None else environ
        # Field names are the lower-case forms of the variables: JOBS_TABLE_NAME -> jobs_table_name.
        values = {name: env[name.upper()] for name in cls.model_fields if name.upper() in env}
        try:
            return cls.model_validate(values)
        except ValidationError as error:
            missing = ", ".join(str(e["loc"][0]).upper() for e in error.errors())
            raise SettingsError(f"{cls.__name__}: bad or missing environment variables: {missing}") from error


class ApiSettings(_EnvSettings):
    jobs_table_name: str
    models_table_name: str
    data_bucket_name: str
    state_machine_arn: str
    models_bucket_name: str
    idempotency_table_name: str
    # How long an Idempotency-Key is remembered (the same key and body return the same job meanwhile).
    idempotency_ttl_seconds: int = Field(default=24 * 3600, ge=60, le=30 * 24 * 3600)
    processed_data_prefix: str = "processed"


class TrainingSettings(_EnvSettings):
    jobs_table_name: str
    models_table_name: str
    data_bucket_name: str
    models_bucket_name: str
    processed_data_prefix: str = "processed"
    # Recorded failure events (jobs with failure_events "records"): see README, "Data contract".
    failure_events_prefix: str = "failure_events"
    model_key_prefix: str = "model"
    # Failure labeling: see modelforge.domain.labeling for what each one means.
    label_window_minutes: int = Field(default=30, ge=1, le=24 * 60)
    failure_drop_threshold_pct: float = Field(default=30.0, gt=0, le=100)
    post_failure_exclusion_minutes: int = Field(default=60, ge=0, le=7 * 24 * 60)
    test_fraction: float = Field(default=0.2, gt=0, lt=0.9)
    # XGBoost device: "auto" uses CUDA when a GPU is visible, else the CPU.
    training_device: str = Field(default="auto", pattern="^(auto|cpu|cuda)$")
    # Low readings less than this apart are one failure episode (one onset).
    failure_episode_gap_minutes: int = Field(default=30, ge=0, le=24 * 60)
    # health: the regression target is the minutes to the next failure, capped at this horizon.
    health_horizon_minutes: int = Field(default=120, ge=10, le=7 * 24 * 60)
    # Evaluation: a failure is "caught ahead" when an alarm comes at least this long before it.
    alert_lead_minutes: float = Field(default=15.0, ge=0, le=24 * 60)
    # Data validation: fewer valid rows than this fail the job (InsufficientDataError).
    min_training_rows: int = Field(default=500, ge=10)
    # Training rows whose feature matrices exceed this are sampled, keeping every failure window.
    training_memory_budget_mb: float = Field(default=1024.0, gt=0)
    # Search (see modelforge.domain.search): strategy, its budget, and how the model is chosen.
    search_strategy: str = Field(default="early_stopping", pattern="^(early_stopping|halving|grid)$")
    search_budget: int = Field(default=3, ge=1, le=64)
    search_cv_folds: int = Field(default=3, ge=2, le=10)
    selection_metric: str = Field(default="recall_at_precision", pattern="^(recall_at_precision|f2)$")
    min_precision: float = Field(default=0.5, gt=0, lt=1)
    max_boost_rounds: int = Field(default=400, ge=10, le=10_000)
    early_stopping_rounds: int = Field(default=20, ge=1, le=1000)
    validation_fraction: float = Field(default=0.2, gt=0, lt=0.5)
    training_nthread: int = Field(default=0, ge=0, le=256)
    training_seed: int = Field(default=0, ge=0)
    # Lineage: the code revision (e.g. git commit) the training image was built from.
    code_revision: str = ""


class ReconcileSettings(_EnvSettings):
    jobs_table_name: str


class PredictSettings(_EnvSettings):
    models_table_name: str
    models_bucket_name: str
    # How stale the champion may be: a promotion reaches predictions within this many seconds.
    champion_refresh_seconds: float = Field(default=30, ge=0, le=3600)


class GateSettings(_EnvSettings):
    jobs_table_name: str
    models_table_name: str
    models_bucket_name: str
    # A challenger must reach these on the shared holdout (status models), and may trail the champion's F2 by
    # at most gate_tolerance; health models may trail the champion's RMSE by gate_rmse_tolerance (relative).
    gate_min_recall: float = Field(default=0.5, ge=0, le=1)
    gate_min_precision: float = Field(default=0.2, ge=0, le=1)
    gate_tolerance: float = Field(default=0.02, ge=0, le=1)
    gate_rmse_tolerance: float = Field(default=0.05, ge=0, le=10)


class DriftSettings(_EnvSettings):
    jobs_table_name: str
    models_table_name: str
    models_bucket_name: str
    data_bucket_name: str
    state_machine_arn: str
    processed_data_prefix: str = "processed"
    # How many days of each machine's newest data a check compares with the training profile.
    drift_window_days: int = Field(default=7, ge=1, le=366)
    # PSI above which a feature has drifted (0.1-0.25 is "moderate" by the usual rule of thumb).
    drift_psi_threshold: float = Field(default=0.25, gt=0, le=10)
    # Start a retraining job for a champion whose inputs drifted (the template's DriftRetrain).
    drift_retrain: bool = False
