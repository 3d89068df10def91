"""Where POST /train's compute "auto" leaves the Lambda: peak memory and time per training cell (rows x
features) of one machine's default training, on this machine. Usage:
    PYTHONPATH=functions:. python benchmarks/compute_switch.py <days>
Prints one JSON line; docs/benchmarks.md explains how domain/compute.py's defaults follow from it."""

from __future__ import annotations

import json
import resource
import sys
import time

from localcloud.demo_data import generate_machine_telemetry
from modelforge.domain.features import FeatureConfig, feature_names
from modelforge.domain.pipeline import PipelineConfig, train_model

MACHINE = "MOTOBOMBA-001"


def measure(days: float) -> dict[str, float]:
    telemetry = generate_machine_telemetry(MACHINE, start="2025-01-01", days=days, seed=7,
                                           failures_per_30_days=6.0).telemetry
    before_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    sensors = [c for c in telemetry.columns if c not in ("timestamp", "machine_name")]
    features = len(feature_names(sensors, FeatureConfig()))
    started = time.perf_counter()
    train_model(telemetry, machine_name=MACHINE, indicator="status", config=PipelineConfig(), lineage={})
    seconds = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cells = len(telemetry) * features
    return {"days": days, "rows": len(telemetry), "features": features, "cells": cells,
            "seconds": round(seconds, 2), "rss_before_mb": round(before_kb / 1024),
            "peak_rss_mb": round(peak_kb / 1024),
            "bytes_per_cell": round((peak_kb - before_kb) * 1024 / cells, 1), "seconds_per_cell": seconds / cells}


if __name__ == "__main__":
    print(json.dumps(measure(float(sys.argv[1]))))
