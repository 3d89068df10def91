"""Typed configuration, read from the environment at a handler's entry (never at import time).

Each model lists the variables its function needs; template.yaml sets them, and the local cloud copies them
from there, so a missing variable fails loudly with its name instead of surfacing as a None deep inside.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class SettingsError(RuntimeError):
    """A required environment variable is missing or malformed."""


class _EnvSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

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
    jobs_page_size_max: int = Field(default=100, ge=1, le=1000)


class TrainingSettings(_EnvSettings):
    jobs_table_name: str
    models_table_name: str
    data_bucket_name: str
    models_bucket_name: str
    processed_data_prefix: str = "processed"
    model_key_prefix: str = "model"
    # Failure labeling: see modelforge.domain.labeling for what each one means.
    label_window_minutes: int = Field(default=30, ge=1, le=24 * 60)
    failure_drop_threshold_pct: float = Field(default=30.0, gt=0, le=100)
    post_failure_exclusion_minutes: int = Field(default=60, ge=0, le=7 * 24 * 60)
    test_fraction: float = Field(default=0.2, gt=0, lt=0.9)
    # XGBoost device: "auto" uses CUDA when a GPU is visible, else the CPU.
    training_device: str = Field(default="auto", pattern="^(auto|cpu|cuda)$")


class ReconcileSettings(_EnvSettings):
    jobs_table_name: str


class PredictSettings(_EnvSettings):
    models_table_name: str
    models_bucket_name: str
    # How stale the champion may be: a promotion reaches predictions within this many seconds.
    champion_refresh_seconds: float = Field(default=30, ge=0, le=3600)
