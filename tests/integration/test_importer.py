"""The importer against S3 (moto, in process): the failure-events store's round trip, and ``modelforge-import``
run as a user would, read back through the same TelemetryStore and FailureEventStore that training uses.

tests/fixtures/cmapss_fd001_sample.txt holds engines 1-3 of train_FD001.txt, copied verbatim from NASA's
C-MAPSS data set (public domain: A. Saxena and K. Goebel, "Turbofan Engine Degradation Simulation Data Set",
NASA Prognostics Data Repository, NASA Ames Research Center, 2008).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import boto3
import pandas as pd
import pytest
from moto import mock_aws

from modelforge.adapters import aws as aws_clients
from modelforge.adapters.failure_events import FailureEventStore
from modelforge.adapters.telemetry import TelemetryStore
from modelforge.domain.importing import EVENT_COLUMNS
from modelforge.errors import DataImportError
from modelforge.importer import main
from tests.conftest import isolate_from_aws

pytestmark = pytest.mark.integration

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "cmapss_fd001_sample.txt"
BUCKET = "modelforge-test-data"
REGION = "us-east-1"
CYCLES = {"FD001-001": 192, "FD001-002": 287, "FD001-003": 179}  # engines 1-3 of train_FD001.txt


def _clear_client_caches() -> None:
    aws_clients.client.cache_clear()
    aws_clients.resource.cache_clear()


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Any]:
    """moto's S3 with one bucket. Another tier may have left cached clients pointing at a local endpoint, and
    environment variables that would send these ones there: drop both."""
    isolate_from_aws(monkeypatch, tmp_path, REGION)
    monkeypatch.delenv("DATA_BUCKET_NAME", raising=False)
    monkeypatch.delenv("PROCESSED_DATA_PREFIX", raising=False)
    _clear_client_caches()
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket=BUCKET)
        yield client
    _clear_client_caches()


def _events(machine: str, *stamps: str, component: str | None = None) -> pd.DataFrame:
    return pd.DataFrame({"machine_name": [machine] * len(stamps), "timestamp": list(stamps),
                         "component": [component] * len(stamps), "failure_type": ["wear"] * len(stamps)})


# ---------------------------------------------------------------- FailureEventStore


def test_events_round_trip_filtered_by_inclusive_dates(s3: Any) -> None:
    store = FailureEventStore(BUCKET, s3=s3)
    assert store.write("PUMP-1", _events("PUMP-1", "2025-01-03T10:00Z", "2025-01-01T00:00Z", component="seal")) == 2
    store.write("PUMP-2", _events("PUMP-2", "2025-01-05T23:59Z"))

    key = "failure_events/machine_name=PUMP-1/events.parquet"
    assert s3.head_object(Bucket=BUCKET, Key=key)["ContentLength"] > 0

    everything = store.read(["PUMP-2", "PUMP-1"])
    assert list(everything.columns) == list(EVENT_COLUMNS)
    assert everything["machine_name"].tolist() == ["PUMP-1", "PUMP-1", "PUMP-2"]  # by machine, then time
    assert everything["timestamp"].tolist() == [pd.Timestamp("2025-01-01T00:00Z"), pd.Timestamp("2025-01-03T10:00Z"),
                                                pd.Timestamp("2025-01-05T23:59Z")]
    assert str(everything["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert everything["component"].tolist() == ["seal", "seal", None]
    assert everything["failure_type"].tolist() == ["wear"] * 3

    # [start, end], the end day included whole (as TelemetryStore.read).
    window = store.read(["PUMP-1", "PUMP-2"], start=date(2025, 1, 2), end=date(2025, 1, 5))
    assert window["timestamp"].tolist() == [pd.Timestamp("2025-01-03T10:00Z"), pd.Timestamp("2025-01-05T23:59Z")]
    assert store.read(["PUMP-1"], end=date(2025, 1, 2))["timestamp"].tolist() == [pd.Timestamp("2025-01-01T00:00Z")]


def test_machines_without_events_contribute_nothing(s3: Any) -> None:
    store = FailureEventStore(BUCKET, prefix="/events/", s3=s3)
    store.write("PUMP-1", _events("PUMP-1", "2025-01-01T00:00Z"))
    assert store.read(["NEVER-IMPORTED", "PUMP-1"])["machine_name"].tolist() == ["PUMP-1"]
    none = store.read(["NEVER-IMPORTED"])
    assert none.empty and list(none.columns) == list(EVENT_COLUMNS)
    assert str(none["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert store.read("PUMP-1")["machine_name"].tolist() == ["PUMP-1"]  # one name, not its letters


def test_write_replaces_a_machines_events(s3: Any) -> None:
    store = FailureEventStore(BUCKET, s3=s3)
    store.write("PUMP-1", _events("PUMP-1", "2025-01-01T00:00Z", "2025-01-02T00:00Z"))
    store.write("PUMP-1", _events("PUMP-1", "2025-02-01T00:00Z"))
    assert store.read(["PUMP-1"])["timestamp"].tolist() == [pd.Timestamp("2025-02-01T00:00Z")]
    store.write("PUMP-1", _events("PUMP-1"))  # no failures any more: the old ones must not linger
    assert store.read(["PUMP-1"]).empty


def test_write_validates_its_input(s3: Any) -> None:
    store = FailureEventStore(BUCKET, s3=s3)
    with pytest.raises(DataImportError, match=r"lack column.*failure_type"):
        store.write("PUMP-1", _events("PUMP-1", "2025-01-01").drop(columns="failure_type"))
    with pytest.raises(DataImportError, match=r"name other machine.*PUMP-2"):
        store.write("PUMP-1", _events("PUMP-2", "2025-01-01"))
    with pytest.raises(DataImportError, match="machine name 'a/b' is invalid"):
        store.write("a/b", _events("a/b", "2025-01-01"))
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0


# ---------------------------------------------------------------- the CLI


def test_cli_imports_cmapss_engines_with_one_failure_each(s3: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["cmapss", str(FIXTURE), "--bucket", BUCKET, "--subset", "FD001", "--cycle-minutes", "10",
                 "--start", "2020-01-01"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["machines"] == 3 and summary["rows"] == sum(CYCLES.values()) and summary["events"] == 3
    assert summary["bucket"] == BUCKET and summary["prefix"] == "processed"

    source = pd.read_csv(FIXTURE, sep=r"\s+", header=None)
    telemetry = TelemetryStore(BUCKET, "processed")
    events = FailureEventStore(BUCKET).read(list(CYCLES))
    assert events["machine_name"].tolist() == list(CYCLES)
    for unit, (machine, cycles) in enumerate(CYCLES.items(), start=1):
        frame = telemetry.read(machine, None, None)
        assert len(frame) == cycles
        assert frame["cycle"].tolist() == list(range(1, cycles + 1))
        expected = pd.Timestamp("2020-01-01T00:00Z") + pd.to_timedelta((frame["cycle"] - 1) * 10, unit="min")
        assert frame["timestamp"].tolist() == expected.tolist()
        # The readings are the file's, in order: s9 (physical core speed) is the 14th column.
        assert frame["s9"].tolist() == pytest.approx(source.loc[source[0] == unit, 13].tolist())
        # The failure is at the engine's last cycle, where its telemetry ends.
        event = events[events["machine_name"] == machine]
        assert event["timestamp"].tolist() == [frame["timestamp"].iloc[-1]]
        assert event["timestamp"].item() == pd.Timestamp("2020-01-01T00:00Z") + pd.Timedelta(minutes=(cycles - 1) * 10)
        assert event["failure_type"].item() == "run_to_failure"

    manifest = json.loads(s3.get_object(Bucket=BUCKET, Key="processed/machine_name=FD001-002/_manifest.json")["Body"]
                          .read())
    assert manifest["rows"] == CYCLES["FD001-002"]


def test_cli_imports_a_users_csv_with_maintenance_records(s3: Any, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    readings = tmp_path / "pumps.csv"
    pd.DataFrame({"pump_id": [3, 3, 3, 12, 12], "read_at": ["2025-03-01T00:00:00Z", "2025-03-01T00:01:00Z",
                                                          "2025-03-01T00:02:00Z", "2025-03-01T00:00:00Z",
                                                          "2025-03-01T00:01:00Z"],
                  "temp_c": [60.0, 61.0, 75.0, 55.0, 55.5], "operator": ["ana", "ana", "ben", "ben", "ben"]}
                 ).to_csv(readings, index=False)
    repairs = tmp_path / "repairs.csv"
    pd.DataFrame({"pump": [3], "failed_at": ["2025-03-01T00:02:00Z"], "part": ["bearing"]}).to_csv(repairs, index=False)

    code = main(["table", str(readings), "--machine-column", "pump_id", "--machine-prefix", "PUMP-",
                 "--machine-digits", "3", "--timestamp-column", "read_at", "--rename", "temp_c=Motor_Temperature_C",
                 "--drop", "operator", "--events", str(repairs), "--events-machine-column", "pump",
                 "--events-timestamp-column", "failed_at", "--events-component-column", "part",
                 "--bucket", BUCKET, "--prefix", "processed", "--events-prefix", "failure_events"])
    assert code == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out)["events"] == 1

    frame = TelemetryStore(BUCKET, "processed").read("PUMP-003", None, None)
    # machine_name: the partition value awswrangler reads back from the object keys.
    assert [c for c in frame.columns if c != "machine_name"] == ["timestamp", "Motor_Temperature_C"]
    assert frame["Motor_Temperature_C"].tolist() == [60.0, 61.0, 75.0]
    events = FailureEventStore(BUCKET).read(["PUMP-003", "PUMP-012"])
    assert events[["machine_name", "component"]].values.tolist() == [["PUMP-003", "bearing"]]
    # An imported machine without failures has an (empty) events object: re-imports clear old events.
    assert s3.head_object(Bucket=BUCKET, Key="failure_events/machine_name=PUMP-012/events.parquet")


def test_cli_dry_run_writes_nothing(s3: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cmapss", str(FIXTURE), "--bucket", BUCKET, "--dry-run"]) == 0
    assert json.loads(capsys.readouterr().out)["written"] is False
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0


@pytest.mark.parametrize(("arguments", "message"), [
    (["cmapss", "{fixture}"], "no data bucket: pass --bucket or set DATA_BUCKET_NAME"),
    (["cmapss", "{fixture}", "--bucket", BUCKET, "--cycle-minutes", "0"], "cycle_minutes must be a positive"),
    (["cmapss", "does-not-exist.txt", "--bucket", BUCKET], "does-not-exist.txt: no such file"),
    (["cmapss", "{fixture}", "--bucket", BUCKET, "--events-prefix", "processed/events"], "must be outside --prefix"),
    (["table", "{fixture}", "--bucket", BUCKET, "--machine-name", "A", "--timestamp-column", "t"],
     "unknown file type"),
])
def test_cli_refuses_bad_input_with_status_2(s3: Any, capsys: pytest.CaptureFixture[str], arguments: list[str],
                                             message: str) -> None:
    assert main([a.replace("{fixture}", str(FIXTURE)) for a in arguments]) == 2
    assert message in capsys.readouterr().err
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0


def test_cli_refuses_events_for_machines_it_does_not_import(s3: Any, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    readings = tmp_path / "pumps.parquet"
    pd.DataFrame({"pump": ["P1"], "at": [pd.Timestamp("2025-03-01T00:00Z")], "x": [1.0]}).to_parquet(readings)
    repairs = tmp_path / "repairs.csv"
    pd.DataFrame({"pump": ["P9"], "at": ["2025-03-01T00:00:00Z"]}).to_csv(repairs, index=False)
    code = main(["table", str(readings), "--machine-column", "pump", "--timestamp-column", "at", "--events",
                 str(repairs), "--events-machine-column", "pump", "--events-timestamp-column", "at",
                 "--bucket", BUCKET])
    assert code == 2
    assert "failure events name machine(s) with no telemetry in this import: P9" in capsys.readouterr().err
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0


def test_cli_refuses_a_bucket_that_does_not_exist(s3: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cmapss", str(FIXTURE), "--bucket", "no-such-bucket"]) == 2
    assert "bucket 'no-such-bucket' does not exist at AWS" in capsys.readouterr().err
