"""The GPU training path (``device="cuda"``, what the AWS Batch GPU job runs) against the CPU path, side by side
on the same machine, the same data and the same pipeline (``make bench-gpu`` on a machine with a GPU).

For each dataset and indicator the whole ModelFactory pipeline (``train_model``) runs twice: ``device=cpu``
(every core) and ``device=cuda``. Reported: wall seconds of each arm and of its search, their ratio, the
device XGBoost actually trained on (read back from the booster's config), and the model's held-out metrics,
which should agree within noise (the GPU's histogram is not bit-identical to the CPU's).

Datasets: the demo fleet's machines one by one (minute telemetry, RPM-drop failures), the demo fleet pooled
as one fleet model, and NASA C-MAPSS FD001's 100 training engines as a fleet (recorded failures) when
``--cmapss`` points at ``train_FD001.txt``. Writes ``benchmarks/results/gpu.json`` (or ``--output``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "gpu.json"
HEADLINE = ("recall", "precision", "pr_auc", "rmse", "mae", "r2")


def cmapss_fleet(path: Path) -> tuple[dict[str, pd.DataFrame], dict[str, np.ndarray]]:
    """FD001 in the data contract without the importer's pydantic dependency: a cycle every 10 minutes, the
    last cycle of each engine its failure (the same mapping as ``cmapss_mapping``)."""
    raw = pd.read_csv(path, sep=r"\s+", header=None)
    raw.columns = ["unit", "cycle", "setting1", "setting2", "setting3", *[f"s{i}" for i in range(1, 22)]]
    start = pd.Timestamp("2020-01-01", tz="UTC")
    frames, events = {}, {}
    for unit, rows in raw.groupby("unit"):
        name = f"FD001-{int(unit):03d}"
        frame = rows.drop(columns=["unit"]).reset_index(drop=True)
        frame.insert(0, "timestamp", start + pd.to_timedelta((frame["cycle"] - 1) * 10, unit="min"))
        frames[name] = frame
        events[name] = np.array([frame["timestamp"].iloc[-1].value], dtype=np.int64)
    return frames, events


def arm(frames: Any, events: Any, name: str, indicator: str, device: str, config: Any) -> dict[str, Any]:
    from dataclasses import replace

    from modelforge.domain.pipeline import train_model

    config = replace(config, search=replace(config.search, device=device))
    began = time.perf_counter()
    trained = train_model(frames, machine_name=name, indicator=indicator, config=config, events=events)
    seconds = time.perf_counter() - began
    return {"device_requested": device, "device_used": trained.params["device"], "seconds": round(seconds, 2),
            "search_seconds": trained.params["search"]["seconds"], "fits": trained.params["search"]["fits"],
            "rows_train": trained.data["rows_train"],
            "metrics": {k: round(float(v), 4) for k, v in trained.metrics.items() if k in HEADLINE and v is not None}}


def compare(label: str, frames: Any, events: Any, name: str, indicator: str, config: Any,
            gpu: bool) -> dict[str, Any]:
    result: dict[str, Any] = {"dataset": label, "indicator": indicator,
                              "cpu": arm(frames, events, name, indicator, "cpu", config)}
    if gpu:
        result["cuda"] = arm(frames, events, name, indicator, "cuda", config)
        result["cpu_over_cuda_seconds"] = round(result["cpu"]["seconds"] / result["cuda"]["seconds"], 2)
        result["cpu_over_cuda_search_seconds"] = round(
            result["cpu"]["search_seconds"] / result["cuda"]["search_seconds"], 2)
    print(json.dumps(result), flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    import xgboost as xgb

    from localcloud.demo_data import demo_machine_names, generate_fleet
    from modelforge.domain.features import FeatureConfig
    from modelforge.domain.labeling import LabelingConfig
    from modelforge.domain.pipeline import PipelineConfig
    from modelforge.domain.telemetry import ValidationConfig
    from modelforge.domain.xgb import cuda_available

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machines", type=int, default=4)
    parser.add_argument("--days", type=float, default=60)
    parser.add_argument("--cmapss", type=Path, default=None, help="path to train_FD001.txt")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    gpu = cuda_available()
    results: dict[str, Any] = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform(),
                    "xgboost": xgb.__version__, "xgboost_built_with_cuda": bool(xgb.build_info().get("USE_CUDA")),
                    "cuda_available": gpu},
        "runs": [],
    }
    config = PipelineConfig()
    fleet = generate_fleet(demo_machine_names(args.machines), days=args.days, seed=7)
    for machine in fleet[:2]:
        for indicator in ("status", "health"):
            label = f"demo machine {machine.machine_name}, {args.days:g} days"
            results["runs"].append(compare(label, machine.telemetry, None, machine.machine_name, indicator,
                                           config, gpu))
    frames = {m.machine_name: m.telemetry for m in fleet}
    for indicator in ("status", "health"):
        results["runs"].append(compare(f"demo fleet of {args.machines} x {args.days:g} days", frames, None,
                                       "DEMO-FLEET", indicator, config, gpu))
    if args.cmapss is not None:
        engines, events = cmapss_fleet(args.cmapss)
        cmapss_config = PipelineConfig(
            labeling=LabelingConfig(window_minutes=300, health_horizon_minutes=1250),
            features=FeatureConfig(windows_minutes=(50, 100, 300), statistics=("mean", "std", "slope"),
                                   trend_window_minutes=None),
            validation=ValidationConfig(min_rows=500))
        for indicator in ("status", "health"):
            results["runs"].append(compare("C-MAPSS FD001, 100 training engines", engines, events, "FD001",
                                           indicator, cmapss_config, gpu))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
