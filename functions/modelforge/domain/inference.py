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

from modelforge.domain.features import FeatureConfig, build_features, config_from_names
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


def sensors_of(feature_names: Sequence[str]) -> tuple[str, ...]:
    # build_features names derived columns "<sensor>__<stat>"; the raw sensors come first and have no "__".
    return tuple(name for name in feature_names if "__" not in name)


@lru_cache(maxsize=64)
def _recipe(feature_names: tuple[str, ...]) -> tuple[tuple[str, ...], FeatureConfig]:
    """A model's feature recipe, parsed once per model rather than on every request."""
    return config_from_names(feature_names)


def records_frame(records: Sequence[Mapping[str, Any]], sensors: Sequence[str]) -> pd.DataFrame:
    """Records in time order. Without timestamps they are taken as consecutive minutes (rolling features are
    time-based)."""
    frame = pd.DataFrame.from_records(list(records))
    missing = [s for s in sensors if s not in frame.columns]
    if missing:
        raise IncompatibleRecordsError(f"records lack the model's sensor columns: {', '.join(missing)}")
    if TIMESTAMP in frame.columns:
        try:
            frame[TIMESTAMP] = pd.to_datetime(frame[TIMESTAMP], utc=True)
        except (ValueError, TypeError) as error:
            raise IncompatibleRecordsError(f"'{TIMESTAMP}' is not a date-time: {error}") from error
        if frame[TIMESTAMP].isna().any() or not frame[TIMESTAMP].is_monotonic_increasing:
            raise IncompatibleRecordsError(f"'{TIMESTAMP}' must be present on every record and non-decreasing")
    else:
        frame[TIMESTAMP] = pd.date_range(end=pd.Timestamp.now(tz="UTC").floor("min"), periods=len(frame),
                                         freq="min")
    for sensor in sensors:
        frame[sensor] = pd.to_numeric(frame[sensor], errors="coerce")  # non-numbers become missing values
    return frame


def predict(model: LoadedModel, records: Sequence[Mapping[str, Any]]) -> list[tuple[float, float | None]]:
    """(prediction, probability) per record: status -> (0/1, score); health -> (minutes to failure, None)."""
    frame = records_frame(records, model.sensors)
    try:
        sensors, config = _recipe(model.feature_names)
    except ValueError as error:
        raise IncompatibleRecordsError(f"the model's features cannot be rebuilt: {error}") from error
    matrix, names = build_features(frame, sensors, config)
    if tuple(names) != model.feature_names:
        raise IncompatibleRecordsError("the model's features cannot be rebuilt from these records")
    scores = predict_scores(model.booster, matrix)
    if model.indicator == "status":
        decisions = apply_threshold(scores, model.threshold)
        return [(float(decision), float(score)) for decision, score in zip(decisions, scores, strict=True)]
    return [(float(score), None) for score in scores]
