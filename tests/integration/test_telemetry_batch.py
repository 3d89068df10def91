"""A fleet's telemetry and events in a few large requests (issue 15): ``write_many`` leaves what ``write``
leaves (the same paths, files, manifests), and ``read_many`` returns what ``read`` returns, machine by machine
(moto's S3, in process)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pandas as pd
import pytest
from moto import mock_aws

from modelforge.adapters import aws as aws_clients
from modelforge.adapters import telemetry as telemetry_module
from modelforge.adapters.failure_events import FailureEventStore
from modelforge.adapters.telemetry import TelemetryCatalog, TelemetryStore
from tests.conftest import isolate_from_aws

pytestmark = pytest.mark.integration

BUCKET = "modelforge-test-batch"
REGION = "us-east-1"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Any]:
    isolate_from_aws(monkeypatch, tmp_path, REGION)
    aws_clients.client.cache_clear()
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket=BUCKET)
        yield client
    aws_clients.client.cache_clear()


def _frame(seed: int, start: str, rows: int, *, extra: bool = False) -> pd.DataFrame:
    """Readings every 3 hours across a month boundary, out of order, with missing values."""
    rng = np.random.default_rng(seed)
    stamps = pd.date_range(start, periods=rows, freq="3h", tz="UTC")
    frame = pd.DataFrame({"timestamp": stamps, "Eng_RPM": rng.normal(1750, 5, rows),
                          "Eng_RPM_variation_percentage": rng.normal(0, 1, rows)})
    frame.loc[3, "Eng_RPM"] = np.nan
    if extra:
        frame["cycle"] = np.arange(rows, dtype="int64")
    return frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)


FRAMES = {"PUMP-001": _frame(1, "2025-01-25", 60), "PUMP-002": _frame(2, "2025-01-28", 40),
          "PUMP-003": _frame(3, "2025-02-10", 30, extra=True)}


def _layout(s3: Any, prefix: str) -> dict[str, Any]:
    """Each object under ``prefix``, its file name left out (awswrangler names files at random): the
    directories, and the manifests' and parquet files' contents."""
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{prefix}/")["Contents"]
    layout: dict[str, Any] = {}
    for item in listed:
        body = s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read()
        folder = item["Key"].removeprefix(f"{prefix}/").rsplit("/", 1)[0]
        if item["Key"].endswith(".json"):
            layout[folder + "/manifest"] = body
        else:
            import io

            layout[folder] = pd.read_parquet(io.BytesIO(body))
    return layout


def test_write_many_leaves_what_write_leaves(s3: Any) -> None:
    one_by_one = TelemetryStore(BUCKET, "single")
    for name, frame in FRAMES.items():
        one_by_one.write(name, frame)
    TelemetryStore(BUCKET, "batched").write_many(FRAMES)

    single, batched = _layout(s3, "single"), _layout(s3, "batched")
    assert sorted(single) == sorted(batched)
    assert len([k for k in single if "month=" in k]) == 5  # two months for two machines, one for the third
    for key, value in single.items():
        if isinstance(value, pd.DataFrame):
            pd.testing.assert_frame_equal(value, batched[key])
        else:
            assert value == batched[key], key


def test_write_many_replaces_a_machines_months(s3: Any) -> None:
    store = TelemetryStore(BUCKET, "processed")
    store.write_many(FRAMES)
    later = _frame(9, "2025-03-05", 10)
    store.write_many({"PUMP-001": later})
    assert len(store.read("PUMP-001", None, None)) == 10
    assert len(store.read("PUMP-002", None, None)) == 40  # another machine's data stays
    summary = TelemetryCatalog(BUCKET, "processed").describe("PUMP-001")
    assert summary is not None and summary.rows == 10


# The whole prefix listed once (0), or each machine's (32); whole range, from a month on, a few days.
@pytest.mark.parametrize(("list_prefix_above", "start", "end"), [
    (0, None, None), (32, date(2025, 2, 1), None), (0, date(2025, 1, 27), date(2025, 2, 3))])
def test_read_many_returns_what_read_returns(s3: Any, monkeypatch: pytest.MonkeyPatch, list_prefix_above: int,
                                             start: date | None, end: date | None) -> None:
    monkeypatch.setattr(telemetry_module, "LIST_PREFIX_ABOVE", list_prefix_above)
    store = TelemetryStore(BUCKET, "processed")
    store.write_many(FRAMES)
    store.write("OTHER-001", _frame(4, "2025-01-01", 5))  # on the prefix, not asked for
    names = [*FRAMES, "MISSING-001"]
    many = store.read_many(names, start, end)
    assert list(many) == names
    for name in names:
        pd.testing.assert_frame_equal(many[name], store.read(name, start, end))
    assert many["MISSING-001"].empty


def test_events_write_many_and_read(s3: Any) -> None:
    stamps = pd.to_datetime(["2025-01-02T00:00:00Z", "2025-01-05T00:00:00Z"], utc=True)
    events = {"PUMP-001": pd.DataFrame({"machine_name": "PUMP-001", "timestamp": stamps, "component": "seal",
                                        "failure_type": "failure"}),
              "PUMP-002": pd.DataFrame({"machine_name": pd.Series([], dtype=object),
                                        "timestamp": pd.to_datetime([], utc=True),
                                        "component": pd.Series([], dtype=object),
                                        "failure_type": pd.Series([], dtype=object)})}
    batched, single = FailureEventStore(BUCKET, "batched_events"), FailureEventStore(BUCKET, "single_events")
    assert batched.write_many(events) == 2
    for name, frame in events.items():
        single.write(name, frame)
    pd.testing.assert_frame_equal(batched.read(["PUMP-002", "PUMP-001", "PUMP-009"]),
                                  single.read(["PUMP-002", "PUMP-001", "PUMP-009"]))
    for name in events:
        assert (s3.get_object(Bucket=BUCKET, Key=batched.key(name))["Body"].read()
                == s3.get_object(Bucket=BUCKET, Key=single.key(name))["Body"].read())
