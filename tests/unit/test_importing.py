"""The importer's pure conversion (modelforge.domain.importing): C-MAPSS parsing, cycle -> timestamp mapping,
recorded failures, the column-mapping options, and an error that names the culprit for each bad input.

tests/fixtures/cmapss_fd001_sample.txt holds engines 1-3 of train_FD001.txt, copied verbatim from NASA's
C-MAPSS data set (public domain: A. Saxena and K. Goebel, "Turbofan Engine Degradation Simulation Data Set",
NASA Prognostics Data Repository, NASA Ames Research Center, 2008).
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelforge.domain.importing import (
    CMAPSS_COLUMNS,
    EVENT_COLUMNS,
    ColumnMapping,
    cmapss_mapping,
    empty_events,
    events_from_table,
    normalize_events,
    read_cmapss,
    to_contract,
)
from modelforge.errors import DataImportError

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "cmapss_fd001_sample.txt"
START = datetime(2020, 1, 1, tzinfo=UTC)

# Two engines, two and three cycles; each row ends with the two trailing spaces of the real files.
SAMPLE = "".join(f"{row}  \n" for row in [
    "1 1 -0.0007 -0.0004 100.0 518.67 641.82 1589.70 1400.60 14.62 21.61 554.36 2388.06 9046.19 1.30 "
    "47.47 521.66 2388.02 8138.62 8.4195 0.03 392 2388 100.00 39.06 23.4190",
    "1 2 0.0019 -0.0003 100.0 518.67 642.15 1591.82 1403.14 14.62 21.61 553.75 2388.04 9044.07 1.30 "
    "47.49 522.28 2388.07 8131.49 8.4318 0.03 392 2388 100.00 39.00 23.4236",
    "7 1 -0.0043 0.0003 100.0 518.67 642.35 1587.99 1404.20 14.62 21.61 554.26 2388.08 9052.94 1.30 "
    "47.27 522.42 2388.03 8133.23 8.4178 0.03 390 2388 100.00 38.95 23.3442",
    "7 2 0.0007 0.0000 100.0 518.67 642.37 1582.79 1401.87 14.62 21.61 554.45 2388.11 9049.48 1.30 47.13 "
    "522.86 2388.08 8133.83 8.3682 0.03 392 2388 100.00 38.88 23.3739",
    "7 3 -0.0019 -0.0002 100.0 518.67 642.10 1582.85 1406.22 14.62 21.61 554.00 2388.06 9055.15 1.30 "
    "47.28 522.19 2388.04 8133.80 8.4294 0.03 393 2388 100.00 38.90 23.4044",
])


def _sample() -> pd.DataFrame:
    return read_cmapss(io.StringIO(SAMPLE))


def _pumps() -> pd.DataFrame:
    """A user's export: text machine ids, ISO timestamps, a note column that is not a sensor."""
    return pd.DataFrame({
        "pump": ["P1", "P1", "P2"],
        "read_at": ["2025-03-01T00:00:00", "2025-03-01T00:01:00", "2025-03-01T00:00:30+01:00"],
        "temp_c": [60.5, 61.0, 59.0],
        "vib": [1.5, 1.6, 2.0],
        "note": ["ok", "ok", "check"],
    })


# ---------------------------------------------------------------- C-MAPSS


def test_read_cmapss_parses_space_separated_rows_with_trailing_spaces() -> None:
    frame = _sample()
    assert list(frame.columns) == list(CMAPSS_COLUMNS)
    assert len(CMAPSS_COLUMNS) == 26
    assert frame.shape == (5, 26)
    assert frame["unit"].tolist() == [1, 1, 7, 7, 7]
    assert frame["unit"].dtype == "int64" and frame["cycle"].dtype == "int64"
    assert frame["s21"].iloc[0] == pytest.approx(23.4190)
    assert all(frame[c].dtype == "float64" for c in CMAPSS_COLUMNS[2:])


def test_read_cmapss_reads_the_fixture_file() -> None:
    frame = read_cmapss(FIXTURE)
    assert sorted(frame["unit"].unique()) == [1, 2, 3]
    assert frame.groupby("unit")["cycle"].max().tolist() == [192, 287, 179]


def test_read_cmapss_refuses_another_column_count() -> None:
    with pytest.raises(DataImportError, match=r"26 columns.*has 25"):
        read_cmapss(io.StringIO("1 1 " + " ".join(["1.0"] * 23) + "\n"))


def test_read_cmapss_refuses_empty_input() -> None:
    with pytest.raises(DataImportError, match="empty"):
        read_cmapss(io.StringIO(""))


def test_cmapss_mapping_names_engines_and_maps_cycles_to_timestamps() -> None:
    imported = to_contract(_sample(), cmapss_mapping("FD001", cycle_minutes=10.0, start=START))
    assert list(imported.telemetry) == ["FD001-001", "FD001-007"]
    engine = imported.telemetry["FD001-007"]
    assert list(engine.columns) == ["timestamp", "cycle", *CMAPSS_COLUMNS[2:]]
    assert str(engine["timestamp"].dtype) == "datetime64[ns, UTC]"
    # cycle c -> start + (c - 1) * 10 minutes
    assert engine["timestamp"].tolist() == [pd.Timestamp("2020-01-01T00:00Z"), pd.Timestamp("2020-01-01T00:10Z"),
                                            pd.Timestamp("2020-01-01T00:20Z")]
    assert engine["cycle"].tolist() == [1.0, 2.0, 3.0]
    assert engine["s9"].tolist() == pytest.approx([9052.94, 9049.48, 9055.15])


def test_the_last_cycle_of_each_engine_is_one_failure_event() -> None:
    imported = to_contract(_sample(), cmapss_mapping(start=START))
    events = imported.events
    assert list(events.columns) == list(EVENT_COLUMNS)
    assert events["machine_name"].tolist() == ["FD001-001", "FD001-007"]
    assert events["timestamp"].tolist() == [pd.Timestamp("2020-01-01T00:10Z"), pd.Timestamp("2020-01-01T00:20Z")]
    assert events["failure_type"].tolist() == ["run_to_failure"] * 2
    assert events["component"].tolist() == [None, None]
    for name, frame in imported.telemetry.items():
        assert frame["timestamp"].iloc[-1] == events.loc[events["machine_name"] == name, "timestamp"].item()


def test_test_files_import_without_failure_events() -> None:
    imported = to_contract(_sample(), cmapss_mapping(last_cycle_is_failure=False))
    assert imported.events.empty and list(imported.events.columns) == list(EVENT_COLUMNS)


def test_a_stated_interval_and_start_place_the_cycles() -> None:
    start = datetime(2021, 6, 1, 12, 0)  # naive: taken as UTC
    imported = to_contract(_sample(), cmapss_mapping("FD003", cycle_minutes=0.5, start=start))
    engine = imported.telemetry["FD003-001"]
    assert engine["timestamp"].tolist() == [pd.Timestamp("2021-06-01T12:00:00Z"),
                                            pd.Timestamp("2021-06-01T12:00:30Z")]


def test_the_fixture_imports_every_row() -> None:
    imported = to_contract(read_cmapss(FIXTURE), cmapss_mapping())
    summary = imported.summary()
    assert summary["machines"] == 3 and summary["rows"] == 192 + 287 + 179 and summary["events"] == 3
    assert summary["first_timestamp"] == "2020-01-01T00:00:00+00:00"
    assert summary["last_timestamp"] == (pd.Timestamp("2020-01-01T00:00Z") + pd.Timedelta(minutes=286 * 10)).isoformat()
    for frame in imported.telemetry.values():
        assert frame["timestamp"].is_monotonic_increasing and frame["timestamp"].is_unique


def test_cmapss_mapping_refuses_a_subset_that_makes_invalid_names() -> None:
    with pytest.raises(DataImportError, match=r"subset 'FD 001'.*invalid"):
        cmapss_mapping("FD 001")


# ---------------------------------------------------------------- the general mapping


def test_a_users_table_with_timestamps_renames_and_drops() -> None:
    mapping = ColumnMapping(machine_column="pump", timestamp_column="read_at", machine_prefix="site-a.",
                            rename={"temp_c": "Motor_Temperature_C", "vib": "Vibration_RMS_mm_s"}, drop=("note",))
    imported = to_contract(_pumps(), mapping)
    assert list(imported.telemetry) == ["site-a.P1", "site-a.P2"]
    p2 = imported.telemetry["site-a.P2"]
    assert list(p2.columns) == ["timestamp", "Motor_Temperature_C", "Vibration_RMS_mm_s"]
    assert p2["timestamp"].item() == pd.Timestamp("2025-02-28T23:00:30Z")  # +01:00 converted to UTC
    assert imported.telemetry["site-a.P1"]["timestamp"].iloc[0] == pd.Timestamp("2025-03-01T00:00Z")  # naive: UTC
    assert imported.events.empty


def test_rows_are_sorted_per_machine() -> None:
    frame = _pumps().iloc[::-1]
    imported = to_contract(frame, ColumnMapping(machine_column="pump", timestamp_column="read_at", drop=("note",)))
    assert imported.telemetry["P1"]["temp_c"].tolist() == [60.5, 61.0]


def test_a_constant_machine_name_and_last_row_failure_with_component() -> None:
    frame = _pumps().drop(columns=["pump", "note"]).iloc[:2]
    mapping = ColumnMapping(machine_name="PUMP-9", timestamp_column="read_at", last_cycle_is_failure=True,
                            failure_type="seal_leak", component="seal")
    imported = to_contract(frame, mapping)
    assert list(imported.telemetry) == ["PUMP-9"]
    assert imported.events.to_dict("records") == [{
        "machine_name": "PUMP-9", "timestamp": pd.Timestamp("2025-03-01T00:01Z"), "component": "seal",
        "failure_type": "seal_leak"}]


def test_integer_ids_are_zero_padded_text_digits_too() -> None:
    frame = pd.DataFrame({"id": ["7", "12"], "c": [1, 1], "x": [0.1, 0.2]})
    mapping = ColumnMapping(machine_column="id", machine_digits=4, machine_prefix="M", cycle_column="c",
                            cycle_minutes=1, start=START)
    assert list(to_contract(frame, mapping).telemetry) == ["M0007", "M0012"]
    floats = frame.assign(id=[7.0, 12.0])  # CSV columns with a gap elsewhere come back as floats
    assert list(to_contract(floats, mapping).telemetry) == ["M0007", "M0012"]


def test_keep_cycle_false_leaves_only_the_timestamp() -> None:
    mapping = ColumnMapping(machine_column="unit", cycle_column="cycle", cycle_minutes=10, start=START,
                            keep_cycle=False, drop=tuple(CMAPSS_COLUMNS[3:]))
    engine = to_contract(_sample(), mapping).telemetry["1"]
    assert list(engine.columns) == ["timestamp", "setting1"]


def test_a_cycle_column_with_another_name_becomes_cycle() -> None:
    frame = pd.DataFrame({"engine": [1, 1], "t": [5, 6], "x": [0.1, 0.2]})
    mapping = ColumnMapping(machine_column="engine", cycle_column="t", cycle_minutes=60, start=START)
    engine = to_contract(frame, mapping).telemetry["1"]
    assert list(engine.columns) == ["timestamp", "cycle", "x"]
    assert engine["timestamp"].tolist() == [pd.Timestamp("2020-01-01T04:00Z"), pd.Timestamp("2020-01-01T05:00Z")]


def test_integer_sensors_become_float() -> None:
    frame = pd.DataFrame({"m": ["A", "A"], "ts": ["2025-01-01", "2025-01-02"], "count": pd.array([1, None],
                                                                                                  dtype="Int64")})
    engine = to_contract(frame, ColumnMapping(machine_column="m", timestamp_column="ts")).telemetry["A"]
    assert engine["count"].dtype == "float64" and np.isnan(engine["count"].iloc[1])


# ---------------------------------------------------------------- events from maintenance records


def test_events_from_a_maintenance_table() -> None:
    records = pd.DataFrame({"unit": [7, 1, 7], "failed": ["2020-01-02 10:00", "2020-01-03", "2020-01-01"],
                            "part": ["bearing", None, "seal"], "kind": ["wear", "crack", None]})
    events = events_from_table(records, "unit", "failed", "part", "kind", machine_prefix="FD001-", machine_digits=3)
    assert list(events.columns) == list(EVENT_COLUMNS)
    assert events.to_dict("records") == [
        {"machine_name": "FD001-001", "timestamp": pd.Timestamp("2020-01-03T00:00Z"), "component": None,
         "failure_type": "crack"},
        {"machine_name": "FD001-007", "timestamp": pd.Timestamp("2020-01-01T00:00Z"), "component": "seal",
         "failure_type": None},
        {"machine_name": "FD001-007", "timestamp": pd.Timestamp("2020-01-02T10:00Z"), "component": "bearing",
         "failure_type": "wear"},
    ]


def test_events_without_optional_columns_and_exact_duplicates_dropped() -> None:
    records = pd.DataFrame({"m": ["A", "A"], "at": ["2025-01-01T00:00Z", "2025-01-01T00:00Z"]})
    events = events_from_table(records, "m", "at")
    assert len(events) == 1 and events["component"].item() is None and events["failure_type"].item() is None


def test_normalize_events_names_missing_columns() -> None:
    with pytest.raises(DataImportError, match=r"lack column.*component, failure_type"):
        normalize_events(pd.DataFrame({"machine_name": ["A"], "timestamp": ["2025-01-01"]}))
    assert normalize_events(empty_events()).empty


# ---------------------------------------------------------------- every error names its culprit


def _mapping(**overrides: object) -> ColumnMapping:
    options: dict[str, object] = {"machine_column": "pump", "timestamp_column": "read_at", "drop": ("note",)}
    options.update(overrides)
    return ColumnMapping(**options)  # type: ignore[arg-type]


@pytest.mark.parametrize(("frame", "mapping", "message"), [
    (_pumps().iloc[0:0], _mapping(), "no rows"),
    (_pumps(), _mapping(machine_column="pump_id"), "machine_column 'pump_id' is not a column.*found: pump, read_at"),
    (_pumps(), _mapping(timestamp_column="time"), "timestamp_column 'time' is not a column"),
    (_pumps(), _mapping(rename={"temperature": "T"}), "rename names column 'temperature'"),
    (_pumps(), _mapping(drop=("note", "comment")), "drop names column 'comment'"),
    (_pumps(), _mapping(drop=()), r"sensor column 'note' is not numeric .*'ok' at row 0"),
    (_pumps().assign(vib=["1.5", "x", "2"]), _mapping(), r"sensor column 'vib' is not numeric .*'x' at row 1"),
    (_pumps().assign(flag=[True, False, True]), _mapping(), "sensor column 'flag' is boolean"),
    (_pumps(), _mapping(rename={"vib": "temp_c"}), "'vib' would become 'temp_c', which column 'temp_c'"),
    (_pumps(), _mapping(rename={"vib": "month"}), "'vib' would become 'month', a name the contract reserves"),
    (_pumps(), _mapping(rename={"pump": "x"}), "column 'pump' is the machine or time key"),
    (_pumps().assign(pump=["P 1", "P 1", "P2"]), _mapping(), r"machine_column 'pump' value 'P 1'.*invalid"),
    (_pumps(), _mapping(machine_prefix="/"), r"machine name '/P1' is invalid"),
    (_pumps().assign(pump=["P1", None, "P2"]), _mapping(), r"machine_column 'pump' is empty in 1 row\(s\)"),
    (_pumps().assign(pump=[1.5, 1.5, 2.0]), _mapping(), "id 1.5 is not a whole number"),
    (_pumps().assign(read_at=["2025-03-01", "2025-03-01", "2025-03-02"]), _mapping(),
     "machine 'P1' has 2 rows at read_at 2025-03-01"),
    (_pumps().assign(read_at=[1.7e9, 1.7e9 + 60, 1.7e9]), _mapping(), "timestamp_column 'read_at' must hold datetimes"),
    (_pumps().assign(read_at=["2025-03-01", None, "2025-03-02"]), _mapping(),
     r"timestamp_column 'read_at' has 1 empty value\(s\) \(first at row 1\)"),
    (_pumps().assign(read_at=["2025-03-01", "yesterday", "2025-03-02"]), _mapping(),
     "timestamp_column 'read_at' has a value that is not an ISO 8601 datetime: .*yesterday"),
    (pd.DataFrame({"u": [1, 1], "c": [3, 3], "x": [0.0, 1.0]}),
     ColumnMapping(machine_column="u", cycle_column="c", cycle_minutes=10, start=START),
     "machine '1' has 2 rows at c 3"),
    (pd.DataFrame({"u": [1, 1], "c": [1, None], "x": [0.0, 1.0]}),
     ColumnMapping(machine_column="u", cycle_column="c", cycle_minutes=10, start=START),
     r"cycle_column 'c' has 1 empty or infinite value\(s\) \(first at row 1\)"),
    (pd.DataFrame({"u": [1], "c": ["one"], "x": [0.0]}),
     ColumnMapping(machine_column="u", cycle_column="c", cycle_minutes=10, start=START),
     "cycle_column 'c' is not numeric"),
    (pd.DataFrame({"u": [1], "c": [1], "x": [0.0]}),
     ColumnMapping(machine_column="u", cycle_column="c", cycle_minutes=10, start=START, rename={"x": "cycle"}),
     "'x' would become 'cycle', which cycle_column 'c' already becomes"),
])
def test_bad_input_raises_an_error_naming_the_problem(frame: pd.DataFrame, mapping: ColumnMapping,
                                                       message: str) -> None:
    with pytest.raises(DataImportError, match=message):
        to_contract(frame, mapping)


@pytest.mark.parametrize(("options", "message"), [
    ({"timestamp_column": "t"}, "exactly one of machine_column"),
    ({"machine_column": "m", "machine_name": "A", "timestamp_column": "t"}, "exactly one of machine_column"),
    ({"machine_name": "bad name", "timestamp_column": "t"}, "machine_name: machine name 'bad name' is invalid"),
    ({"machine_column": "m"}, "exactly one of timestamp_column or cycle_column"),
    ({"machine_column": "m", "timestamp_column": "t", "cycle_column": "c"}, "exactly one of timestamp_column"),
    ({"machine_column": "m", "cycle_column": "c", "start": START}, "cycle_column 'c' needs cycle_minutes and start"),
    ({"machine_column": "m", "cycle_column": "c", "cycle_minutes": 10}, "needs cycle_minutes and start"),
    ({"machine_column": "m", "cycle_column": "c", "cycle_minutes": 0, "start": START},
     "cycle_minutes must be a positive number of minutes, got 0"),
    ({"machine_column": "m", "cycle_column": "c", "cycle_minutes": -5.0, "start": START}, "got -5.0"),
    ({"machine_column": "m", "timestamp_column": "t", "cycle_minutes": 10}, "apply only with cycle_column"),
    ({"machine_column": "m", "timestamp_column": "t", "machine_digits": -1}, "machine_digits must be >= 0"),
])
def test_inconsistent_mappings_are_refused(options: dict[str, object], message: str) -> None:
    with pytest.raises(DataImportError, match=message):
        ColumnMapping(**options)  # type: ignore[arg-type]


def test_a_single_drop_string_is_one_column() -> None:
    assert ColumnMapping(machine_name="A", timestamp_column="t", drop="note").drop == ("note",)  # type: ignore[arg-type]


def test_events_errors_name_the_column_or_machine() -> None:
    records = pd.DataFrame({"m": ["A"], "at": ["2025-01-01"]})
    with pytest.raises(DataImportError, match="timestamp column 'when' is not a column"):
        events_from_table(records, "m", "when")
    with pytest.raises(DataImportError, match="component column 'part' is not a column"):
        events_from_table(records, "m", "at", component_column="part")
    with pytest.raises(DataImportError, match=r"machine name 'x/y' is invalid"):
        events_from_table(records.assign(m=["x/y"]), "m", "at")
    with pytest.raises(DataImportError, match="no rows"):
        events_from_table(records.iloc[0:0], "m", "at")


def test_data_import_error_is_a_value_error() -> None:
    assert issubclass(DataImportError, ValueError)
