"""A model's feature recipe as one typed, versioned document: which sensors, which rolling statistics over
which windows, and the fitted operating-regime transform. Training stores it beside the model (sha256-checked
like the model), and ``/predict`` and the drift checks rebuild the model's features from it alone, so a model
whose features depend on fitted numbers (regime centres, per-regime statistics) is served exactly as trained.

Models stored before the document existed are rebuilt from their feature names
(:meth:`FeatureRecipe.from_feature_names`), which is all their recipe was.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from modelforge.domain.features import FeatureConfig, build_features, config_from_names, feature_names
from modelforge.domain.regimes import RegimeModel

RECIPE_VERSION = 1


@dataclass(frozen=True)
class FeatureRecipe:
    sensors: tuple[str, ...]
    features: FeatureConfig
    regimes: RegimeModel | None = None
    version: int = RECIPE_VERSION

    @property
    def feature_names(self) -> list[str]:
        return feature_names(self.sensors, self.features)

    @property
    def input_columns(self) -> tuple[str, ...]:
        """The columns a record must carry: the sensors, then the operating settings the regimes read."""
        settings = self.regimes.settings if self.regimes is not None else ()
        return tuple(self.sensors) + tuple(s for s in settings if s not in self.sensors)

    def build(self, frame: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
        """``frame`` (sorted by timestamp) as the model's feature matrix: regime-normalized, then rolled."""
        if self.regimes is not None:
            frame = self.regimes.normalize(frame)
        return build_features(frame, self.sensors, self.features)

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "sensors": list(self.sensors),
                "features": {"windows_minutes": list(self.features.windows_minutes),
                             "statistics": list(self.features.statistics),
                             "trend_window_minutes": self.features.trend_window_minutes},
                "regimes": None if self.regimes is None else self.regimes.to_dict(),
                "feature_names": self.feature_names}

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), allow_nan=False, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes | str) -> FeatureRecipe:
        """Raises ValueError when the document is not a recipe of a version this code reads."""
        try:
            doc = json.loads(data)
            if doc.get("version") != RECIPE_VERSION:
                raise ValueError(f"feature recipe version {doc.get('version')!r} is not {RECIPE_VERSION}")
            features = FeatureConfig(windows_minutes=tuple(doc["features"]["windows_minutes"]),
                                     statistics=tuple(doc["features"]["statistics"]),
                                     trend_window_minutes=doc["features"]["trend_window_minutes"])
            regimes = None if doc.get("regimes") is None else RegimeModel.from_dict(doc["regimes"])
            recipe = cls(sensors=tuple(doc["sensors"]), features=features, regimes=regimes)
        except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as error:
            raise ValueError(f"not a feature recipe document: {error!r}") from error
        if recipe.feature_names != list(doc.get("feature_names", recipe.feature_names)):
            raise ValueError("the recipe's feature names do not follow from its sensors and statistics")
        return recipe

    @classmethod
    def from_feature_names(cls, names: Sequence[str]) -> FeatureRecipe:
        sensors, config = config_from_names(names)
        return cls(sensors=sensors, features=config)
