"""Turning other people's tables into our data contract (README.md, "Data contract"), with no I/O.

Real datasets (NASA's C-MAPSS run-to-failure engines) and users' own CSV or parquet exports arrive with their
own column names, machine identifiers and clocks. Rather than a converter per source, one declarative
:class:`ColumnMapping` says where each part of the contract is found, so a new source is a set of options
(the ``modelforge-import`` CLI exposes them as flags), never a code edit:

* **machine**: a column of ids (``machine_column``; whole-number ids are zero-padded to ``machine_digits``
  and prefixed with ``machine_prefix``: unit 7 of FD001 becomes ``FD001-007``) or one constant
  ``machine_name`` for a single-machine file. Every name must match ``MACHINE_NAME_PATTERN``
  because it becomes an S3 partition value and a DynamoDB key.
* **time**: a ``timestamp_column`` (naive values are UTC; numbers are refused because epoch seconds and
  nanoseconds cannot be told apart), or a ``cycle_column`` for data counted in cycles: cycle ``c`` is
  ``start + (c - 1) * cycle_minutes``. The interval is the user's statement about the data, so it is required
  rather than guessed; ``keep_cycle`` keeps the cycle number itself as a numeric ``cycle`` column, because
  the machine's age is information the user has and the model may use.
* **sensors**: every other column, ``rename``-d to contract names and minus the ``drop``-ped ones. They must
  be numeric: a text column would be ignored by the trainer, so a sensor that was mistyped in an export
  would vanish silently; the importer names it instead.
* **failure events**: ``last_cycle_is_failure`` records one failure at each machine's last row (the
  run-to-failure convention of C-MAPSS training files); :func:`events_from_table` turns maintenance records
  into the same frame.

Every problem raises :class:`DataImportError` naming the column or machine and what is wrong, before anything
is written, so an import never leaves a half-converted fleet behind. Row numbers in messages count the
input's data rows from 0 (the header is not a row).
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

import numpy as np
import pandas as pd

from modelforge.domain.names import MACHINE_NAME_PATTERN
from modelforge.domain.units import MINUTE_NS
from modelforge.errors import DataImportError

__all__ = [
    "CMAPSS_COLUMNS",
    "EVENT_COLUMNS",
    "RESERVED_COLUMNS",
    "ColumnMapping",
    "ImportedData",
    "check_machine_name",
    "cmapss_mapping",
    "empty_events",
    "events_from_table",
    "normalize_events",
    "read_cmapss",
    "to_contract",
]

# unit, cycle, three operating settings, 21 sensors: the layout of every C-MAPSS train/test file.
CMAPSS_COLUMNS: tuple[str, ...] = (
    "unit", "cycle", "setting1", "setting2", "setting3", *(f"s{i}" for i in range(1, 22)),
)
EVENT_COLUMNS: tuple[str, ...] = ("machine_name", "timestamp", "component", "failure_type")
TIMESTAMP = "timestamp"
CYCLE = "cycle"
# Names a sensor may not take: they describe the row (and ``month`` is the telemetry's partition column).
RESERVED_COLUMNS = frozenset({TIMESTAMP, "machine_name", "month"})
DEFAULT_FAILURE_TYPE = "run_to_failure"
DEFAULT_START = datetime(2020, 1, 1, tzinfo=UTC)
_MACHINE_NAME = re.compile(MACHINE_NAME_PATTERN)


@dataclass(frozen=True)
class ColumnMapping:
    """Where each part of the contract is found in a source table (see the module docstring).

    Exactly one of ``machine_column``/``machine_name`` and one of ``timestamp_column``/``cycle_column`` is
    given; ``cycle_column`` needs ``cycle_minutes`` (> 0) and ``start`` (naive means UTC). ``rename`` and
    ``drop`` use the source's column names. ``machine_prefix`` and ``machine_digits`` apply to the ids of
    ``machine_column`` only; a constant ``machine_name`` is used as given.
    """

    machine_column: str | None = None
    machine_name: str | None = None
    machine_prefix: str = ""
    machine_digits: int = 0
    timestamp_column: str | None = None
    cycle_column: str | None = None
    cycle_minutes: float | None = None
    start: datetime | None = None
    rename: Mapping[str, str] = field(default_factory=dict)
    drop: tuple[str, ...] = ()
    keep_cycle: bool = True
    last_cycle_is_failure: bool = False
    failure_type: str | None = DEFAULT_FAILURE_TYPE
    component: str | None = None

    def __post_init__(self) -> None:
        # Checked here, not at import time, so a bad CLI flag fails before the input is even read.
        if (self.machine_column is None) == (self.machine_name is None):
            raise DataImportError("give exactly one of machine_column (a column of ids) or machine_name "
                                  "(one machine for the whole input)")
        if self.machine_name is not None:
            check_machine_name(self.machine_name, source="machine_name")
        if self.machine_digits < 0:
            raise DataImportError(f"machine_digits must be >= 0, got {self.machine_digits}")
        if (self.timestamp_column is None) == (self.cycle_column is None):
            raise DataImportError("give exactly one of timestamp_column or cycle_column (with cycle_minutes "
                                  "and start)")
        if self.cycle_column is not None:
            if self.cycle_minutes is None or self.start is None:
                raise DataImportError(f"cycle_column '{self.cycle_column}' needs cycle_minutes and start: the "
                                      "interval between cycles is a fact about the data, it is not guessed")
            if not np.isfinite(self.cycle_minutes) or self.cycle_minutes <= 0:
                raise DataImportError(f"cycle_minutes must be a positive number of minutes, got "
                                      f"{self.cycle_minutes}")
        elif self.cycle_minutes is not None or self.start is not None:
            raise DataImportError("cycle_minutes and start apply only with cycle_column")
        # A plain string would be iterated character by character.
        if isinstance(self.drop, str):
            object.__setattr__(self, "drop", (self.drop,))
        object.__setattr__(self, "drop", tuple(self.drop))
        object.__setattr__(self, "rename", dict(self.rename))


@dataclass
class ImportedData:
    """A source converted to the contract: per-machine telemetry and the recorded failure events.

    ``telemetry[name]``: ``timestamp`` (``datetime64[ns, UTC]``, sorted, unique) then float64 columns.
    ``events``: :data:`EVENT_COLUMNS`, sorted by machine then timestamp (see :func:`normalize_events`).
    """

    telemetry: dict[str, pd.DataFrame]
    events: pd.DataFrame = field(default_factory=lambda: empty_events())

    def summary(self) -> dict[str, Any]:
        """What an import would write, without writing it (the CLI's ``--dry-run`` and its final line)."""
        rows = sum(len(frame) for frame in self.telemetry.values())
        firsts = [frame[TIMESTAMP].iloc[0] for frame in self.telemetry.values() if len(frame)]
        lasts = [frame[TIMESTAMP].iloc[-1] for frame in self.telemetry.values() if len(frame)]
        columns: list[str] = []
        for frame in self.telemetry.values():
            columns += [str(c) for c in frame.columns if c not in columns]
        return {
            "machines": len(self.telemetry),
            "rows": rows,
            "events": len(self.events),
            "first_timestamp": min(firsts).isoformat() if firsts else None,
            "last_timestamp": max(lasts).isoformat() if lasts else None,
            "columns": columns,
        }


# ---------------------------------------------------------------- C-MAPSS


def read_cmapss(path_or_buffer: str | os.PathLike[str] | IO[Any]) -> pd.DataFrame:
    """Reads a C-MAPSS ``train_FD00x.txt``/``test_FD00x.txt``: space separated, trailing spaces, no header.

    Returns :data:`CMAPSS_COLUMNS` with integer ``unit`` and ``cycle`` and float readings. Anything else
    (another file passed by mistake, a truncated row) is refused here with the row count it found, because
    misaligned columns would otherwise import as plausible-looking but wrong sensors.
    """
    try:
        frame = pd.read_csv(path_or_buffer, sep=r"\s+", header=None)
    except pd.errors.EmptyDataError as error:
        raise DataImportError("the C-MAPSS input is empty") from error
    except pd.errors.ParserError as error:
        raise DataImportError(f"the C-MAPSS input is not {len(CMAPSS_COLUMNS)} space-separated columns per "
                              f"row: {error}") from error
    if frame.shape[1] != len(CMAPSS_COLUMNS):
        raise DataImportError(f"C-MAPSS rows have {len(CMAPSS_COLUMNS)} columns (unit, cycle, 3 settings, 21 "
                              f"sensors); this input has {frame.shape[1]}")
    frame.columns = list(CMAPSS_COLUMNS)
    for column in CMAPSS_COLUMNS:
        _require_numeric(frame, column, f"C-MAPSS column '{column}'")
    for column in ("unit", "cycle"):
        values = frame[column].to_numpy(dtype="float64", na_value=np.nan)
        if np.isnan(values).any() or not np.array_equal(values, np.round(values)):
            raise DataImportError(f"C-MAPSS column '{column}' must hold whole numbers")
        frame[column] = values.astype("int64")
    for column in CMAPSS_COLUMNS[2:]:
        frame[column] = frame[column].astype("float64")
    return frame


def cmapss_mapping(subset: str = "FD001", cycle_minutes: float = 10.0, start: datetime = DEFAULT_START,
                   last_cycle_is_failure: bool = True) -> ColumnMapping:
    """The mapping for a C-MAPSS file: one machine per engine (``FD001-001``...), cycles every
    ``cycle_minutes`` from ``start``. ``last_cycle_is_failure`` holds for training files (each engine runs to
    failure) and not for test files (cut off before failure): pass False for those."""
    check_machine_name(f"{subset}-001", source=f"subset '{subset}'")
    return ColumnMapping(machine_column="unit", machine_prefix=f"{subset}-", machine_digits=3,
                         cycle_column="cycle", cycle_minutes=cycle_minutes, start=start, keep_cycle=True,
                         last_cycle_is_failure=last_cycle_is_failure, failure_type=DEFAULT_FAILURE_TYPE)


# ---------------------------------------------------------------- the general mapping


def to_contract(frame: pd.DataFrame, mapping: ColumnMapping) -> ImportedData:
    """Converts ``frame`` as ``mapping`` says (see the module docstring); raises :class:`DataImportError`."""
    data = _input_table(frame)
    time_key = mapping.timestamp_column or mapping.cycle_column
    assert time_key is not None  # ColumnMapping.__post_init__ guarantees one of them
    keys = [k for k in (mapping.machine_column, time_key) if k is not None]
    _check_mapped_columns(data, mapping, keys)
    keep_cycle = mapping.cycle_column is not None and mapping.keep_cycle
    targets = _sensor_targets(data, mapping, keys, keep_cycle)

    names = _machine_names(data, mapping)
    if mapping.cycle_column is not None:
        assert mapping.cycle_minutes is not None and mapping.start is not None
        cycles = _require_numeric(data, mapping.cycle_column, f"cycle_column '{mapping.cycle_column}'")
        timestamps = _cycles_to_timestamps(cycles, mapping.cycle_column, mapping.cycle_minutes, mapping.start)
    else:
        timestamps = parse_timestamps(data[time_key], f"timestamp_column '{time_key}'")

    out = pd.DataFrame({"machine_name": names.to_numpy(), TIMESTAMP: timestamps.to_numpy()})
    out[TIMESTAMP] = out[TIMESTAMP].astype("datetime64[ns, UTC]")
    if keep_cycle:
        out[CYCLE] = data[time_key].astype("float64").to_numpy()
    for source, target in targets.items():
        out[target] = data[source].astype("float64").to_numpy()
    _check_one_row_per_time(out, data, time_key)
    return _per_machine(out, mapping)


def _input_table(frame: pd.DataFrame) -> pd.DataFrame:
    """The input with a plain row index (row numbers in messages) and text column names, all distinct."""
    if frame is None or len(frame) == 0:
        raise DataImportError("the input has no rows")
    data = frame.reset_index(drop=True)
    data.columns = [str(c) for c in data.columns]
    duplicated = sorted({c for c in data.columns if list(data.columns).count(c) > 1})
    if duplicated:
        raise DataImportError(f"the input has duplicate column name(s): {', '.join(duplicated)}")
    return data


def _check_mapped_columns(data: pd.DataFrame, mapping: ColumnMapping, keys: list[str]) -> None:
    """Every column the mapping names exists, and the machine and time keys are neither renamed nor dropped."""
    for option, column in (("machine_column", mapping.machine_column),
                           ("timestamp_column", mapping.timestamp_column), ("cycle_column", mapping.cycle_column)):
        if column is not None and column not in data.columns:
            raise DataImportError(f"{option} '{column}' is not a column of the input; found: "
                                  f"{_list(data.columns)}")
    for source in (*mapping.rename, *mapping.drop):
        if source not in data.columns:
            option = "rename" if source in mapping.rename else "drop"
            raise DataImportError(f"{option} names column '{source}', which is not in the input; found: "
                                  f"{_list(data.columns)}")
        if source in keys:
            raise DataImportError(f"column '{source}' is the machine or time key: it cannot be renamed or "
                                  "dropped")


def _sensor_targets(data: pd.DataFrame, mapping: ColumnMapping, keys: list[str],
                    keep_cycle: bool) -> dict[str, str]:
    """Source sensor column -> its contract name. Refuses reserved names, two columns becoming one name (the
    kept cycle counts as one), and non-numeric sensors (the trainer would ignore them silently)."""
    sensors = [c for c in data.columns if c not in keys and c not in mapping.drop]
    targets: dict[str, str] = {c: mapping.rename.get(c, c) for c in sensors}
    taken: dict[str, str] = {CYCLE: f"cycle_column '{mapping.cycle_column}'"} if keep_cycle else {}
    for source, target in targets.items():
        if target in RESERVED_COLUMNS:
            raise DataImportError(f"column '{source}' would become '{target}', a name the contract reserves; "
                                  f"rename or drop it")
        if target in taken:
            raise DataImportError(f"column '{source}' would become '{target}', which {taken[target]} already "
                                  f"becomes; rename or drop one of them")
        taken[target] = f"column '{source}'"
        _require_numeric(data, source, f"sensor column '{source}'")
    return targets


def _check_one_row_per_time(out: pd.DataFrame, data: pd.DataFrame, time_key: str) -> None:
    """Refuses two rows of one machine at one time: which reading is right cannot be known here."""
    repeated = out.duplicated(["machine_name", TIMESTAMP], keep=False).to_numpy()
    if repeated.any():
        first = int(np.flatnonzero(repeated)[0])
        machine = out["machine_name"].iat[first]
        value = _show(data[time_key].iat[first])
        count = int(((out["machine_name"] == machine) & (out[TIMESTAMP] == out[TIMESTAMP].iat[first])).sum())
        raise DataImportError(f"machine '{machine}' has {count} rows at {time_key} {value}; each machine needs "
                              f"one row per {time_key} ({int(repeated.sum())} rows repeat a machine and "
                              f"{time_key} in all)")


def _per_machine(out: pd.DataFrame, mapping: ColumnMapping) -> ImportedData:
    """The converted rows split by machine, in time order; one failure at each machine's last row when the
    data runs to failure."""
    out = out.sort_values(["machine_name", TIMESTAMP], kind="stable")
    telemetry = {str(name): group.drop(columns="machine_name").reset_index(drop=True)
                 for name, group in out.groupby("machine_name", sort=True)}
    events = empty_events()
    if mapping.last_cycle_is_failure:
        events = normalize_events(pd.DataFrame({
            "machine_name": list(telemetry),
            TIMESTAMP: [group[TIMESTAMP].iat[-1] for group in telemetry.values()],
            "component": [mapping.component] * len(telemetry),
            "failure_type": [mapping.failure_type] * len(telemetry),
        }))
    return ImportedData(telemetry=telemetry, events=events)


# ---------------------------------------------------------------- failure events


def empty_events() -> pd.DataFrame:
    """The events frame with no rows but the right columns and dtypes (see :func:`normalize_events`)."""
    return pd.DataFrame({
        "machine_name": pd.Series([], dtype=object),
        TIMESTAMP: pd.Series([], dtype="datetime64[ns, UTC]"),
        "component": pd.Series([], dtype=object),
        "failure_type": pd.Series([], dtype=object),
    })


def normalize_events(events: pd.DataFrame) -> pd.DataFrame:
    """Validates failure events and returns them in one shape whatever produced them (a mapping, a user's
    table, a parquet read back from S3): :data:`EVENT_COLUMNS` only; ``machine_name`` text matching the
    API's pattern; ``timestamp`` ``datetime64[ns, UTC]``; ``component``/``failure_type`` text or None.
    Sorted by machine then timestamp; exact duplicates are dropped (the same record exported twice)."""
    missing = [c for c in EVENT_COLUMNS if c not in events.columns]
    if missing:
        raise DataImportError(f"failure events lack column(s) {', '.join(missing)}; found: "
                              f"{_list(events.columns)}")
    if len(events) == 0:
        return empty_events()
    names = events["machine_name"]
    if names.isna().any():
        raise DataImportError(f"failure events: {int(names.isna().sum())} event(s) have no machine_name")
    names = names.astype(str)
    for name in names.unique():
        check_machine_name(name, source="failure events")
    data = pd.DataFrame({
        "machine_name": names.to_numpy(dtype=object),
        TIMESTAMP: parse_timestamps(events[TIMESTAMP], "failure events column 'timestamp'").to_numpy(),
        "component": _optional_text(events["component"]),
        "failure_type": _optional_text(events["failure_type"]),
    })
    data[TIMESTAMP] = data[TIMESTAMP].astype("datetime64[ns, UTC]")
    data = data.drop_duplicates().sort_values(["machine_name", TIMESTAMP], kind="stable")
    data = data.reset_index(drop=True)
    for column in ("machine_name", "component", "failure_type"):
        # Object dtype with None whatever pandas inferred (pandas 3 infers its own string dtype with NaN), so
        # events compare equal however they were produced.
        data[column] = pd.Series(_optional_text(data[column]), dtype=object)
    return data


def events_from_table(frame: pd.DataFrame, machine_column: str, timestamp_column: str,
                      component_column: str | None = None, failure_type_column: str | None = None, *,
                      machine_prefix: str = "", machine_digits: int = 0) -> pd.DataFrame:
    """Failure events from a user's maintenance records (one row per failure). ``machine_prefix`` and
    ``machine_digits`` name machines exactly as the telemetry's :class:`ColumnMapping` did, so the records of
    unit 7 land on ``FD001-007`` and not on a machine that does not exist."""
    if frame is None or len(frame) == 0:
        raise DataImportError("the failure-events input has no rows")
    for option, column in (("machine column", machine_column), ("timestamp column", timestamp_column),
                           ("component column", component_column),
                           ("failure_type column", failure_type_column)):
        if column is not None and column not in frame.columns:
            raise DataImportError(f"failure events: {option} '{column}' is not a column of the input; found: "
                                  f"{_list(frame.columns)}")
    mapping = ColumnMapping(machine_column=machine_column, machine_prefix=machine_prefix,
                            machine_digits=machine_digits, timestamp_column=timestamp_column)
    data = frame.reset_index(drop=True)
    rows = len(data)
    return normalize_events(pd.DataFrame({
        "machine_name": _machine_names(data, mapping).to_numpy(),
        TIMESTAMP: parse_timestamps(data[timestamp_column], f"failure events column '{timestamp_column}'"),
        "component": data[component_column] if component_column else [None] * rows,
        "failure_type": data[failure_type_column] if failure_type_column else [None] * rows,
    }))


# ---------------------------------------------------------------- checks shared by the above


def check_machine_name(name: str, *, source: str) -> str:
    """Refuses names the API would refuse: they become S3 partition values and DynamoDB keys."""
    if not isinstance(name, str) or not _MACHINE_NAME.fullmatch(name):
        raise DataImportError(f"{source}: machine name {name!r} is invalid: it must match {MACHINE_NAME_PATTERN} "
                              "(letters, digits, '_', '-', '.'; at most 64; not starting with a symbol)")
    return name


def parse_timestamps(column: pd.Series, what: str) -> pd.Series:
    """Datetimes or ISO strings to ``datetime64[ns, UTC]`` (naive means UTC); every value must parse."""
    if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        # The same refusal as the trainer's: 1.7e9 could be seconds or nanoseconds since 1970.
        raise DataImportError(f"{what} must hold datetimes or ISO 8601 text, found numbers ({column.dtype}); "
                              "for cycle counts use a cycle column with cycle_minutes and start")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            if pd.api.types.is_datetime64_any_dtype(column):
                parsed = pd.to_datetime(column, utc=True)
            else:
                # ISO 8601 per value: exports mix offsets and precisions, and pandas would otherwise take the
                # first value's format for all; ambiguous day/month orders are refused rather than guessed.
                parsed = pd.to_datetime(column, utc=True, format="ISO8601")
    except (ValueError, TypeError, OverflowError) as error:
        reason = (str(error).splitlines() or [type(error).__name__])[0].split(". You might want")[0]
        raise DataImportError(f"{what} has a value that is not an ISO 8601 datetime: {reason}") from error
    missing = parsed.isna().to_numpy()
    if missing.any():
        raise DataImportError(f"{what} has {int(missing.sum())} empty value(s) (first at row "
                              f"{int(np.flatnonzero(missing)[0])})")
    return parsed.astype("datetime64[ns, UTC]")


def _require_numeric(data: pd.DataFrame, column: str, what: str) -> pd.Series:
    series = data[column]
    if pd.api.types.is_bool_dtype(series):
        raise DataImportError(f"{what} is boolean; the trainer ignores non-numeric columns, so convert it to "
                              "0/1 in the source or drop it")
    if pd.api.types.is_numeric_dtype(series):
        return series
    coerced = pd.to_numeric(series, errors="coerce")
    bad = (coerced.isna() & series.notna()).to_numpy()
    example = f"; e.g. {_show(series.iat[int(np.flatnonzero(bad)[0])])!r} at row {int(np.flatnonzero(bad)[0])}" \
        if bad.any() else ""
    raise DataImportError(f"{what} is not numeric ({series.dtype}{example}); the trainer would ignore it, so "
                          "fix the source values or drop the column")


def _machine_names(data: pd.DataFrame, mapping: ColumnMapping) -> pd.Series:
    if mapping.machine_name is not None:
        return pd.Series([mapping.machine_name] * len(data), dtype=object)
    column = mapping.machine_column
    assert column is not None
    raw = data[column]
    absent = raw.isna().to_numpy()
    if absent.any():
        raise DataImportError(f"machine_column '{column}' is empty in {int(absent.sum())} row(s) (first at row "
                              f"{int(np.flatnonzero(absent)[0])})")
    names: dict[Any, str] = {}
    for value in raw.unique():
        names[value] = _machine_name(value, column, mapping.machine_prefix, mapping.machine_digits)
    return raw.map(names).astype(object)


def _machine_name(value: Any, column: str, prefix: str, digits: int) -> str:
    if isinstance(value, bool | np.bool_):
        raise DataImportError(f"machine_column '{column}' holds booleans, not machine ids")
    if isinstance(value, int | float | np.integer | np.floating):
        if not np.isfinite(value) or float(value) != round(float(value)):
            raise DataImportError(f"machine_column '{column}': id {_show(value)} is not a whole number or text")
        ident = f"{int(value):0{digits}d}"
    else:
        ident = str(value).strip()
        if digits and ident.isdigit():
            ident = ident.zfill(digits)
    return check_machine_name(f"{prefix}{ident}", source=f"machine_column '{column}' value {_show(value)!r}")


def _cycles_to_timestamps(cycles: pd.Series, column: str, cycle_minutes: float, start: datetime) -> pd.Series:
    values = cycles.to_numpy(dtype="float64", na_value=np.nan)
    bad = ~np.isfinite(values)
    if bad.any():
        raise DataImportError(f"cycle_column '{column}' has {int(bad.sum())} empty or infinite value(s) (first at "
                              f"row {int(np.flatnonzero(bad)[0])})")
    origin = pd.Timestamp(start)
    origin = origin.tz_localize("UTC") if origin.tzinfo is None else origin.tz_convert("UTC")
    # Integer nanoseconds, rounded once: float minutes would drift by a few ns over thousands of cycles.
    offsets = np.round((values - 1.0) * cycle_minutes * MINUTE_NS)
    limit = float(np.iinfo(np.int64).max) / 2
    if np.abs(offsets).max() >= limit:
        raise DataImportError(f"cycle_column '{column}': cycles up to {values.max():g} at {cycle_minutes} minutes "
                              "each fall outside the representable dates")
    try:
        stamps = origin + pd.to_timedelta(offsets.astype("int64"), unit="ns")
    except (OverflowError, pd.errors.OutOfBoundsDatetime) as error:
        raise DataImportError(f"cycle_column '{column}': the mapped dates fall outside the representable "
                              f"range: {error}") from error
    return pd.Series(stamps, dtype="datetime64[ns, UTC]")


def _optional_text(series: pd.Series | Iterable[Any]) -> np.ndarray:
    values = pd.Series(series, dtype=object)
    return np.array([None if _is_missing(v) else str(v) for v in values], dtype=object)


def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and np.isnan(value)


def _show(value: Any) -> Any:
    """numpy scalars as plain Python values, so messages read ``1.5`` rather than ``np.float64(1.5)``."""
    return value.item() if isinstance(value, np.generic) else value


def _list(columns: Iterable[Any], limit: int = 30) -> str:
    names = [str(c) for c in columns]
    shown = ", ".join(names[:limit])
    return f"{shown}, ... ({len(names)} in all)" if len(names) > limit else (shown or "no columns")
