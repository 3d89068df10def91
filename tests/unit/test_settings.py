"""Typed settings read from the environment (modelforge.settings)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from modelforge.errors import SettingsError
from modelforge.settings import ApiSettings, TrainingSettings, _EnvSettings


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

    assert api.processed_data_prefix == "processed"
    assert api.idempotency_ttl_seconds == 24 * 3600
    assert training.processed_data_prefix == "processed"
    assert training.model_key_prefix == "model"
    assert training.label_window_minutes == 30
    assert training.failure_drop_threshold_pct == 30.0
    assert training.post_failure_exclusion_minutes == 60
    assert training.test_fraction == 0.2
    assert training.training_device == "auto"


@pytest.mark.parametrize(
    ("cls", "variable", "text", "value"),
    [
        (ApiSettings, "PROCESSED_DATA_PREFIX", "curated/v2", "curated/v2"),
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
