"""Operating regimes: the conditions (load, altitude, throttle...) a machine runs under, found from the columns
that describe them (``options.operating_settings``), and each sensor standardized per regime.

A sensor's normal reading depends on the condition it is read under (NASA C-MAPSS FD002: six flight conditions
move every sensor more than a whole degradation does), so a rolling statistic of the raw reading mostly tracks
the condition changes. Standardizing each sensor with the mean and spread of its own regime leaves the
deviation from that condition's normal, which is what degradation shows as.

Regimes are k-means clusters of the standardized settings, fitted on the rows training is given (never on the
rows served later); ``auto`` chooses k by the silhouette of a seeded sample of rows: the k in 2..``max_auto``
with the highest mean silhouette, if it reaches ``min_silhouette`` (well-separated operating points), else one
regime (settings that only jitter around one condition, as in FD001, are noise, not regimes). The fitted
:class:`RegimeModel` holds every number the transform needs, so serving rebuilds it exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

REGIME_CHOICES = ("auto", "none")


@dataclass(frozen=True)
class RegimeConfig:
    settings: tuple[str, ...] = ()  # the columns that describe the operating condition
    regimes: str | int = "none"  # "auto", a number of regimes, or "none" (no per-regime standardization)
    max_auto: int = 8
    min_silhouette: float = 0.7  # unimodal noise splits at about 0.4-0.6 (1-D Gaussian: 0.56); operating points: ~1
    silhouette_sample: int = 2000
    seed: int = 42

    def __post_init__(self) -> None:
        if isinstance(self.regimes, str) and self.regimes not in REGIME_CHOICES:
            raise ValueError(f"regimes must be 'auto', 'none' or a number, not {self.regimes!r}")
        if isinstance(self.regimes, int) and not 1 <= self.regimes <= 50:
            raise ValueError("regimes must be between 1 and 50")
        if self.enabled and not self.settings:
            raise ValueError("regimes need the operating settings that define them")

    @property
    def enabled(self) -> bool:
        return self.regimes != "none"


@dataclass(frozen=True)
class RegimeModel:
    """The fitted transform: settings scaler, cluster centres (in scaled units), per-regime sensor statistics."""

    settings: tuple[str, ...]
    setting_mean: tuple[float, ...]
    setting_scale: tuple[float, ...]
    centers: tuple[tuple[float, ...], ...]
    sensors: tuple[str, ...]  # the sensors standardized (those that vary within some regime)
    sensor_mean: tuple[tuple[float, ...], ...]  # [regime][sensor]
    sensor_scale: tuple[tuple[float, ...], ...]
    criterion: str  # how k was chosen, for the record

    def assign(self, frame: pd.DataFrame) -> np.ndarray:
        """The regime of each row: the nearest centre (a missing setting counts as its training mean)."""
        scaled = (frame[list(self.settings)].to_numpy(dtype="float64") - self.setting_mean) / self.setting_scale
        scaled = np.nan_to_num(scaled, nan=0.0)
        return _nearest(scaled, np.asarray(self.centers, dtype="float64"))

    def normalize(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` with each of ``sensors`` replaced by its standardized reading within the row's regime."""
        regime = self.assign(frame)
        values = frame[list(self.sensors)].to_numpy(dtype="float64")
        normalized = (values - np.asarray(self.sensor_mean)[regime]) / np.asarray(self.sensor_scale)[regime]
        out = frame.copy()
        out[list(self.sensors)] = normalized
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"settings": list(self.settings), "setting_mean": list(self.setting_mean),
                "setting_scale": list(self.setting_scale), "centers": [list(c) for c in self.centers],
                "sensors": list(self.sensors), "sensor_mean": [list(m) for m in self.sensor_mean],
                "sensor_scale": [list(s) for s in self.sensor_scale], "criterion": self.criterion}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RegimeModel:
        k, width = len(data["centers"]), len(data["sensors"])
        if any(len(row) != width for row in data["sensor_mean"] + data["sensor_scale"]) or \
                len(data["sensor_mean"]) != k or len(data["sensor_scale"]) != k:
            raise ValueError("the regime model's per-regime statistics do not match its regimes and sensors")
        return cls(settings=tuple(data["settings"]), setting_mean=tuple(data["setting_mean"]),
                   setting_scale=tuple(data["setting_scale"]),
                   centers=tuple(tuple(float(v) for v in c) for c in data["centers"]),
                   sensors=tuple(data["sensors"]),
                   sensor_mean=tuple(tuple(float(v) for v in m) for m in data["sensor_mean"]),
                   sensor_scale=tuple(tuple(float(v) for v in s) for s in data["sensor_scale"]),
                   criterion=str(data.get("criterion", "")))


def fit_regimes(frames: Sequence[pd.DataFrame], sensors: Sequence[str], config: RegimeConfig) -> RegimeModel:
    """Regimes and per-regime sensor statistics from the training rows (every machine's, pooled)."""
    pooled = pd.concat([f[list(config.settings) + list(sensors)] for f in frames], ignore_index=True)
    raw = pooled[list(config.settings)].to_numpy(dtype="float64")
    mean = np.nanmean(raw, axis=0)
    spread = np.nanstd(raw, axis=0)
    scale = np.where(spread > 1e-12, spread, 1.0)  # a constant setting: no axis of its own
    scaled = np.nan_to_num((raw - mean) / scale, nan=0.0)
    centers, criterion = _choose_centers(scaled, config)
    regime = _nearest(scaled, centers)
    values = pooled[list(sensors)].to_numpy(dtype="float64")
    means = np.stack([np.nanmean(values[regime == r], axis=0) for r in range(len(centers))])
    stds = np.stack([np.nanstd(values[regime == r], axis=0) for r in range(len(centers))])
    varies = np.nanmax(stds, axis=0) > 1e-9  # a sensor fixed within every regime says only which regime it is
    kept = [s for s, v in zip(sensors, varies, strict=True) if v]
    stds = np.where(stds > 1e-9, stds, 1.0)[:, varies]
    return RegimeModel(settings=tuple(config.settings), setting_mean=tuple(map(float, mean)),
                       setting_scale=tuple(map(float, scale)), centers=tuple(tuple(map(float, c)) for c in centers),
                       sensors=tuple(kept), sensor_mean=tuple(tuple(map(float, m)) for m in means[:, varies]),
                       sensor_scale=tuple(tuple(map(float, s)) for s in stds), criterion=criterion)


def _choose_centers(scaled: np.ndarray, config: RegimeConfig) -> tuple[np.ndarray, str]:
    rng = np.random.default_rng(config.seed)
    if isinstance(config.regimes, int):
        return _kmeans(scaled, config.regimes, rng), f"k={config.regimes} as requested"
    sample = scaled[rng.choice(len(scaled), size=min(len(scaled), config.silhouette_sample), replace=False)]
    best_k, best_score, best_centers = 1, -1.0, scaled.mean(axis=0, keepdims=True)
    for k in range(2, config.max_auto + 1):
        centers = _kmeans(scaled, k, rng)
        if len(centers) < k:
            break  # fewer distinct operating points than k
        score = _silhouette(sample, _nearest(sample, centers))
        if score > best_score:
            best_k, best_score, best_centers = k, score, centers
    if best_score < config.min_silhouette:
        return scaled.mean(axis=0, keepdims=True), (
            f"auto: k=1 (best mean silhouette {best_score:.3f} at k={best_k} < {config.min_silhouette})")
    return best_centers, (f"auto: k={best_k} (mean silhouette {best_score:.3f}, the highest for k in "
                          f"2..{config.max_auto})")


def _kmeans(x: np.ndarray, k: int, rng: np.random.Generator, iterations: int = 50) -> np.ndarray:
    """Lloyd's k-means from a k-means++ start; clusters left empty are dropped."""
    centers = [x[rng.integers(len(x))]]
    for _ in range(1, k):
        distance = np.min(((x[:, None, :] - np.asarray(centers)[None]) ** 2).sum(-1), axis=1)
        if distance.sum() <= 1e-12:
            break
        centers.append(x[rng.choice(len(x), p=distance / distance.sum())])
    c = np.asarray(centers)
    for _ in range(iterations):
        label = _nearest(x, c)
        updated = np.stack([x[label == j].mean(axis=0) for j in range(len(c)) if np.any(label == j)])
        if updated.shape == c.shape and np.allclose(updated, c):
            break
        c = updated
    return c


def _nearest(x: np.ndarray, centers: np.ndarray) -> np.ndarray:
    return np.argmin(((x[:, None, :] - centers[None]) ** 2).sum(-1), axis=1)


def _silhouette(x: np.ndarray, label: np.ndarray) -> float:
    distance = np.sqrt(((x[:, None, :] - x[None]) ** 2).sum(-1))
    clusters = np.unique(label)
    if len(clusters) < 2:
        return -1.0
    mean_to = np.stack([distance[:, label == c].mean(axis=1) for c in clusters], axis=1)
    own = np.searchsorted(clusters, label)
    counts = np.bincount(own, minlength=len(clusters))
    a = mean_to[np.arange(len(x)), own] * counts[own] / np.maximum(counts[own] - 1, 1)  # excluding itself
    mean_to[np.arange(len(x)), own] = np.inf
    b = mean_to.min(axis=1)
    s = np.where(counts[own] > 1, (b - a) / np.maximum(np.maximum(a, b), 1e-12), 0.0)
    return float(s.mean())
