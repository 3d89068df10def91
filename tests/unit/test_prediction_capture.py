"""Prediction capture end to end on moto's S3 (in-process, buckets and prefixes from template.yaml): the real
/predict handler writes one JSON-lines object per request under capture/<model>/<yyyy>/<mm>/<dd>/, and a drift
check after failure events are injected reads those captures and the events through the real adapters and
reports the champion's live recall and concept drift."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pandas as pd
import pytest
from moto import mock_aws

from localcloud.template import LocalStack
from modelforge.adapters.failure_events import FailureEventStore
from modelforge.adapters.prediction_capture import PredictionCaptureStore
from modelforge.handlers import predict as predict_handler
from modelforge.logic.drift import DriftPolicy, check_champion
from tests.unit.conftest import read_event
from tests.unit.test_predict_tampering import MACHINE, REGISTERED, Cloud, _cold_start

START = datetime(2026, 1, 1, 8, tzinfo=UTC)


@dataclass
class Captured:
    cloud: Cloud
    data_bucket: str


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch, local_stack: LocalStack) -> Iterator[Captured]:
    from modelforge.adapters.model_registry import ModelRegistry

    table, models, data = (local_stack.tables["ModelsTable"], local_stack.buckets["ModelsBucket"],
                           local_stack.buckets["DataBucket"])
    environment = local_stack.functions["PredictFunction"].environment
    assert environment["CAPTURE_BUCKET_NAME"] == data  # the template's wiring, as the local cloud resolves it
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1", "MODELS_TABLE_NAME": table.name,
                       "MODELS_BUCKET_NAME": models, "CAPTURE_BUCKET_NAME": data, "CHAMPION_REFRESH_SECONDS": "0",
                       # each request's capture written at once (test_capture_buffer.py tests the buffering)
                       "CAPTURE_FLUSH_ROWS": "1", "POWERTOOLS_TRACE_DISABLED": "true"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("CAPTURE_SAMPLE_RATE", raising=False)
    _cold_start()
    with mock_aws():
        s3, dynamodb = boto3.client("s3", region_name="us-east-1"), boto3.client("dynamodb", region_name="us-east-1")
        for name in (models, data):
            s3.create_bucket(Bucket=name)
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        dynamodb.create_table(TableName=table.name, KeySchema=table.properties["KeySchema"],
                              AttributeDefinitions=table.properties["AttributeDefinitions"],
                              BillingMode="PAY_PER_REQUEST")
        cloud = Cloud(s3, dynamodb, table.name, models, ModelRegistry(table.name))
        ref = cloud.register("v1", REGISTERED)
        from modelforge.registry import ModelName

        cloud.registry.promote(ModelName(MACHINE, "status"), "v1", reason="test", by="test", now=START)
        assert ref.uri
        yield Captured(cloud, data)
    _cold_start()


def _records(first_minute: int, count: int) -> list[dict[str, Any]]:
    """``count`` records a minute apart; "a" > 0 is what the model alarms on (a failure pattern)."""
    return [{"timestamp": (START + timedelta(minutes=first_minute + i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
             "a": 3.0 if first_minute + i in ALARMING else -3.0, "b": 0.0} for i in range(count)]


ALARMING = {25}  # the one minute the model alarms


def _predict(lambda_context: Any, records: list[dict[str, Any]], request_id: str) -> dict[str, Any]:
    event = read_event("post_train")
    event["routeKey"] = event["requestContext"]["routeKey"] = "POST /predict"
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/predict"
    event["body"] = json.dumps({"machine_name": MACHINE, "indicator": "status", "records": records})
    event["headers"]["content-length"] = str(len(event["body"]))
    response = predict_handler.lambda_handler(event, replace(lambda_context, aws_request_id=request_id))
    assert response["statusCode"] == 200, response["body"]
    return dict(json.loads(response["body"]))


def _objects(captured: Captured) -> dict[str, list[dict[str, Any]]]:
    s3 = captured.cloud.s3
    listing = s3.list_objects_v2(Bucket=captured.data_bucket, Prefix="capture/").get("Contents", [])
    return {o["Key"]: [json.loads(line) for line in s3.get_object(Bucket=captured.data_bucket, Key=o["Key"])
                       ["Body"].read().decode().splitlines()] for o in listing}


def test_each_request_is_one_capture_object_with_its_records(captured: Captured, lambda_context: Any) -> None:
    answers = [_predict(lambda_context, _records(start, 20), f"req-{start}") for start in (0, 20, 40)]

    objects = _objects(captured)
    today = datetime.now(UTC)
    assert sorted(objects) == [f"capture/{MACHINE}#status/{today:%Y/%m/%d}/req-{s}.jsonl" for s in (0, 20, 40)]
    lines = objects[f"capture/{MACHINE}#status/{today:%Y/%m/%d}/req-20.jsonl"]
    assert len(lines) == 20
    assert {(line["machine_name"], line["model_version"], line["request_id"]) for line in lines} == {
        (MACHINE, "v1", "req-20")}
    assert lines[5]["timestamp"] == "2026-01-01T08:25:00Z" and lines[5]["alarm"] is True
    assert [line["score"] for line in lines] == [p["probability"] for p in answers[1]["predictions"]]
    assert sum(line["alarm"] for lines in objects.values() for line in lines) == 1


def test_a_request_outside_the_sample_is_served_and_not_captured(captured: Captured, lambda_context: Any,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAPTURE_SAMPLE_RATE", "0")
    answer = _predict(lambda_context, _records(0, 5), "req-unsampled")
    assert len(answer["predictions"]) == 5 and _objects(captured) == {}


def test_a_check_after_failure_events_reports_live_recall_and_concept_drift(captured: Captured,
                                                                            lambda_context: Any) -> None:
    from tests.unit.test_drift import champion, deps_for, profile_of, telemetry

    for start in range(0, 180, 20):  # three hours of predictions, one alarm at minute 25
        _predict(lambda_context, _records(start, 20), f"req-{start}")
    # Failures at 08:30 (the alarm at 08:25 came 5 minutes ahead), 09:30 and 10:30 (no alarm before them).
    events = pd.DataFrame({"machine_name": MACHINE, "timestamp": [START + timedelta(minutes=m) for m in (30, 90, 150)],
                           "component": None, "failure_type": None})
    FailureEventStore(captured.data_bucket).write(MACHINE, events)

    item = champion(MACHINE, [MACHINE], metrics={"events_total": 4, "events_caught": 3, "precision": 0.5},
                    params={"config": {"labeling": {"window_minutes": 30}}})
    frames = {MACHINE: telemetry(2, seed=2, start="2026-01-01")}  # the ground truth reaches 2026-01-02
    deps, registry, _ = deps_for([item], frames, profile_of([telemetry(2, seed=1)]))
    deps = replace(deps, captures=PredictionCaptureStore(captured.data_bucket),
                   failure_events=FailureEventStore(captured.data_bucket))

    result = check_champion(item, deps, window_days=2, threshold=0.25,
                            now=lambda: datetime.now(UTC), policy=DriftPolicy())

    assert (result.live_failures, result.live_recall, result.concept_drift) == (3, pytest.approx(0.3333), True)
    assert result.live_false_alarm_rate == 0.0
    assert result.live is not None and result.live["predictions"] == 180 and result.live["test"]["recall"] == 0.75
    assert registry.recorded[-1][2]["live_recall"] == result.live_recall
    assert os.environ["CAPTURE_BUCKET_NAME"] == captured.data_bucket


class _FailingStore:
    def put_rows(self, model_key: str, at: datetime, object_id: str, rows: Any) -> str:
        raise ConnectionError("S3 is unreachable")


class _KeepingStore:
    """Keeps each object's lines as the store would write them (``encode_rows``), decoded."""

    def __init__(self) -> None:
        self.objects: list[tuple[str, str, list[Any]]] = []

    def put_rows(self, model_key: str, at: datetime, object_id: str, rows: Any) -> str:
        from modelforge.adapters.prediction_capture import encode_rows

        lines = [json.loads(line) for line in "".join(map(encode_rows, rows)).splitlines()]
        self.objects.append((model_key, object_id, lines))
        return f"{model_key}/{object_id}"


def _written_at_once(store: Any) -> Any:
    """A buffer that writes each request's records at once (as a flush_rows of 1 does)."""
    from modelforge.logic.predict import CaptureBuffer

    return CaptureBuffer(store, flush_rows=1, flush_seconds=60.0)


def test_a_failed_capture_is_logged_and_the_prediction_still_served() -> None:
    from modelforge.logic.predict import Capture, ChampionCache, predict_for
    from modelforge.schemas import PredictRequest
    from tests.unit.test_predict_input import _Artifacts, _body, _record, _Registry

    request = PredictRequest.model_validate(_body([_record(0), _record(1), _record(2, machine_name="X#1")]))
    cache = ChampionCache(_Registry(), _Artifacts(), 60)
    answer = predict_for(request, cache, capture=Capture(_written_at_once(_FailingStore()), request_id="r-1",
                                                          sample_rate=1.0))
    assert len(answer.predictions) == 3

    kept = _KeepingStore()
    predict_for(request, cache, capture=Capture(_written_at_once(kept), request_id="r-2", sample_rate=1.0,
                                                now=lambda: START))
    [(model_key, request_id, lines)] = kept.objects
    assert (model_key, request_id, len(lines)) == ("MOTOBOMBA-007#status", "r-2", 3)
    # A record's machine_name counts only when it is a machine's name; "X#1" is not one.
    assert {line["machine_name"] for line in lines} == {"MOTOBOMBA-007"}
    assert lines[0]["captured_at"] == START.isoformat() and lines[0]["timestamp"] == "2025-06-01T12:00:00Z"
