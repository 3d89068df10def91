"""Scoring telemetry records with a stored model: the records become the features the model was trained on
(the same feature code as training), then ``domain.scoring`` scores them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb

from modelforge.domain.features import feature_matrix, timestamps_ns
from modelforge.domain.recipe import FeatureRecipe
from modelforge.domain.scoring import apply_threshold, predict_scores
from modelforge.domain.telemetry import TIMESTAMP
from modelforge.errors import IncompatibleRecordsError


@dataclass(frozen=True)
class LoadedModel:
    """A champion ready to serve: its booster, and what turning records into its features needs."""

    version: str
    indicator: str
    booster: xgb.Booster
    feature_names: tuple[str, ...]
    sensors: tuple[str, ...]
    threshold: float | None  # None: no recorded decision threshold (scoring then uses 0.5)
    trained_at: datetime | None
    recipe: FeatureRecipe | None = None  # the stored recipe document; None: rebuilt from the feature names


def sensors_of(feature_names: Sequence[str]) -> tuple[str, ...]:
    # build_features names derived columns "<sensor>__<stat>"; the raw sensors come first and have no "__".
    return tuple(name for name in feature_names if "__" not in name)


@lru_cache(maxsize=64)
def _recipe_from_names(feature_names: tuple[str, ...]) -> FeatureRecipe:
    """An older model's feature recipe, parsed once per model rather than on every request."""
    return FeatureRecipe.from_feature_names(feature_names)


def model_recipe(model: LoadedModel) -> FeatureRecipe:
    if model.recipe is not None:
        return model.recipe
    try:
        return _recipe_from_names(model.feature_names)
    except ValueError as error:
        raise IncompatibleRecordsError(f"the model's features cannot be rebuilt: {error}") from error


def records_frame(records: Sequence[Mapping[str, Any]], sensors: Sequence[str]) -> pd.DataFrame:
    """Records in time order, as a frame of the timestamp and the model's sensors only (see
    :func:`columns_frame`)."""
    names = [TIMESTAMP, *sensors]
    columns = {name: [record.get(name) for record in records] for name in names
               if any(name in record for record in records)}
    return columns_frame(columns, len(records), sensors)


@dataclass(frozen=True)
class RequestColumns:
    """A request's rows as arrays: nanosecond timestamps and each input column's numbers (NaN: missing)."""

    stamps_ns: np.ndarray
    values: dict[str, np.ndarray]

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame({TIMESTAMP: pd.to_datetime(self.stamps_ns, utc=True), **self.values})


def request_columns(columns: Mapping[str, Sequence[Any]], length: int, sensors: Sequence[str]) -> RequestColumns:
    """What :func:`columns_frame` reads, as arrays, with the same checks: the serving path builds no frame."""
    missing = [s for s in sensors if s not in columns]
    if missing:
        raise IncompatibleRecordsError(f"records lack the model's sensor columns: {', '.join(missing)}")
    stamps = timestamps_ns(_timestamps(columns.get(TIMESTAMP), length))
    return RequestColumns(stamps, {sensor: _numbers(columns[sensor]) for sensor in sensors})


def columns_frame(columns: Mapping[str, Sequence[Any]], length: int, sensors: Sequence[str]) -> pd.DataFrame:
    """``length`` rows in time order, given as the values of each column the request has, as a frame of the
    timestamp and the model's sensors only: any other column of a request is never made one (a request's
    every key would otherwise be one, before any check: 148 KB of JSON made an 8 MB frame). Without timestamps
    the rows are taken as consecutive minutes (rolling features are time-based). A sensor is missing when no
    row has it; a row without it, or with a value that is not a number, has a missing value there."""
    missing = [s for s in sensors if s not in columns]
    if missing:
        raise IncompatibleRecordsError(f"records lack the model's sensor columns: {', '.join(missing)}")
    frame: dict[str, Any] = {TIMESTAMP: _timestamps(columns.get(TIMESTAMP), length)}
    for sensor in sensors:
        frame[sensor] = _numbers(columns[sensor])
    return pd.DataFrame(frame)


def _numbers(values: Sequence[Any]) -> np.ndarray:
    """What ``pd.to_numeric(..., errors="coerce")`` makes of the values (non-numbers become missing), without
    its object-array pass when every value is already a number or missing, as a JSON body's mostly are."""
    if set(map(type, values)) <= _PLAIN_NUMBERS:  # a bool is read by the slow path; one pass in C
        return np.array(values, dtype="float64")  # None becomes NaN
    return pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(dtype="float64")


_PLAIN_NUMBERS = {float, int, type(None)}


def _timestamps(values: Sequence[Any] | None, length: int) -> pd.Series:
    if values is None:
        return pd.Series(pd.date_range(end=pd.Timestamp.now(tz="UTC").floor("min"), periods=length, freq="min"))
    texts = pd.Series(values, dtype=object)
    try:
        stamps = _iso_timestamps(texts) if all(isinstance(v, str) for v in values) else None
        stamps = pd.to_datetime(texts, utc=True) if stamps is None else stamps
    except (ValueError, TypeError) as error:
        raise IncompatibleRecordsError(f"'{TIMESTAMP}' is not a date-time: {error}") from error
    if stamps.isna().any() or not stamps.is_monotonic_increasing:
        raise IncompatibleRecordsError(f"'{TIMESTAMP}' must be present on every record and non-decreasing")
    return stamps


def unreadable_counts(frame: pd.DataFrame | RequestColumns, sensors: Sequence[str]) -> dict[str, int]:
    """Per sensor, the rows whose value the model could not read as a finite number."""
    values = frame.values if isinstance(frame, RequestColumns) else {s: frame[s].to_numpy("float64") for s in sensors}
    return {sensor: len(values[sensor]) - int(np.isfinite(values[sensor]).sum()) for sensor in sensors}


def _iso_timestamps(texts: pd.Series) -> pd.Series | None:
    """ISO 8601 text, as clients send it, read without guessing its format first (most of reading a short
    request's times); None for text in any other form, which the general parse reads as before."""
    try:
        return pd.to_datetime(texts, utc=True, format="ISO8601")
    except (ValueError, TypeError):
        return None


@dataclass(frozen=True)
class Scored:
    """A request's answers, one per row: status -> 0/1 decisions and failure scores; health -> minutes to
    failure, no probabilities."""

    predictions: np.ndarray
    probabilities: np.ndarray | None


def predict(model: LoadedModel, frame: pd.DataFrame | RequestColumns) -> Scored:
    """Scores the rows of ``frame`` (:func:`columns_frame`, or :func:`request_columns`' arrays) with the model,
    on the features it was trained on."""
    recipe = model_recipe(model)
    if isinstance(frame, RequestColumns) and recipe.regimes is None:
        # Straight from the arrays: the same feature code as recipe.build, without a frame in between.
        values = np.column_stack([frame.values[s] for s in recipe.sensors]) if recipe.sensors else \
            np.empty((len(frame.stamps_ns), 0))
        matrix, names = feature_matrix(values, frame.stamps_ns, recipe.features), recipe.feature_names
    else:
        matrix, names = recipe.build(frame.frame() if isinstance(frame, RequestColumns) else frame)
    if tuple(names) != model.feature_names:
        raise IncompatibleRecordsError("the model's features cannot be rebuilt from these records")
    scores = predict_scores(model.booster, matrix)
    if model.indicator == "status":
        decisions = apply_threshold(scores, model.threshold)  # on the model's own float32 scores, as always
        return Scored(predictions=decisions.astype("float64"), probabilities=scores.astype("float64"))
    return Scored(predictions=scores.astype("float64"), probabilities=None)
