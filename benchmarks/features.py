"""The NumPy feature engine (domain/rolling.py via domain/features.py) against the pandas implementation it
replaced (``features._pandas_features``), side by side in one run, alternating, on the same frames:

* training-sized: 100,000 rows x 14 sensors of one machine (irregular, gappy readings), the default recipe
  (mean and std over 15 and 60 minutes, trend over 60) and a wider one (mean, std, min, max over 15, 60 and
  240 minutes), with and without 3 % missing values;
* predict-sized: 1 record and 1,000 records, each with the 60 rows of history a client sends before them;
* a pooled fleet frame: 1,000 machines x 100 rows, the engine's machine starts against pandas machine by machine.

Writes benchmarks/results/features.json (medians, and pandas' time over NumPy's: above 1, NumPy is faster).

    python -m benchmarks.features [--repeats N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.timing import alternated_ms

RESULTS = Path(__file__).parent / "results" / "features.json"
SENSORS = [f"sensor_{i:02d}" for i in range(14)]


def _series(rows: int, seed: int, missing: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    gaps = rng.choice([30, 60, 60, 60, 90, 600, 7200], size=rows)  # seconds
    gaps[rng.random(rows) < 0.02] = 0  # repeated timestamps
    stamps = pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(np.cumsum(gaps), unit="s")
    values = 100 + np.linspace(0, 50, rows)[:, None] + rng.normal(0, 1, (rows, len(SENSORS)))
    values[rng.random(values.shape) < missing] = np.nan
    frame = pd.DataFrame(values, columns=SENSORS)
    frame.insert(0, "timestamp", stamps)
    return frame


def _alternated(calls: list[Callable[[], Any]], repeats: int) -> list[float]:
    return [median for median, _ in alternated_ms(calls, repeats)]


def main() -> None:
    from modelforge.domain.features import (
        FeatureConfig,
        _pandas_features,
        build_features,
        feature_matrix,
        timestamps_ns,
    )

    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    repeats = parser.parse_args().repeats
    default, wide = FeatureConfig(), FeatureConfig(windows_minutes=(15, 60, 240),
                                                   statistics=("mean", "std", "min", "max"))
    cases: list[dict[str, Any]] = []

    def measure(name: str, frame: pd.DataFrame, config: FeatureConfig, times: int) -> None:
        pandas_ms, numpy_ms = _alternated([lambda: _pandas_features(frame, SENSORS, config),
                                           lambda: build_features(frame, SENSORS, config)], times)
        cases.append({"case": name, "rows": len(frame), "windows": list(config.windows_minutes),
                      "statistics": list(config.statistics), "pandas_ms": round(pandas_ms, 3),
                      "numpy_ms": round(numpy_ms, 3), "pandas_over_numpy": round(pandas_ms / numpy_ms, 2)})
        print(f"{name:<40} pandas {pandas_ms:10.2f} ms  numpy {numpy_ms:10.2f} ms  x{pandas_ms / numpy_ms:.2f}")

    for missing in (0.0, 0.03):
        training = _series(100_000, 1, missing)
        for label, config in (("default", default), ("wide", wide)):
            measure(f"training 100k x 14, {label}, {missing:.0%} missing", training, config, repeats)
    for records in (1, 1000):
        measure(f"predict {records} + 60 history, default", _series(records + 60, 2, 0.0), default, repeats * 10)

    machines = [_series(100, seed, 0.0) for seed in range(1000)]
    pooled = pd.concat(machines, ignore_index=True)
    starts = np.cumsum([0] + [len(m) for m in machines[:-1]])
    values, stamps = pooled[SENSORS].to_numpy(), timestamps_ns(pooled["timestamp"])
    pandas_ms, numpy_ms = _alternated([lambda: [_pandas_features(m, SENSORS, default) for m in machines],
                                       lambda: feature_matrix(values, stamps, default, starts)], max(repeats // 2, 1))
    cases.append({"case": "pooled fleet 1,000 machines x 100 rows, default (pandas: machine by machine)",
                  "rows": len(pooled), "pandas_ms": round(pandas_ms, 3), "numpy_ms": round(numpy_ms, 3),
                  "pandas_over_numpy": round(pandas_ms / numpy_ms, 2)})
    print(f"{'pooled fleet 1,000 x 100':<40} pandas {pandas_ms:10.2f} ms  numpy {numpy_ms:10.2f} ms  "
          f"x{pandas_ms / numpy_ms:.2f}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "what": "build_features (NumPy engine) vs features._pandas_features (the pandas rolling it replaced), "
                "alternating in one run; medians", "repeats": repeats, "cases": cases,
        "load_average_1_5_15_after": [round(v, 2) for v in os.getloadavg()],
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
    }, indent=2) + "\n")
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
