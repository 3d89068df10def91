"""Captured predictions in the data bucket, like SageMaker's data capture: JSON-lines objects of captured
``/predict`` records (one line per record), partitioned by model and day, so that a check reads a model's days
and nothing else:

    s3://<data bucket>/capture/<machine>#<indicator>/<yyyy>/<mm>/<dd>/<request id>.jsonl

One object holds the requests a warm container buffered (``logic.predict.CaptureBuffer``), named by the first
of them. The day is that request's (UTC). The prediction function may only PutObject under ``capture/``; the drift
function lists and reads it (template.yaml, tests/unit/test_sam_transform.py::ROLE_GRANTS).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from json.encoder import encode_basestring_ascii
from typing import TYPE_CHECKING, Any

from modelforge.adapters.aws import client

if TYPE_CHECKING:
    from modelforge.domain.live import CapturedRows

DEFAULT_PREFIX = "capture"
# One encoder for every line: json.dumps with any option builds a new encoder per call, most of a line's cost.
_LINE = json.JSONEncoder(separators=(",", ":"))
READ_THREADS = 16  # one GET per object: a check reads many small objects in parallel


class PredictionCaptureStore:
    def __init__(self, bucket: str, prefix: str = DEFAULT_PREFIX, s3: Any | None = None) -> None:
        self._bucket = bucket
        self._prefix = prefix.strip("/")
        self._s3 = s3 if s3 is not None else client("s3")

    def day_prefix(self, model_key: str, day: date) -> str:
        return f"{self._prefix}/{model_key}/{day:%Y/%m/%d}/"

    def key(self, model_key: str, at: datetime, request_id: str) -> str:
        return f"{self.day_prefix(model_key, at.date())}{request_id}.jsonl"

    def put_rows(self, model_key: str, at: datetime, object_id: str, rows: Sequence[CapturedRows]) -> str:
        """Writes buffered requests' records as one object, a JSON line per record; returns its key."""
        key = self.key(model_key, at, object_id)
        body = "".join(map(encode_rows, rows))
        self._s3.put_object(Bucket=self._bucket, Key=key, Body=body.encode(), ContentType="application/jsonl")
        return key

    def read(self, model_key: str, start: date, end: date, *, max_objects: int) -> list[dict[str, Any]]:
        """The captured lines of ``model_key`` from ``start`` to ``end`` (request days, inclusive), from at most
        ``max_objects`` objects, the newest days first."""
        keys: list[str] = []
        for day in _days_newest_first(start, end):
            keys += self._keys(self.day_prefix(model_key, day))
            if len(keys) >= max_objects:
                keys = keys[:max_objects]
                break
        with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
            bodies = list(pool.map(self._get, keys))
        return [json.loads(line) for body in bodies for line in body.splitlines() if line.strip()]

    def _keys(self, prefix: str) -> list[str]:
        paginator = self._s3.get_paginator("list_objects_v2")
        return [entry["Key"] for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix)
                for entry in page.get("Contents", [])]

    def _get(self, key: str) -> str:
        return str(self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read().decode())


def encode_rows(rows: CapturedRows) -> str:
    """One request's records as JSON lines, the text ``_LINE`` makes of each record's dict (the same keys in
    the same order), column by column, with the request's own fields encoded once rather than per record."""
    shared = f',"model_name":{_text(rows.model_name)},"model_version":{_text(rows.model_version)},"score":'
    tail = f',"captured_at":{_text(rows.captured_at)},"request_id":{_text(rows.request_id)}}}\n'
    alarms = _column(rows.alarms) if rows.alarms is not None else ["null"] * len(rows.predictions)
    return "".join([
        f'{{"timestamp":{stamp},"machine_name":{machine}{shared}{score},"prediction":{prediction},'
        f'"alarm":{alarm}{tail}'
        for stamp, machine, score, prediction, alarm in zip(
            _column(rows.timestamps), _column(rows.machines), _column(rows.scores), _column(rows.predictions),
            alarms, strict=True)])


def _column(values: Sequence[Any]) -> list[str]:
    """Each value as json writes it; a column of one type (as they are) in one pass."""
    if all(type(v) is float for v in values) and all(map(math.isfinite, values)):
        return list(map(float.__repr__, values))
    if all(type(v) is str for v in values):
        return list(map(encode_basestring_ascii, values))
    if all(type(v) is bool for v in values):
        return ["true" if v else "false" for v in values]
    return [_value(v) for v in values]


def _text(value: str) -> str:
    return encode_basestring_ascii(value)


def _value(value: Any) -> str:
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, str):
        return encode_basestring_ascii(value)
    if type(value) is float and math.isfinite(value):
        return float.__repr__(value)  # what json writes of a finite float
    return _LINE.encode(value)  # NaN, infinities and anything else, as json writes them


def _days_newest_first(start: date, end: date) -> Iterator[date]:
    day = end
    while day >= start:
        yield day
        day -= timedelta(days=1)
