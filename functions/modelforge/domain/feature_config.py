"""The feature recipe's settings (windows, statistics, trend) and their defaults, apart from the feature code:
the API's zip function sizes a job from them (``logic.jobs_api``, ``domain.compute``) and has no NumPy or
pandas in its layer. ``domain.features`` builds the features they describe."""

from __future__ import annotations

from dataclasses import dataclass

STATISTICS = ("mean", "std", "min", "max", "slope", "trend")


@dataclass(frozen=True)
class FeatureConfig:
    windows_minutes: tuple[int, ...] = (15, 60)
    statistics: tuple[str, ...] = ("mean", "std")
    # ``trend`` over this window only (the longest is the steadiest reference); None: no trend features.
    trend_window_minutes: int | None = 60

    def __post_init__(self) -> None:
        if not self.windows_minutes or any(w <= 0 for w in self.windows_minutes):
            raise ValueError("windows_minutes must be positive and not empty")
        if len(set(self.windows_minutes)) != len(self.windows_minutes):
            raise ValueError("windows_minutes must not repeat")
        unknown = [s for s in self.statistics if s not in STATISTICS or s == "trend"]
        if unknown or len(set(self.statistics)) != len(self.statistics):
            raise ValueError(f"statistics must be distinct values of {STATISTICS[:-1]}, not {self.statistics}")
        if self.trend_window_minutes is not None and self.trend_window_minutes <= 0:
            raise ValueError("trend_window_minutes must be positive")
