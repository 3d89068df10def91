"""The warm container's capture buffer (logic.predict.CaptureBuffer): records are written as one object when a
model's buffer reaches its row bound or its oldest record its age bound (an injected clock), per model and
day; the object holds the same lines a per-request capture wrote, and the drift check's reader gets them back."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from modelforge.adapters.prediction_capture import _LINE, PredictionCaptureStore, encode_rows
from modelforge.domain.live import CaptureConfig, CapturedRows
from modelforge.logic.predict import CaptureBuffer

START = datetime(2026, 3, 1, 23, 59, 30, tzinfo=UTC)


def _lines(rows: CapturedRows) -> list[dict[str, Any]]:
    """The oracle: each record as the dict a per-request capture wrote, keys in the same order."""
    alarms = rows.alarms if rows.alarms is not None else [None] * len(rows.predictions)
    return [{"timestamp": stamp, "machine_name": machine, "model_name": rows.model_name,
             "model_version": rows.model_version, "score": score, "prediction": prediction, "alarm": alarm,
             "captured_at": rows.captured_at, "request_id": rows.request_id}
            for stamp, machine, score, prediction, alarm in zip(rows.timestamps, rows.machines, rows.scores,
                                                                rows.predictions, alarms, strict=True)]


def _rows(request_id: str, count: int, model: str = "P-1#status") -> CapturedRows:
    return CapturedRows(model_name=model, model_version="v1", request_id=request_id,
                        captured_at=START.isoformat(),
                        timestamps=[f"2026-03-01T10:{i:02d}:00Z" for i in range(count - 1)] + [1.5e9],
                        machines=["P-1"] * count, scores=[0.1 + i / 1000 for i in range(count)],
                        predictions=[float(i % 2) for i in range(count)],
                        alarms=[bool(i % 2) for i in range(count)])


class _Store:
    def __init__(self, fail: bool = False) -> None:
        self.objects: list[tuple[str, datetime, str, list[CapturedRows]]] = []
        self.fail = fail

    def put_rows(self, model_key: str, at: datetime, object_id: str, rows: Any) -> str:
        if self.fail:
            raise ConnectionError("S3 is unreachable")
        self.objects.append((model_key, at, object_id, list(rows)))
        return f"{model_key}/{object_id}"


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_buffer_is_written_when_it_holds_flush_rows_records() -> None:
    store, clock = _Store(), _Clock()
    buffer = CaptureBuffer(store, flush_rows=10, flush_seconds=60, clock=clock)
    assert buffer.add(START, "r-1", _rows("r-1", 4)) == [] and buffer.add(START, "r-2", _rows("r-2", 5)) == []
    assert store.objects == [] and buffer.buffered == 9
    assert buffer.add(START, "r-3", _rows("r-3", 1)) == ["P-1#status/r-1"]  # the 10th record
    [(model, at, object_id, rows)] = store.objects
    assert (model, at, object_id, [r.request_id for r in rows]) == ("P-1#status", START, "r-1", ["r-1", "r-2", "r-3"])
    assert buffer.buffered == 0


def test_a_buffer_is_written_when_its_oldest_record_is_flush_seconds_old() -> None:
    store, clock = _Store(), _Clock()
    buffer = CaptureBuffer(store, flush_rows=1000, flush_seconds=30, clock=clock)
    buffer.add(START, "r-1", _rows("r-1", 2))
    clock.now += 29.9
    buffer.add(START, "r-2", _rows("r-2", 2))
    assert store.objects == []
    clock.now += 0.1  # r-1 is 30 s old: checked at the next request, another model's
    buffer.add(START, "r-3", _rows("r-3", 2, model="Q-1#health"))
    assert [(m, o, [r.request_id for r in rows]) for m, _, o, rows in store.objects] == [
        ("P-1#status", "r-1", ["r-1", "r-2"])]
    assert buffer.buffered == 2 and buffer.flush() == ["Q-1#health/r-3"]


def test_each_day_is_its_own_object_and_a_failed_write_drops_its_records() -> None:
    store = _Store()
    buffer = CaptureBuffer(store, flush_rows=1000, flush_seconds=60, clock=_Clock())
    buffer.add(START, "r-1", _rows("r-1", 2))
    buffer.add(START + timedelta(minutes=1), "r-2", _rows("r-2", 2))  # past midnight
    assert sorted(buffer.flush()) == ["P-1#status/r-1", "P-1#status/r-2"]
    failing = CaptureBuffer(_Store(fail=True), flush_rows=1, flush_seconds=60, clock=_Clock())
    assert failing.add(START, "r-1", _rows("r-1", 3)) == [] and failing.buffered == 0


def test_the_defaults_bound_what_a_recycled_container_can_lose() -> None:
    config = CaptureConfig()
    assert (config.flush_rows, config.flush_seconds) == (50_000, 60.0)
    with pytest.raises(ValueError):
        CaptureConfig(flush_rows=0)


def test_the_lines_are_what_a_per_request_capture_wrote_and_the_reader_returns_them() -> None:
    rows = _rows("r-1", 3)
    health = CapturedRows(**{**rows.__dict__, "alarms": None, "scores": rows.predictions, "model_name": "P-1#health"})
    for captured in (rows, health):
        assert encode_rows(captured) == "".join(_LINE.encode(line) + "\n" for line in _lines(captured))
    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="data-bucket")
        store = PredictionCaptureStore("data-bucket", s3=boto3.client("s3", region_name="us-east-1"))
        buffer = CaptureBuffer(store, flush_rows=5, flush_seconds=60, clock=_Clock())
        buffer.add(START, "r-1", rows)
        [key] = buffer.add(START, "r-2", _rows("r-2", 2))
        assert key == "capture/P-1#status/2026/03/01/r-1.jsonl"
        read = store.read("P-1#status", START.date(), START.date(), max_objects=10)
    assert read == _lines(rows) + _lines(_rows("r-2", 2))
    assert read[0]["alarm"] is False and read[1]["score"] == 0.101 and json.loads(json.dumps(read)) == read
