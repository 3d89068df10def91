"""Scoring telemetry records with a stored model: the records become the features the model was trained on
(the same feature code as training), then ``domain.scoring`` scores them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

import pandas as pd
import xgboost as xgb

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
    """Records in time order, as a frame of the timestamp and the model's sensors only: any other key of a
    record is never made a column (a request's every key would otherwise be one, before any check: 148 KB of
    JSON made an 8 MB frame). Without timestamps the records are taken as consecutive minutes (rolling
    features are time-based). A sensor is missing when no record has it; a record without it, or with a value
    that is not a number, has a missing value there."""
    missing = [s for s in sensors if not any(s in record for record in records)]
    if missing:
        raise IncompatibleRecordsError(f"records lack the model's sensor columns: {', '.join(missing)}")
    columns: dict[str, Any] = {TIMESTAMP: _timestamps(records)}
    for sensor in sensors:
        values = pd.Series([record.get(sensor) for record in records], dtype=object)
        columns[sensor] = pd.to_numeric(values, errors="coerce")  # non-numbers become missing values
    return pd.DataFrame(columns)


def _timestamps(records: Sequence[Mapping[str, Any]]) -> pd.Series:
    if not any(TIMESTAMP in record for record in records):
        return pd.Series(pd.date_range(end=pd.Timestamp.now(tz="UTC").floor("min"), periods=len(records),
                                       freq="min"))
    try:
        stamps = pd.to_datetime(pd.Series([record.get(TIMESTAMP) for record in records], dtype=object), utc=True)
    except (ValueError, TypeError) as error:
        raise IncompatibleRecordsError(f"'{TIMESTAMP}' is not a date-time: {error}") from error
    if stamps.isna().any() or not stamps.is_monotonic_increasing:
        raise IncompatibleRecordsError(f"'{TIMESTAMP}' must be present on every record and non-decreasing")
    return stamps


def predict(model: LoadedModel, records: Sequence[Mapping[str, Any]]) -> list[tuple[float, float | None]]:
    """(prediction, probability) per record: status -> (0/1, score); health -> (minutes to failure, None)."""
    recipe = model_recipe(model)
    frame = records_frame(records, recipe.input_columns)
    matrix, names = recipe.build(frame)
    if tuple(names) != model.feature_names:
        raise IncompatibleRecordsError("the model's features cannot be rebuilt from these records")
    scores = predict_scores(model.booster, matrix)
    if model.indicator == "status":
        decisions = apply_threshold(scores, model.threshold)
        return [(float(decision), float(score)) for decision, score in zip(decisions, scores, strict=True)]
    return [(float(score), None) for score in scores]
