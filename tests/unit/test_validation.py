"""Data validation before training (modelforge.domain.telemetry.clean_telemetry): named errors with readable
messages, and invalid rows dropped and counted."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from modelforge.domain.telemetry import ValidationConfig, clean_telemetry
from modelforge.errors import InsufficientDataError, NoTrainingDataError, TelemetrySchemaError, TrainingDataError

VARIATION = "Eng_RPM_variation_percentage"


def frame(rows: int = 20) -> pd.DataFrame:
    return pd.DataFrame({
        "timestamp": pd.date_range("2025-01-01", periods=rows, freq="min", tz="UTC"),
        VARIATION: np.zeros(rows),
        "Vibration_RMS_mm_s": np.full(rows, 2.0),
        "Motor_Temperature_C": np.full(rows, 60.0),
    })


SMALL = ValidationConfig(min_rows=5)


def test_an_empty_range_is_no_training_data() -> None:
    with pytest.raises(NoTrainingDataError, match="no processed telemetry"):
        clean_telemetry(pd.DataFrame(), machine_name="M")


def test_missing_required_columns_are_named() -> None:
    with pytest.raises(TelemetrySchemaError, match=VARIATION) as caught:
        clean_telemetry(frame().drop(columns=[VARIATION]), machine_name="M", config=SMALL)
    assert "Vibration_RMS_mm_s" in str(caught.value)  # the message lists what was found instead


@pytest.mark.parametrize("column, values, expected", [
    (VARIATION, ["a"] * 20, "must be numeric"),
    (VARIATION, [True] * 20, "must be numeric"),
    ("timestamp", np.arange(20), "must hold datetimes"),
    ("timestamp", ["not a date"] * 20, "not a datetime"),
])
def test_wrongly_typed_key_columns_are_schema_errors(column: str, values: object, expected: str) -> None:
    data = frame()
    data[column] = values
    with pytest.raises(TelemetrySchemaError, match=expected):
        clean_telemetry(data, machine_name="M", config=SMALL)


def test_invalid_rows_are_dropped_and_counted_by_reason() -> None:
    data = frame(20)
    data.loc[0, VARIATION] = np.nan  # missing key
    data.loc[1, "timestamp"] = pd.NaT  # missing key
    data.loc[2, VARIATION] = -150.0  # impossible: below -100 %
    data.loc[3, "Vibration_RMS_mm_s"] = -1.0  # impossible: negative vibration
    data.loc[4, "Motor_Temperature_C"] = np.inf
    data.loc[5, "Motor_Temperature_C"] = np.nan  # a dropout in a sensor: kept
    data = pd.concat([data, data.iloc[[10]]])  # a duplicate timestamp
    clean = clean_telemetry(data, machine_name="M", config=SMALL)

    assert clean.rows_in == 21
    assert clean.rows_dropped_missing_key == 2
    assert clean.rows_dropped_impossible == 3
    assert clean.impossible_by_column == {VARIATION: 1, "Vibration_RMS_mm_s": 1, "Motor_Temperature_C": 1}
    assert clean.rows_dropped_duplicate == 1
    assert len(clean.frame) == 15 and clean.frame["timestamp"].is_monotonic_increasing
    assert clean.frame["Motor_Temperature_C"].isna().sum() == 1


def test_non_numeric_columns_are_not_features_and_are_reported() -> None:
    data = frame()
    data["machine_name"] = "M"
    data["Operator_Note"] = "ok"
    data["Running"] = True
    clean = clean_telemetry(data, machine_name="M", config=SMALL)
    assert clean.sensor_columns == (VARIATION, "Vibration_RMS_mm_s", "Motor_Temperature_C")
    assert set(clean.columns_ignored) == {"Operator_Note", "Running"}


def test_too_few_valid_rows_says_how_many_and_why() -> None:
    data = frame(10)
    data.loc[:6, VARIATION] = np.nan
    with pytest.raises(InsufficientDataError, match=r"3 valid rows .* at least 5 .*7 with a missing"):
        clean_telemetry(data, machine_name="M", config=SMALL)


def test_naive_timestamps_are_taken_as_utc_and_every_error_is_a_training_data_error() -> None:
    data = frame()
    data["timestamp"] = data["timestamp"].dt.tz_localize(None).astype(str)
    clean = clean_telemetry(data, machine_name="M", config=SMALL)
    assert str(clean.frame["timestamp"].dt.tz) == "UTC"
    for error in (NoTrainingDataError, TelemetrySchemaError, InsufficientDataError):
        assert issubclass(error, TrainingDataError)
