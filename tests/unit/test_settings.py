"""Typed settings read from the environment (modelforge.settings)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from modelforge.adapters.failure_events import DEFAULT_PREFIX as FAILURE_EVENTS_PREFIX
from modelforge.adapters.telemetry import DEFAULT_PREFIX as TELEMETRY_PREFIX
from modelforge.errors import SettingsError
from modelforge.settings import (
    ApiSettings,
    DriftSettings,
    GateSettings,
    PredictSettings,
    TrainingSettings,
    _EnvSettings,
    override,
)


def required(cls: type[_EnvSettings]) -> list[str]:
    return sorted(name.upper() for name, field in cls.model_fields.items() if field.is_required())


def complete(cls: type[_EnvSettings]) -> dict[str, str]:
    """A value for every required variable (ARNs and names; none has a format of its own but the ARN)."""
    return {
        name: f"arn:aws:states:us-east-1:123456789012:stateMachine:{name.lower()}"
        if name.endswith("_ARN")
        else f"modelforge-test-{name.lower().replace('_', '-')}"
        for name in required(cls)
    }


# Every settings model a function reads (others may be added; the generic tests cover them too).
CLASSES = sorted(_EnvSettings.__subclasses__(), key=lambda c: c.__name__)


def named_in(error: SettingsError, cls: type[_EnvSettings]) -> set[str]:
    """The variables of ``cls`` that the error message names."""
    return {name.upper() for name in cls.model_fields if re.search(rf"\b{name.upper()}\b", str(error))}


def test_the_settings_models_are_found() -> None:
    assert {ApiSettings, TrainingSettings} <= set(CLASSES)


def test_the_required_variables_are_the_ones_the_functions_need() -> None:
    assert set(required(ApiSettings)) >= {
        "JOBS_TABLE_NAME",
        "MODELS_TABLE_NAME",
        "DATA_BUCKET_NAME",
        "STATE_MACHINE_ARN",
    }
    assert set(required(TrainingSettings)) >= {
        "JOBS_TABLE_NAME",
        "MODELS_TABLE_NAME",
        "DATA_BUCKET_NAME",
        "MODELS_BUCKET_NAME",
    }


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_value_comes_from_its_upper_case_variable(cls: type[_EnvSettings]) -> None:
    environ = {**complete(cls), "UNRELATED_VARIABLE": "ignored"}

    settings = cls.from_env(environ)

    for name in required(cls):
        assert getattr(settings, name.lower()) == environ[name]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_no_variables_names_every_missing_one(cls: type[_EnvSettings]) -> None:
    with pytest.raises(SettingsError) as raised:
        cls.from_env({})

    message = str(raised.value)
    assert cls.__name__ in message
    for name in required(cls):
        assert name in message


@pytest.mark.parametrize(
    ("cls", "missing"),
    [(cls, name) for cls in CLASSES for name in required(cls)],
    ids=lambda v: v if isinstance(v, str) else v.__name__,
)
def test_one_missing_variable_is_named_alone(cls: type[_EnvSettings], missing: str) -> None:
    environ = complete(cls)
    del environ[missing]

    with pytest.raises(SettingsError) as raised:
        cls.from_env(environ)

    assert named_in(raised.value, cls) == {missing}


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_lower_case_variables_are_not_read(cls: type[_EnvSettings]) -> None:
    with pytest.raises(SettingsError):
        cls.from_env({name.lower(): value for name, value in complete(cls).items()})


def test_defaults_apply_when_optional_variables_are_absent() -> None:
    api = ApiSettings.from_env(complete(ApiSettings))
    training = TrainingSettings.from_env(complete(TrainingSettings))

    # The data contract (README.md): processed telemetry under processed/, one constant says so.
    assert api.processed_data_prefix == training.processed_data_prefix == TELEMETRY_PREFIX == "processed"
    assert training.failure_events_prefix == FAILURE_EVENTS_PREFIX
    assert api.idempotency_ttl_seconds == 24 * 3600
    assert api.max_jobs_in_flight is None  # unbounded: the template's MaxJobsInFlight is the one default
    # Values the domain owns are not defaulted here: unset overrides leave the domain's configuration as is.
    assert training.label_window_minutes is None and training.training_device is None
    assert training.model_key_prefix is None and training.code_revision is None


# ---------------------------------------------------------------- each default declared once: the domain's


def _pipeline() -> Any:
    from modelforge.domain.pipeline import PipelineConfig

    return PipelineConfig()


def _gate() -> Any:
    from modelforge.domain.gate import GateConfig

    return GateConfig()


def _drift() -> Any:
    from modelforge.domain.drift import DriftConfig

    return DriftConfig()


def _compute() -> Any:
    from modelforge.domain.compute import ComputeConfig

    return ComputeConfig()


def _capture() -> Any:
    from modelforge.domain.live import CaptureConfig

    return CaptureConfig()


# The settings models that override a domain configuration: (the method that builds it, the domain's defaults).
CONFIGURED: dict[type[_EnvSettings], tuple[str, Callable[[], Any]]] = {
    TrainingSettings: ("pipeline_config", _pipeline),
    GateSettings: ("gate_config", _gate),
    DriftSettings: ("drift_config", _drift),
    PredictSettings: ("capture_config", _capture),
    ApiSettings: ("compute_config", _compute),
}
# One valid value, other than the domain's default, for every override (a new override needs a row here).
OVERRIDE_VALUES: dict[type[_EnvSettings], dict[str, tuple[str, Any]]] = {
    TrainingSettings: {
        "LABEL_WINDOW_MINUTES": ("45", 45),
        "FAILURE_DROP_THRESHOLD_PCT": ("27.5", 27.5),
        "POST_FAILURE_EXCLUSION_MINUTES": ("0", 0),
        "FAILURE_EPISODE_GAP_MINUTES": ("10", 10),
        "HEALTH_HORIZON_MINUTES": ("240", 240),
        "SEARCH_STRATEGY": ("grid", "grid"),
        "SEARCH_BUDGET": ("6", 6),
        "SEARCH_CV_FOLDS": ("4", 4),
        "SELECTION_METRIC": ("f2", "f2"),
        "MIN_PRECISION": ("0.3", 0.3),
        "THRESHOLD_PARTS": ("3", 3),
        "MAX_BOOST_ROUNDS": ("50", 50),
        "EARLY_STOPPING_ROUNDS": ("5", 5),
        "VALIDATION_FRACTION": ("0.3", 0.3),
        "TRAINING_DEVICE": ("cpu", "cpu"),
        "TRAINING_NTHREAD": ("2", 2),
        "TRAINING_SEED": ("42", 42),
        "MIN_TRAINING_ROWS": ("1000", 1000),
        "TEST_FRACTION": ("0.25", 0.25),
        "ALERT_LEAD_MINUTES": ("20", 20.0),
        "TRAINING_MEMORY_BUDGET_MB": ("256", 256.0),
    },
    GateSettings: {
        "GATE_MIN_RECALL": ("0.6", 0.6),
        "GATE_MIN_PRECISION": ("0.3", 0.3),
        "GATE_TOLERANCE": ("0.05", 0.05),
        "GATE_RMSE_TOLERANCE": ("0.1", 0.1),
    },
    DriftSettings: {
        "DRIFT_WINDOW_DAYS": ("14", 14),
        "DRIFT_PSI_THRESHOLD": ("0.2", 0.2),
        "DRIFT_SHARE_THRESHOLD": ("0.3", 0.3),
        "LIVE_RECALL_FLOOR": ("0.4", 0.4),
    },
    PredictSettings: {
        "CAPTURE_SAMPLE_RATE": ("0.25", 0.25),
        "CAPTURE_FLUSH_ROWS": ("1", 1),
        "CAPTURE_FLUSH_SECONDS": ("2.5", 2.5),
    },
    ApiSettings: {
        "BATCH_AVAILABLE": ("true", True),
        "GPU_AVAILABLE": ("true", True),
        "BATCH_CPU_MEMORY_MIB": ("61440", 61440.0),
        "BATCH_LARGE_MEMORY_MIB": ("491520", 491520.0),
        "COMPUTE_LAMBDA_MARGIN": ("0.7", 0.7),
        "COMPUTE_BATCH_MARGIN": ("0.6", 0.6),
        "COMPUTE_GPU_PREFERRED_ABOVE_CELLS": ("5e8", 5e8),
    },
}


def field_at(config: Any, path: str) -> Any:
    for part in path.split("."):
        config = getattr(config, part)
    return config


def build(cls: type[_EnvSettings], environ: dict[str, str]) -> Any:
    method, _ = CONFIGURED[cls]
    return getattr(cls.from_env({**complete(cls), **environ}), method)()


def test_every_settings_model_that_overrides_the_domain_builds_its_configuration() -> None:
    assert {cls for cls in CLASSES if cls.OVERRIDES} == set(CONFIGURED) == set(OVERRIDE_VALUES)
    for cls in CONFIGURED:
        assert set(OVERRIDE_VALUES[cls]) == {name.upper() for name in cls.OVERRIDES}, cls.__name__


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_an_override_has_no_default_of_its_own(cls: type[_EnvSettings]) -> None:
    """The domain's configuration is the one place a tuning default is written: an override is None unless
    its variable is set, and names a field the configuration has."""
    for name in cls.OVERRIDES:
        field = cls.model_fields[name]
        assert not field.is_required() and field.default is None, f"{cls.__name__}.{name} has a default"
    if cls in CONFIGURED:
        defaults = CONFIGURED[cls][1]()
        for target in cls.OVERRIDES.values():
            field_at(defaults, target)  # the field exists
        assert len(set(cls.OVERRIDES.values())) == len(cls.OVERRIDES), "two settings override one field"


@pytest.mark.parametrize("cls", list(CONFIGURED), ids=lambda c: c.__name__)
def test_unset_overrides_leave_the_domain_s_defaults(cls: type[_EnvSettings]) -> None:
    _, defaults = CONFIGURED[cls]
    assert build(cls, {}) == defaults()
    # An empty variable (the template's "leave the code's default") is not set either.
    assert build(cls, {name: "" for name in OVERRIDE_VALUES[cls]}) == defaults()


@pytest.mark.parametrize(
    ("cls", "variable"),
    [(cls, variable) for cls, values in OVERRIDE_VALUES.items() for variable in values],
    ids=lambda v: v if isinstance(v, str) else v.__name__,
)
def test_each_override_replaces_its_domain_field_and_nothing_else(cls: type[_EnvSettings], variable: str) -> None:
    text, value = OVERRIDE_VALUES[cls][variable]
    target = cls.OVERRIDES[variable.lower()]
    defaults = CONFIGURED[cls][1]()
    assert field_at(defaults, target) != value, "pick a value other than the default"

    built = build(cls, {variable: text})

    assert field_at(built, target) == value
    assert type(field_at(built, target)) is type(value)
    assert built == override(defaults, {target: value})


def test_overrides_still_meet_the_domain_s_own_validation() -> None:
    from modelforge.domain.labeling import LabelingConfig

    with pytest.raises(ValueError, match="has no field"):
        override(LabelingConfig(), {"window": 5})
    with pytest.raises(ValueError, match="strategy must be one of"):
        override(_pipeline(), {"search.strategy": "random"})


@pytest.mark.parametrize(
    ("cls", "variable", "text", "value"),
    [
        (ApiSettings, "PROCESSED_DATA_PREFIX", "curated/v2", "curated/v2"),
        (ApiSettings, "MAX_JOBS_IN_FLIGHT", "8", 8),
        (TrainingSettings, "LABEL_WINDOW_MINUTES", "45", 45),
        (TrainingSettings, "FAILURE_DROP_THRESHOLD_PCT", "27.5", 27.5),
        (TrainingSettings, "POST_FAILURE_EXCLUSION_MINUTES", "0", 0),
        (TrainingSettings, "TEST_FRACTION", "0.25", 0.25),
        (TrainingSettings, "TRAINING_DEVICE", "cuda", "cuda"),
        (TrainingSettings, "TRAINING_DEVICE", "cpu", "cpu"),
        (TrainingSettings, "MODEL_KEY_PREFIX", "models/xgb", "models/xgb"),
    ],
)
def test_values_are_parsed_to_their_types(
    cls: type[_EnvSettings], variable: str, text: str, value: Any
) -> None:
    settings = cls.from_env({**complete(cls), variable: text})

    parsed = getattr(settings, variable.lower())
    assert parsed == value
    assert type(parsed) is type(value)


@pytest.mark.parametrize(
    ("cls", "variable", "text"),
    [
        (ApiSettings, "IDEMPOTENCY_TTL_SECONDS", "many"),
        (ApiSettings, "IDEMPOTENCY_TTL_SECONDS", "0"),
        (ApiSettings, "MAX_JOBS_IN_FLIGHT", "0"),
        (ApiSettings, "MAX_JOBS_IN_FLIGHT", "1001"),
        (ApiSettings, "MAX_JOBS_IN_FLIGHT", "eight"),
        (TrainingSettings, "LABEL_WINDOW_MINUTES", "0"),
        (TrainingSettings, "LABEL_WINDOW_MINUTES", "1441"),
        (TrainingSettings, "LABEL_WINDOW_MINUTES", "7.5"),
        (TrainingSettings, "FAILURE_DROP_THRESHOLD_PCT", "0"),
        (TrainingSettings, "FAILURE_DROP_THRESHOLD_PCT", "100.5"),
        (TrainingSettings, "POST_FAILURE_EXCLUSION_MINUTES", "-1"),
        (TrainingSettings, "TEST_FRACTION", "0"),
        (TrainingSettings, "TEST_FRACTION", "0.9"),
        (TrainingSettings, "TEST_FRACTION", "nan"),
        (TrainingSettings, "TRAINING_DEVICE", "tpu"),
        (TrainingSettings, "TRAINING_DEVICE", "CUDA"),
    ],
)
def test_a_malformed_value_is_named(cls: type[_EnvSettings], variable: str, text: str) -> None:
    with pytest.raises(SettingsError) as raised:
        cls.from_env({**complete(cls), variable: text})

    assert named_in(raised.value, cls) == {variable}


def test_from_env_reads_the_process_environment_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in complete(ApiSettings).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("IDEMPOTENCY_TTL_SECONDS", "600")

    assert ApiSettings.from_env().idempotency_ttl_seconds == 600

    monkeypatch.delenv("JOBS_TABLE_NAME")
    with pytest.raises(SettingsError, match="JOBS_TABLE_NAME"):
        ApiSettings.from_env()


def test_settings_are_frozen_and_hashable() -> None:
    settings = ApiSettings.from_env(complete(ApiSettings))

    with pytest.raises(ValueError, match="frozen"):
        settings.jobs_table_name = "other"  # type: ignore[misc]
    # The API caches its clients per settings value (functools.cache), so equal settings must hash equal.
    assert hash(settings) == hash(ApiSettings.from_env(complete(ApiSettings)))


@pytest.mark.parametrize("cls", [ApiSettings, TrainingSettings], ids=lambda c: c.__name__)
def test_an_empty_required_variable_is_named(cls: type[_EnvSettings]) -> None:
    with pytest.raises(SettingsError) as raised:
        cls.from_env({**complete(cls), "JOBS_TABLE_NAME": ""})

    assert named_in(raised.value, cls) == {"JOBS_TABLE_NAME"}
