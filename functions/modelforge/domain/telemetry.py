"""The processed-telemetry contract as the training pipeline sees it, and the checks that enforce it.

Required columns
    ``timestamp``: datetimes (or ISO strings); naive values are taken as UTC. Numbers are refused (epoch
    seconds and nanoseconds are indistinguishable).
    ``Eng_RPM_variation_percentage``: numeric, the % deviation of engine speed from nominal; a drop to or below
    ``-drop_threshold_pct`` is a failure event (see :mod:`modelforge.domain.labeling`). Required only when
    the job's failure events come from RPM drops; with recorded failure events only ``timestamp`` is.
Every other numeric (non-boolean) column is a sensor and becomes a model feature. Columns that describe the
row (``machine_name``, ``month``) and non-numeric columns are not features; the latter are listed in
``CleanTelemetry.columns_ignored`` so a wrongly typed sensor does not vanish silently.

Errors, each a named :class:`~modelforge.errors.TrainingDataError` whose message reaches ``GET /status``:
    * :class:`NoTrainingDataError`: no rows at all in the requested range;
    * :class:`TelemetrySchemaError`: a required column is missing or has the wrong type;
    * :class:`InsufficientDataError`: fewer than ``min_rows`` valid rows remain after cleaning.

Invalid rows are dropped and counted by reason, never kept silently:
    * a missing timestamp or RPM variation (the key columns);
    * an impossible value: RPM variation outside [-100, 100] %, an infinite sensor reading, or a known sensor
      outside its physical range (``SENSOR_BOUNDS``: negative speeds, flows, pressures, currents, vibration;
      temperatures outside [-60, 250] degC);
    * duplicate timestamps (the last reading wins).
Missing values in other sensors are kept: XGBoost treats them as missing, and one dropped-out reading should
not cost the whole row.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from modelforge.errors import InsufficientDataError, NoTrainingDataError, TelemetrySchemaError

TIMESTAMP = "timestamp"
RPM_VARIATION = "Eng_RPM_variation_percentage"
REQUIRED_COLUMNS = (TIMESTAMP, RPM_VARIATION)
# Columns that describe the row rather than the machine's state.
NON_FEATURE_COLUMNS = frozenset({TIMESTAMP, "machine_name", "month", "motor_pump", "id"})
# A percentage deviation below -100 % would be negative speed; far above is a sensor fault.
RPM_VARIATION_BOUNDS = (-100.0, 100.0)
# Physical ranges of the sensors we know; a reading outside is a sensor fault, not a machine state.
SENSOR_BOUNDS: dict[str, tuple[float, float]] = {
    "Eng_RPM": (0.0, 20_000.0),
    "Motor_Temperature_C": (-60.0, 250.0),
    "Vibration_RMS_mm_s": (0.0, 1_000.0),
    "Discharge_Pressure_bar": (0.0, 1_000.0),
    "Flow_m3_h": (0.0, 100_000.0),
    "Motor_Current_A": (0.0, 10_000.0),
}
MIN_ROWS = 500


@dataclass(frozen=True)
class ValidationConfig:
    min_rows: int = MIN_ROWS
    sensor_bounds: dict[str, tuple[float, float]] = field(default_factory=lambda: dict(SENSOR_BOUNDS))


@dataclass(frozen=True)
class CleanTelemetry:
    frame: pd.DataFrame  # valid rows, sorted by timestamp, unique timestamps, UTC
    sensor_columns: tuple[str, ...]
    rows_in: int
    rows_dropped_missing_key: int
    rows_dropped_impossible: int
    rows_dropped_duplicate: int
    impossible_by_column: dict[str, int]
    columns_ignored: dict[str, str]  # non-numeric columns that are not features: name -> dtype

    def counts(self) -> dict[str, object]:
        return {
            "rows_in": self.rows_in,
            "rows_valid": len(self.frame),
            "rows_dropped_missing_key": self.rows_dropped_missing_key,
            "rows_dropped_impossible": self.rows_dropped_impossible,
            "rows_dropped_duplicate": self.rows_dropped_duplicate,
            "impossible_by_column": dict(self.impossible_by_column),
            "columns_ignored": dict(self.columns_ignored),
        }


def clean_telemetry(frame: pd.DataFrame, *, machine_name: str, config: ValidationConfig | None = None,
                    require_rpm_variation: bool = True) -> CleanTelemetry:
    """Validates ``frame`` against the contract and returns its valid rows (see the module docstring).

    ``require_rpm_variation=False`` when failures come from recorded events: only ``timestamp`` is required.
    """
    config = config or ValidationConfig()
    frame, added_variation = _with_required_columns(frame, machine_name, require_rpm_variation)
    timestamps = _parse_timestamps(frame[TIMESTAMP], machine_name)
    variation = frame[RPM_VARIATION]
    if not pd.api.types.is_numeric_dtype(variation) or pd.api.types.is_bool_dtype(variation):
        raise TelemetrySchemaError(
            f"column '{RPM_VARIATION}' of '{machine_name}' must be numeric (percent), found {variation.dtype}")
    sensors, ignored = _sensor_columns(frame, added_variation)

    rows_in = len(frame)
    key_missing = timestamps.isna().to_numpy().copy()
    if require_rpm_variation:
        key_missing |= variation.isna().to_numpy()
    impossible, by_column = _impossible_values(frame, sensors, key_missing, config)
    data, duplicates = _valid_rows(frame, timestamps, ~key_missing & ~impossible, sensors)
    if len(data) < config.min_rows:
        raise InsufficientDataError(
            f"machine '{machine_name}' has {len(data)} valid rows in the range, at least {config.min_rows} are "
            f"needed ({rows_in} read; dropped: {int(key_missing.sum())} with a missing timestamp or "
            f"{RPM_VARIATION}, {int(impossible.sum())} with impossible values, "
            f"{duplicates} duplicate timestamps)")
    return CleanTelemetry(
        frame=data, sensor_columns=tuple(sensors), rows_in=rows_in,
        rows_dropped_missing_key=int(key_missing.sum()), rows_dropped_impossible=int(impossible.sum()),
        rows_dropped_duplicate=duplicates, impossible_by_column=by_column, columns_ignored=ignored,
    )


def _with_required_columns(frame: pd.DataFrame, machine_name: str,
                           require_rpm_variation: bool) -> tuple[pd.DataFrame, bool]:
    """``frame`` with every required column, and whether the RPM variation was added (recorded failures only
    need ``timestamp``: a neutral variation column keeps one code path for both failure sources)."""
    if frame is None or len(frame) == 0:
        raise NoTrainingDataError(f"machine '{machine_name}' has no processed telemetry in the requested range")
    added_variation = not require_rpm_variation and RPM_VARIATION not in frame.columns
    if added_variation:
        frame = frame.assign(**{RPM_VARIATION: 0.0})
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise TelemetrySchemaError(
            f"telemetry for '{machine_name}' lacks required column(s) {', '.join(missing)}; "
            f"found: {', '.join(map(str, frame.columns)) or 'no columns'}")
    return frame, added_variation


def _sensor_columns(frame: pd.DataFrame, added_variation: bool) -> tuple[list[str], dict[str, str]]:
    """The sensors (numeric, non-boolean, not describing the row), and the non-numeric columns ignored, so that
    a wrongly typed sensor is named rather than silently lost. An added neutral variation is no sensor."""
    sensors: list[str] = []
    ignored: dict[str, str] = {}
    for column in frame.columns:
        if column in NON_FEATURE_COLUMNS:
            continue
        dtype = frame[column].dtype
        if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
            sensors.append(str(column))
        else:
            ignored[str(column)] = str(dtype)
    if added_variation:
        sensors.remove(RPM_VARIATION)
    return sensors, ignored


def _impossible_values(frame: pd.DataFrame, sensors: list[str], key_missing: np.ndarray,
                       config: ValidationConfig) -> tuple[np.ndarray, dict[str, int]]:
    """Rows with an impossible reading, and their count per column. Rows already dropped for a missing key are
    not counted again, so that every dropped row has one reason."""
    impossible = np.zeros(len(frame), dtype=bool)
    by_column: dict[str, int] = {}
    for column, bad in impossible_masks(frame, sensors, key_missing, config).items():
        by_column[column] = int(bad.sum())
        impossible |= bad
    return impossible, by_column


def impossible_masks(frame: pd.DataFrame, sensors: list[str], key_missing: np.ndarray,
                     config: ValidationConfig) -> dict[str, np.ndarray]:
    """Per column with any, the rows whose reading in it is impossible (rows with a missing key left out), the
    variation first, then the sensors in order: the one rule, for one machine or a pooled fleet."""
    masks: dict[str, np.ndarray] = {}

    def flag(column: str, bad: np.ndarray) -> None:
        bad = bad & ~key_missing
        if bad.any():
            masks[column] = bad

    low, high = RPM_VARIATION_BOUNDS
    values = frame[RPM_VARIATION].to_numpy(dtype="float64", na_value=np.nan)
    flag(RPM_VARIATION, ~np.isnan(values) & ((values < low) | (values > high)))
    for column in sensors:
        if column == RPM_VARIATION:
            continue
        values = frame[column].to_numpy(dtype="float64", na_value=np.nan)
        bad = np.isinf(values)
        if column in config.sensor_bounds:
            lo, hi = config.sensor_bounds[column]
            with np.errstate(invalid="ignore"):
                bad |= (values < lo) | (values > hi)
        flag(column, bad)
    return masks


def _valid_rows(frame: pd.DataFrame, timestamps: pd.Series, keep: np.ndarray,
                sensors: list[str]) -> tuple[pd.DataFrame, int]:
    """The kept rows' timestamp and sensors, in time order, one row per timestamp (the last reading wins);
    and how many duplicates that dropped."""
    data = frame.loc[keep, [TIMESTAMP, *sensors]].copy()
    data[TIMESTAMP] = timestamps[keep]
    data = data.sort_values(TIMESTAMP, kind="stable")
    before_dedup = len(data)
    data = data.drop_duplicates(TIMESTAMP, keep="last").reset_index(drop=True)
    return data, before_dedup - len(data)


def _parse_timestamps(column: pd.Series, machine_name: str) -> pd.Series:
    if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        # Numbers would parse as nanoseconds since 1970: silently wrong dates rather than an error.
        raise TelemetrySchemaError(
            f"column '{TIMESTAMP}' of '{machine_name}' must hold datetimes, found {column.dtype}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "could not infer format": parsed one by one
            parsed = pd.to_datetime(column, utc=True)
    except (ValueError, TypeError, OverflowError) as error:
        raise TelemetrySchemaError(
            f"column '{TIMESTAMP}' of '{machine_name}' is not a datetime column ({column.dtype}): {error}") from error
    return parsed.astype("datetime64[ns, UTC]")
