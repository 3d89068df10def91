"""What POST /predict accepts, builds and logs from its records (issue 16, finding 7): the frame holds the
model's sensors and the timestamp only, however many keys a record carries; keys per record and text values are
bounded (422 naming the record and key); MLflow's column-oriented ``dataframe_split`` scores as its records do;
one log line per request says what was scored and how it came out, never the client's strings."""

from __future__ import annotations

import hashlib
import io
import json
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
import xgboost as xgb
from pydantic import ValidationError

from modelforge.domain.inference import records_frame
from modelforge.errors import IncompatibleRecordsError, InvalidRequestError
from modelforge.handlers import predict as predict_handler
from modelforge.handlers.http_errors import resolve_json
from modelforge.jobs import Indicator
from modelforge.logic.predict import ChampionCache, logged_number, predict_for
from modelforge.observability import logger
from modelforge.registry import ChampionPointer, ModelName, ModelVersion
from modelforge.schemas import MAX_PREDICT_RECORDS, MAX_RECORD_KEYS, MAX_TEXT_VALUE_LENGTH, PredictRequest

SENSORS = ["Eng_RPM", "Motor_Temperature_C"]
NAME = ModelName("MOTOBOMBA-007", Indicator.STATUS)


def _record(minute: int, **extra: Any) -> dict[str, Any]:
    stamp = (datetime(2025, 6, 1, 12, tzinfo=UTC) + timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"timestamp": stamp, "Eng_RPM": 1750.0 + minute, "Motor_Temperature_C": 61.5, **extra}


# ---------------------------------------------------------------- the frame


def test_extra_keys_never_become_columns() -> None:
    extra = {f"debug_{k}": "x" * MAX_TEXT_VALUE_LENGTH for k in range(MAX_RECORD_KEYS - 3)}
    records = [_record(minute, **extra) for minute in range(1000)]

    frame = records_frame(records, SENSORS)

    assert list(frame.columns) == ["timestamp", *SENSORS]
    assert len(frame) == 1000
    assert frame.memory_usage(deep=True).sum() < 100_000  # 1000 rows x 3 columns, not 1000 x 256 strings


def test_the_frame_reads_sensors_and_timestamps_as_before() -> None:
    records = [_record(0), {"timestamp": "2025-06-01T12:01:00Z", "Eng_RPM": "1751.5"},
               {"timestamp": "2025-06-01T12:02:00Z", "Eng_RPM": "n/a", "Motor_Temperature_C": None}]

    frame = records_frame(records, SENSORS)

    assert frame["Eng_RPM"].tolist()[:2] == [1750.0, 1751.5] and np.isnan(frame["Eng_RPM"][2])
    assert frame["Motor_Temperature_C"].isna().tolist() == [False, True, True]
    assert str(frame["timestamp"].dt.tz) == "UTC"
    with pytest.raises(IncompatibleRecordsError, match="Motor_Temperature_C"):
        records_frame([{"Eng_RPM": 1.0}], SENSORS)
    untimed = records_frame([{"Eng_RPM": 1.0, "Motor_Temperature_C": 2.0}] * 3, SENSORS)
    assert untimed["timestamp"].diff().dropna().dt.total_seconds().tolist() == [60.0, 60.0]
    with pytest.raises(IncompatibleRecordsError, match="non-decreasing"):
        records_frame([_record(5), _record(1)], SENSORS)


# ---------------------------------------------------------------- the request's bounds


def _body(records: list[dict[str, Any]]) -> dict[str, Any]:
    return {"machine_name": NAME.machine_name, "indicator": "status", "records": records}


def test_a_long_text_value_is_refused_naming_its_record_and_key() -> None:
    records = [_record(0), _record(1), _record(2, Eng_RPM="9" * (MAX_TEXT_VALUE_LENGTH + 1))]

    with pytest.raises(ValidationError) as invalid:
        PredictRequest.model_validate(_body(records))

    assert [e["loc"] for e in invalid.value.errors()] == [("records", 2, "Eng_RPM")]
    assert PredictRequest.model_validate(_body([_record(0, note="y" * MAX_TEXT_VALUE_LENGTH)]))


def test_a_record_with_too_many_keys_is_refused_naming_the_record() -> None:
    wide = _record(1, **{f"k{i}": 1.0 for i in range(MAX_RECORD_KEYS)})

    with pytest.raises(ValidationError) as invalid:
        PredictRequest.model_validate(_body([_record(0), wide]))

    assert [e["loc"] for e in invalid.value.errors()] == [("records", 1)]


def test_only_the_first_bad_record_is_reported() -> None:
    bad = _record(0, note="z" * 1000)

    with pytest.raises(ValidationError) as invalid:
        PredictRequest.model_validate(_body([bad] * 1000))

    assert len(invalid.value.errors()) == 1


def _predict_event(load_event: Callable[[str], dict[str, Any]], body: dict[str, Any]) -> dict[str, Any]:
    event = load_event("post_train")
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/predict"
    event["routeKey"] = event["requestContext"]["routeKey"] = "POST /predict"
    event["body"] = json.dumps(body)
    return event


def test_the_predict_route_answers_422_naming_record_and_key(
    load_event: Callable[[str], dict[str, Any]], lambda_context: Any
) -> None:
    never = ChampionCache(_Registry(), _Artifacts(), 60)  # never reached: validation comes first
    predict_handler.app.append_context(cache=never)
    body = _body([_record(0), _record(1, timestamp="2025-06-01T12:01:00Z" + " " * 100)])

    response = resolve_json(predict_handler.app, _predict_event(load_event, body), lambda_context)

    assert response["statusCode"] == 422
    assert [e["loc"] for e in json.loads(response["body"])["detail"]] == [["body", "records", 1, "timestamp"]]


# ---------------------------------------------------------------- the prediction log lines


def _artifact() -> bytes:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(200, 2))
    booster = xgb.train({"objective": "binary:logistic", "nthread": 1},
                        xgb.DMatrix(x, label=(x[:, 0] > 0).astype(float), feature_names=SENSORS), 3)
    return bytes(booster.save_raw(raw_format="ubj"))


ARTIFACT = _artifact()


class _Registry:
    def champion_pointer(self, name: ModelName) -> ChampionPointer | None:
        return ChampionPointer(name=NAME, champion_version="v1", revision=1)

    def get_version(self, name: ModelName, version: str) -> ModelVersion | None:
        return ModelVersion(model_name=NAME, version="v1", machine_name=NAME.machine_name, indicator=NAME.indicator,
                            artifact_uri="s3://models/v1.ubj", artifact_sha256=hashlib.sha256(ARTIFACT).hexdigest(),
                            feature_names=SENSORS, metrics={"threshold": 0.5})


class _Artifacts:
    def get_verified(self, uri: str, expected_sha256: str, version_id: str | None = None) -> bytes:
        return ARTIFACT


@pytest.fixture
def log_lines() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """The JSON lines the shared Powertools logger writes while a test runs."""
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    previous_stream, previous_level = handler.setStream(buffer), logger.log_level
    logger.setLevel(logging.INFO)
    try:
        yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]
    finally:
        handler.setStream(previous_stream)
        logger.setLevel(previous_level)


def test_one_line_per_request_with_its_outcome_and_never_the_clients_strings(
    log_lines: Callable[[], list[dict[str, Any]]]
) -> None:
    secret = "s" * MAX_TEXT_VALUE_LENGTH
    records = [_record(0, operator_note=secret),
               {"timestamp": "2025-06-01T12:01:00Z", "Eng_RPM": "1751.5", "Motor_Temperature_C": "hot " * 16},
               {"timestamp": "2025-06-01T12:02:00Z", "Eng_RPM": 1752}]
    request = PredictRequest.model_validate(_body(records))

    answer = predict_for(request, ChampionCache(_Registry(), _Artifacts(), 60))

    assert len(answer.predictions) == 3
    lines = [line for line in log_lines() if line.get("message") in ("prediction", "predictions")]
    assert len(lines) == 1
    line = lines[0]
    assert (line["first_record_timestamp"], line["last_record_timestamp"]) == (
        "2025-06-01T12:00:00Z", "2025-06-01T12:02:00Z")
    assert line["unreadable_inputs"] == {"Eng_RPM": 0, "Motor_Temperature_C": 2}
    assert line["model_version"] == "v1" and line["batch_size"] == 3
    scores = [p.probability for p in answer.predictions]
    assert line["alarms"] == sum(p.prediction == 1 for p in answer.predictions)
    assert (line["score_min"], line["score_max"]) == (min(scores), max(scores))
    logged = json.dumps(lines)
    assert secret not in logged and "hot hot" not in logged and "operator_note" not in logged


# ---------------------------------------------------------------- MLflow's dataframe_split


def _split(records: list[dict[str, Any]]) -> dict[str, Any]:
    columns = list(dict.fromkeys(key for record in records for key in record))
    return {"machine_name": NAME.machine_name, "indicator": "status",
            "dataframe_split": {"columns": columns, "data": [[r.get(c) for c in columns] for r in records]}}


def test_a_split_body_scores_as_its_records_do() -> None:
    records = [_record(minute) for minute in range(0, 90, 3)]
    records[4]["Eng_RPM"] = "n/a"
    records[7]["Motor_Temperature_C"] = None
    cache = ChampionCache(_Registry(), _Artifacts(), 60)

    as_records = predict_for(PredictRequest.model_validate(_body(records)), cache)
    as_split = predict_for(PredictRequest.model_validate(_split(records)), cache)

    assert as_split.predictions == as_records.predictions and len(as_split.predictions) == 30


def test_a_split_body_is_checked_as_a_table() -> None:
    body = _split([_record(0), _record(1)])
    body["dataframe_split"]["data"][1].pop()
    with pytest.raises(ValidationError, match="row 1 has 2 values for 3 columns"):
        PredictRequest.model_validate(body)
    repeated = _split([_record(0)])
    repeated["dataframe_split"]["columns"][1] = "timestamp"
    with pytest.raises(ValidationError, match="must not repeat"):
        PredictRequest.model_validate(repeated)
    long_text = _split([_record(0), _record(1, Eng_RPM="9" * (MAX_TEXT_VALUE_LENGTH + 1))])
    with pytest.raises(ValidationError) as invalid:
        PredictRequest.model_validate(long_text)
    assert [e["loc"] for e in invalid.value.errors()] == [("dataframe_split", "data", 1, 1)]
    too_many = _split([_record(0)] * (MAX_PREDICT_RECORDS + 1))
    with pytest.raises(ValidationError, match=f"at most {MAX_PREDICT_RECORDS}"):
        PredictRequest.model_validate(too_many)
    with_index = _split([_record(0), _record(1)]) | {}
    with_index["dataframe_split"]["index"] = [0, 1]
    assert PredictRequest.model_validate(with_index).row_count == 2


def test_exactly_one_form_of_telemetry() -> None:
    both = _body([_record(0)]) | {"dataframe_split": _split([_record(0)])["dataframe_split"]}
    neither = {"machine_name": NAME.machine_name, "indicator": "status"}
    for body in (both, neither):
        with pytest.raises(ValidationError, match="exactly one"):
            PredictRequest.model_validate(body)


def test_a_split_without_a_sensor_is_refused_naming_it() -> None:
    records = [{"timestamp": "2025-06-01T12:00:00Z", "Eng_RPM": 1.0}]
    request = PredictRequest.model_validate(_split(records))

    with pytest.raises(InvalidRequestError, match="Motor_Temperature_C"):
        predict_for(request, ChampionCache(_Registry(), _Artifacts(), 60))


@pytest.mark.parametrize(("value", "number"), [
    (1750, 1750.0), (61.5, 61.5), ("1e3", 1000.0), (" 12 ", 12.0), (True, 1.0), ("n/a", None), ("", None),
    (None, None), ("nan", None), (float("inf"), None), ("1_000", None), ("\u0661\u0662", None)])
def test_logged_numbers_are_what_the_model_read(value: Any, number: float | None) -> None:
    import pandas as pd

    assert logged_number(value) == number
    read = pd.to_numeric(pd.Series([value], dtype=object), errors="coerce")[0]
    assert (number is None) == (pd.isna(read) or not np.isfinite(read))
