"""The processed-telemetry contract as the training pipeline sees it, and the checks that enforce it.

Required: ``timestamp`` (datetime, UTC) and ``Eng_RPM_variation_percentage`` (float, % deviation of engine
speed from nominal; a drop below -threshold is a failure event). Every other numeric column is a sensor and
becomes a model feature. Rows with a missing timestamp or RPM variation, or physically impossible values, are
dropped and counted, never kept silently.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from modelforge.errors import InsufficientDataError, NoTrainingDataError, TelemetrySchemaError

TIMESTAMP = "timestamp"
RPM_VARIATION = "Eng_RPM_variation_percentage"
REQUIRED_COLUMNS = (TIMESTAMP, RPM_VARIATION)
# Columns that describe the row rather than the machine's state.
NON_FEATURE_COLUMNS = frozenset({TIMESTAMP, "machine_name", "month"})
# A percentage deviation below -100 % would be negative speed; far above is a sensor fault.
RPM_VARIATION_BOUNDS = (-100.0, 100.0)
MIN_ROWS = 500


@dataclass(frozen=True)
class CleanTelemetry:
    frame: pd.DataFrame
    sensor_columns: tuple[str, ...]
    rows_in: int
    rows_dropped_missing_key: int
    rows_dropped_impossible: int
    rows_dropped_duplicate: int


def clean_telemetry(frame: pd.DataFrame, *, machine_name: str, min_rows: int = MIN_ROWS) -> CleanTelemetry:
    if frame.empty:
        raise NoTrainingDataError(f"machine '{machine_name}' has no processed telemetry in the requested range")
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise TelemetrySchemaError(f"telemetry for '{machine_name}' lacks required column(s): {', '.join(missing)}")

    data = frame.copy()
    try:
        data[TIMESTAMP] = pd.to_datetime(data[TIMESTAMP], utc=True)
    except (ValueError, TypeError) as error:
        raise TelemetrySchemaError(f"column '{TIMESTAMP}' is not a datetime: {error}") from error
    if not pd.api.types.is_numeric_dtype(data[RPM_VARIATION]):
        raise TelemetrySchemaError(f"column '{RPM_VARIATION}' must be numeric, found {data[RPM_VARIATION].dtype}")

    sensors = tuple(c for c in data.columns
                    if c not in NON_FEATURE_COLUMNS and pd.api.types.is_numeric_dtype(data[c])
                    and not pd.api.types.is_bool_dtype(data[c]))
    rows_in = len(data)
    key_missing = data[TIMESTAMP].isna() | data[RPM_VARIATION].isna()
    low, high = RPM_VARIATION_BOUNDS
    impossible = ~key_missing & ~data[RPM_VARIATION].between(low, high)
    sensor_values = data[list(sensors)].to_numpy(dtype="float64", na_value=np.nan)
    impossible |= pd.Series(np.isinf(sensor_values).any(axis=1), index=data.index)
    data = data[~key_missing & ~impossible]
    before_dedup = len(data)
    data = data.sort_values(TIMESTAMP, kind="stable").drop_duplicates(TIMESTAMP, keep="last")
    if len(data) < min_rows:
        raise InsufficientDataError(f"machine '{machine_name}' has {len(data)} usable rows in the range "
                                    f"(at least {min_rows} needed)")
    return CleanTelemetry(
        frame=data.reset_index(drop=True), sensor_columns=sensors, rows_in=rows_in,
        rows_dropped_missing_key=int(key_missing.sum()), rows_dropped_impossible=int(impossible.sum()),
        rows_dropped_duplicate=before_dedup - len(data),
    )
