"""Predictions from the champion, kept in memory across invocations and swapped when a new one is promoted.

The registry's champion pointer is read at most every ``refresh_seconds`` (one GetItem). A new champion is
loaded only if its artifact's sha256 matches the registry; otherwise the error is logged and the model
already in memory keeps serving.

Each request's predictions are also captured (:func:`capture_predictions`: one JSON-lines object per sampled
request in the data bucket, like SageMaker's data capture), the ground truth of the drift check's live recall
(``modelforge.domain.live``). The capture is best effort: a failed write is logged and the answer still goes out.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from modelforge.domain.names import MACHINE_NAME_PATTERN
from modelforge.errors import ArtifactIntegrityError, IncompatibleRecordsError, InvalidRequestError, NoChampionError
from modelforge.logic.clock import utc_now
from modelforge.logic.recipes import load_recipe
from modelforge.observability import logger
from modelforge.registry import ChampionPointer, ModelName, ModelVersion
from modelforge.schemas import MAX_TEXT_VALUE_LENGTH, PredictRequest, PredictResponse

RECORD_TIMESTAMP = "timestamp"  # domain.telemetry.TIMESTAMP, named here so this module need not import pandas
RECORD_MACHINE = "machine_name"  # a fleet model's record may name its machine


def logged_number(value: Any) -> float | None:
    """A sensor value as the model read it (a number, or a missing value): what ``pd.to_numeric(...,
    errors="coerce")`` makes of numbers and numeric text; anything else, and non-finite numbers, None."""
    if isinstance(value, str) and (not value.isascii() or "_" in value):
        return None  # float() reads "1_000" and non-ASCII digits; pandas does not
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def logged_timestamp(value: Any) -> str | float | None:
    """The record's timestamp as sent (a number as a number; text within the request's bound, which
    PredictRequest already enforces), None without one."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return logged_number(value)
    return str(value)[:MAX_TEXT_VALUE_LENGTH]


class Registry(Protocol):
    def champion_pointer(self, name: ModelName) -> ChampionPointer | None: ...
    def get_version(self, name: ModelName, version: str) -> ModelVersion | None: ...


class ArtifactVerifier(Protocol):
    def get_verified(self, uri: str, expected_sha256: str, version_id: str | None = None) -> bytes: ...


@dataclass
class _Entry:
    model: Any  # modelforge.domain.inference.LoadedModel
    checked_at: float


class ChampionCache:
    def __init__(self, registry: Registry, artifacts: ArtifactVerifier, refresh_seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._registry = registry
        self._artifacts = artifacts
        self._refresh = refresh_seconds
        self._clock = clock
        self._entries: dict[ModelName, _Entry] = {}

    def champion(self, name: ModelName) -> Any:
        entry = self._entries.get(name)
        now = self._clock()
        if entry is not None and now - entry.checked_at < self._refresh:
            return entry.model
        pointer = self._registry.champion_pointer(name)
        if pointer is None:
            raise NoChampionError(f"{name.label} has no champion model yet: train one first")
        version = pointer.champion_version
        if entry is None or entry.model.version != version:
            try:
                model = self._load(name, version)
            except ArtifactIntegrityError:
                logger.exception("refused to load the new champion", extra={"model_name": name.key,
                                                                            "version": version})
                if entry is None:
                    raise
                entry.checked_at = now  # keep serving the verified model; look again after the interval
                return entry.model
            logger.info("champion loaded", extra={"model_name": name.key, "version": version})
            entry = self._entries[name] = _Entry(model, now)
        entry.checked_at = now
        return entry.model

    def _load(self, name: ModelName, version: str) -> Any:
        from modelforge.domain.inference import LoadedModel, sensors_of
        from modelforge.domain.scoring import load_booster

        champion = self._registry.get_version(name, version)
        if champion is None:
            raise NoChampionError(f"the champion {version} of {name.label} is missing from the registry")
        booster = load_booster(self._artifacts.get_verified(*champion.artifact))
        features = tuple(champion.feature_names)
        recipe = load_recipe(champion, self._artifacts)
        return LoadedModel(version=version, indicator=champion.indicator.value, booster=booster,
                           feature_names=features, sensors=recipe.input_columns if recipe else sensors_of(features),
                           threshold=champion.decision_threshold, trained_at=champion.trained_at, recipe=recipe)


class BufferedCaptureStore(Protocol):
    def put_rows(self, model_key: str, at: datetime, object_id: str, rows: Sequence[Any]) -> str: ...


@dataclass
class _Pending:
    at: datetime  # the first request's time: the object's day and name
    object_id: str
    since: float  # the clock when the first request was buffered
    rows: list[Any]  # domain.live.CapturedRows
    count: int = 0


class CaptureBuffer:
    """Captured records kept in the warm container, per model and day, and written as one object when a
    buffer holds ``flush_rows`` records or its oldest is ``flush_seconds`` old (``domain.live.CaptureConfig``),
    checked at each request: a request then costs an append, and the put is shared by many. The flush is
    best effort, as each capture was: a failed write is logged and its records dropped, never retried into
    an answer's time."""

    def __init__(self, store: BufferedCaptureStore, *, flush_rows: int, flush_seconds: float,
                 clock: Callable[[], float] = time.time) -> None:
        # The wall clock, not the monotonic one: a frozen Lambda container's monotonic clock need not advance
        # between invocations, and the age bound is about time on the wall (how late the drift check sees it).
        self._store = store
        self._rows = flush_rows
        self._seconds = flush_seconds
        self._clock = clock
        self._pending: dict[tuple[str, Any], _Pending] = {}

    def add(self, at: datetime, request_id: str, rows: Any) -> list[str]:
        """Buffers one request's records; returns the keys of the objects this call wrote."""
        now = self._clock()
        pending = self._pending.setdefault((rows.model_name, at.date()), _Pending(at, request_id, now, []))
        pending.rows.append(rows)
        pending.count += len(rows.predictions)
        return self.flush(lambda p: p.count >= self._rows or now - p.since >= self._seconds)

    def flush(self, due: Callable[[_Pending], bool] = lambda _: True) -> list[str]:
        """Writes every buffer ``due`` says (all, by default); returns the keys written."""
        written = []
        for name in [name for name, pending in self._pending.items() if due(pending)]:
            pending = self._pending.pop(name)
            try:
                written.append(self._store.put_rows(name[0], pending.at, pending.object_id, pending.rows))
            except Exception:  # best effort, as SageMaker's capture: the predictions were served all the same
                logger.exception("prediction capture failed", extra={
                    "model_name": name[0], "request_id": pending.object_id, "records_lost": pending.count})
        return written

    @property
    def buffered(self) -> int:
        return sum(p.count for p in self._pending.values())


@dataclass(frozen=True)
class Capture:
    """Where and how one request's predictions are captured: into the warm container's ``buffer``."""

    buffer: CaptureBuffer
    request_id: str
    sample_rate: float  # domain.live.CaptureConfig.sample_rate, or the deployment's override
    now: Callable[[], datetime] = utc_now


def predict_for(request: PredictRequest, cache: ChampionCache, capture: Capture | None = None) -> PredictResponse:
    from modelforge.domain.inference import model_recipe, predict, request_columns, unreadable_counts

    started = time.perf_counter()
    model = cache.champion(ModelName(request.machine_name, request.indicator))
    try:
        inputs = model_recipe(model).input_columns  # the sensors, and a regime model's operating settings
        columns = request.columns([RECORD_TIMESTAMP, RECORD_MACHINE, *inputs])
        frame = request_columns(columns, request.row_count, inputs)
        scored = predict(model, frame)
    except IncompatibleRecordsError as error:
        raise InvalidRequestError("records", str(error)) from error
    predictions = scored.predictions.tolist()
    probabilities = [None] * len(predictions) if scored.probabilities is None else scored.probabilities.tolist()
    _log_request(request, model, columns.get(RECORD_TIMESTAMP), unreadable_counts(frame, model.sensors),
                 predictions, probabilities, (time.perf_counter() - started) * 1000)
    # Validated from plain dicts: pydantic builds the 1,000 Prediction objects in its core, 8 times faster
    # than constructing them one by one here.
    response = PredictResponse.model_validate({
        "machine_name": request.machine_name, "indicator": request.indicator, "model_version": model.version,
        "trained_at": model.trained_at,
        "predictions": [{"prediction": p, "probability": q} for p, q in zip(predictions, probabilities, strict=True)]})
    if capture is not None:
        capture_predictions(request, response, capture, columns=columns, scored=(predictions, probabilities))
    return response


def _log_request(request: PredictRequest, model: Any, stamps: Sequence[Any] | None, unreadable: dict[str, int],
                 predictions: Sequence[float], probabilities: Sequence[float | None], latency_ms: float) -> None:
    """One JSON line per request (not per record: at 1,000 records the lines cost 25 times the model): what
    was scored and how it came out. The records' own outputs, with their times and machines, are in the
    capture (:func:`capture_predictions`), which the drift check reads. Of the inputs, how many values of each
    of the model's sensors it could not read as numbers, and the records' first and last timestamps (under keys of
    their own: Powertools keeps "timestamp" for the line's time), never the client's strings."""
    scores = [p for p in probabilities if p is not None] or list(predictions)
    logger.info("predictions", extra={
        "machine_name": request.machine_name, "indicator": request.indicator.value, "model_version": model.version,
        "batch_size": len(predictions), "latency_ms": round(latency_ms, 3),
        "alarms": sum(p >= 1 for p in predictions) if request.indicator.value == "status" else None,
        "score_min": min(scores), "score_max": max(scores), "score_mean": sum(scores) / len(scores),
        "first_record_timestamp": logged_timestamp(stamps[0]) if stamps else None,
        "last_record_timestamp": logged_timestamp(stamps[-1]) if stamps else None,
        "unreadable_inputs": unreadable})


def capture_predictions(request: PredictRequest, response: PredictResponse, capture: Capture, *,
                        columns: Mapping[str, Sequence[Any]] | None = None,
                        scored: tuple[list[float], list[float | None]] | None = None) -> str | None:
    """The request's records (if sampled): what the live-recall check needs of each (the record's time and
    machine, the model version, the score and the alarm decision). A status model's alarm is its 0/1
    prediction; a health model's (minutes predicted) is decided by the check, which knows the model's window.
    ``columns``: the request's timestamp and machine columns, and ``scored`` its predictions and
    probabilities, when already at hand. Returns the key of the object written, None when not sampled, only
    buffered, or not written."""
    from modelforge.domain.live import CapturedRows, is_sampled

    if not is_sampled(capture.request_id, capture.sample_rate):
        return None
    if columns is None:
        columns = request.columns([RECORD_TIMESTAMP, RECORD_MACHINE])
    if scored is None:
        scored = ([p.prediction for p in response.predictions], [p.probability for p in response.predictions])
    at = capture.now()
    status = request.indicator.value == "status"
    model_key = ModelName(request.machine_name, request.indicator).key
    predictions, probabilities = scored
    count = len(predictions)
    named = columns.get(RECORD_MACHINE)
    rows = CapturedRows(
        model_name=model_key, model_version=response.model_version, request_id=capture.request_id,
        captured_at=at.isoformat(),
        timestamps=[logged_timestamp(v) for v in columns.get(RECORD_TIMESTAMP) or [None] * count],
        machines=[_record_machine(v, request) for v in named] if named else [request.machine_name] * count,
        scores=list(probabilities) if status else list(predictions), predictions=list(predictions),
        alarms=[p >= 1 for p in predictions] if status else None)
    written = capture.buffer.add(at, capture.request_id, rows)
    return written[-1] if written else None


def _record_machine(named: Any, request: PredictRequest) -> str:
    """A fleet model's record names its machine (``machine_name``) when the client sends it; otherwise the
    records are the model's own machine's."""
    return named if isinstance(named, str) and re.fullmatch(MACHINE_NAME_PATTERN, named) else request.machine_name
