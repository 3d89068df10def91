""":func:`~modelforge.domain.telemetry.clean_telemetry` for a whole fleet in one pass (issue 15, item 3).

A fleet of a thousand small machines spent most of its cleaning in pandas' per-call overhead, a few dozen
operations per machine. :func:`clean_fleet` pools the machines' frames once and runs each check over the
pooled rows, with the machine as a group key wherever rows are compared (sorting and duplicate timestamps), so
no machine's rows meet another's; then it cuts the result back into one :class:`CleanTelemetry` per machine,
equal to what ``clean_telemetry`` returns for it (same rows, columns, dtypes, counts and errors).

It takes the fast path only where that equality is plain: every machine has rows, the same columns with the
same dtypes, and timestamps that are already datetimes (nothing left to parse, so no parse error can name
one machine rather than another). Anything else returns ``None``, and the caller cleans machine by machine.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from modelforge.domain.telemetry import (
    RPM_VARIATION,
    TIMESTAMP,
    CleanTelemetry,
    ValidationConfig,
    _parse_timestamps,
    _sensor_columns,
    _with_required_columns,
    impossible_masks,
)
from modelforge.errors import InsufficientDataError, TelemetrySchemaError

__all__ = ["clean_fleet"]


def clean_fleet(frames: Mapping[str, pd.DataFrame], *, config: ValidationConfig,
                require_rpm_variation: bool = True) -> dict[str, CleanTelemetry] | None:
    """Every machine's :class:`CleanTelemetry`, in the order of ``frames``; ``None`` when the frames are
    not uniform (see the module docstring)."""
    if not _uniform(frames):
        return None
    names = list(frames)
    first = names[0]
    # Identical columns and dtypes: every per-machine schema check would pass or fail alike, so it is asked
    # once, of the first machine, which is the one the machine-by-machine loop would name.
    frame, added_variation = _with_required_columns(frames[first], first, require_rpm_variation)
    variation = frame[RPM_VARIATION]
    if not pd.api.types.is_numeric_dtype(variation) or pd.api.types.is_bool_dtype(variation):
        raise TelemetrySchemaError(
            f"column '{RPM_VARIATION}' of '{first}' must be numeric (percent), found {variation.dtype}")
    sensors, ignored = _sensor_columns(frame, added_variation)
    pooled = pd.concat(list(frames.values()), ignore_index=True)
    if added_variation:
        pooled[RPM_VARIATION] = 0.0
    lengths = np.array([len(f) for f in frames.values()])
    group = np.repeat(np.arange(len(names)), lengths)
    timestamps = _parse_timestamps(pooled[TIMESTAMP], first)
    key_missing = timestamps.isna().to_numpy().copy()
    if require_rpm_variation:
        key_missing |= pooled[RPM_VARIATION].isna().to_numpy()
    masks = impossible_masks(pooled, sensors, key_missing, config)
    impossible = np.zeros(len(pooled), dtype=bool)
    for bad in masks.values():
        impossible |= bad
    by_column = _impossible_by_machine(masks, group, len(names))
    data, bounds, duplicates = _valid_rows(pooled, timestamps, ~key_missing & ~impossible, sensors, group,
                                           len(names))
    missing_counts = np.bincount(group[key_missing], minlength=len(names))
    impossible_counts = np.bincount(group[impossible], minlength=len(names))
    cleaned = {}
    for i, name in enumerate(names):
        rows = bounds[i + 1] - bounds[i]
        if rows < config.min_rows:
            raise InsufficientDataError(
                f"machine '{name}' has {rows} valid rows in the range, at least {config.min_rows} are "
                f"needed ({lengths[i]} read; dropped: {missing_counts[i]} with a missing timestamp or "
                f"{RPM_VARIATION}, {impossible_counts[i]} with impossible values, "
                f"{duplicates[i]} duplicate timestamps)")
        cleaned[name] = CleanTelemetry(
            frame=data.iloc[bounds[i]:bounds[i + 1]].reset_index(drop=True), sensor_columns=tuple(sensors),
            rows_in=int(lengths[i]), rows_dropped_missing_key=int(missing_counts[i]),
            rows_dropped_impossible=int(impossible_counts[i]), rows_dropped_duplicate=int(duplicates[i]),
            impossible_by_column=by_column[i], columns_ignored=dict(ignored))
    return cleaned


def _uniform(frames: Mapping[str, pd.DataFrame]) -> bool:
    """More than one machine, each with rows, the same columns and dtypes, and datetime timestamps."""
    if len(frames) < 2:
        return False
    first = next(iter(frames.values()))
    if first is None or TIMESTAMP not in first.columns:
        return False
    if not isinstance(first[TIMESTAMP].dtype, pd.DatetimeTZDtype):
        return False
    # Dtypes by name: each machine's partition column is a categorical of its own name (a different dtype
    # per machine), and a categorical is never a sensor, only an ignored column named "category" either way.
    signature = _signature(first)
    return all(f is not None and len(f) > 0 and _signature(f) == signature for f in frames.values())


def _signature(frame: pd.DataFrame) -> list[tuple[str, str]]:
    return [(str(column), str(dtype)) for column, dtype in frame.dtypes.items()]


def _impossible_by_machine(masks: Mapping[str, np.ndarray], group: np.ndarray,
                           machines: int) -> list[dict[str, int]]:
    """Each machine's impossible readings per column, in the order ``impossible_masks`` gives the columns,
    a column only where the machine has some (as ``clean_telemetry`` reports one machine's)."""
    counts: list[dict[str, int]] = [{} for _ in range(machines)]
    for column, bad in masks.items():
        per_machine = np.bincount(group[bad], minlength=machines)
        for i in np.flatnonzero(per_machine):
            counts[i][column] = int(per_machine[i])
    return counts


def _valid_rows(pooled: pd.DataFrame, timestamps: pd.Series, keep: np.ndarray, sensors: list[str],
                group: np.ndarray, machines: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The kept rows, sorted by machine then time (stable, as ``sort_values(kind="stable")`` sorts one
    machine), one row per machine and timestamp (the last reading wins); each machine's row bounds in it,
    and the duplicates dropped per machine."""
    data = pooled.loc[keep, [TIMESTAMP, *sensors]].copy()
    data[TIMESTAMP] = timestamps[keep]
    kept_group = group[keep]
    t = data[TIMESTAMP].array.asi8
    order = np.lexsort((t, kept_group))  # stable: equal (machine, time) keep their original order
    data, kept_group, t = data.iloc[order], kept_group[order], t[order]
    # A row is a duplicate when the next row has the same machine and timestamp: keep the last of each run.
    later_twin = np.r_[(kept_group[1:] == kept_group[:-1]) & (t[1:] == t[:-1]), False]
    duplicates = np.bincount(kept_group[later_twin], minlength=machines)
    data, kept_group = data[~later_twin], kept_group[~later_twin]
    bounds = np.r_[0, np.cumsum(np.bincount(kept_group, minlength=machines))]
    return data.reset_index(drop=True), bounds, duplicates
