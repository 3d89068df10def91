"""The GPU training path (``device="cuda"``, what the AWS Batch GPU job runs) against the CPU path, side by side
on the same machine, the same data and the same pipeline (``make bench-gpu`` on a machine with a GPU).

For each dataset and indicator the whole pipeline (``train_model``) runs ``--repeats`` times per arm,
``device=cpu`` (every core) and ``device=cuda``, repeat ``i`` of both arms with the same search seed
(``--seed + i``), so that each repeat is a pair. Reported per arm: the mean, sample standard deviation, min and
max (and the values) of the wall seconds, the search seconds and each held-out metric, and the device the
pipeline trained on (``cuda`` only where a probe booster really trained there, see ``domain.xgb``). Per pair:
the CPU/CUDA time ratios and the CUDA minus CPU difference of each metric, with the same statistics and the
standard error of the mean difference. Whether the GPU's models score like the CPU's is for a reader of those
spreads to judge: this script makes no such claim, and with one repeat there is no spread to judge by (std is
null).

Datasets, for each ``--sizes`` entry ``<machines>x<days>``: the first ``--singles`` demo machines one by one
(minute telemetry, RPM-drop failures) and the demo fleet pooled as one fleet model; then NASA C-MAPSS FD001's
100 training engines as a fleet (recorded failures) when ``--cmapss`` points at ``train_FD001.txt``.

The script writes the whole result file itself (``benchmarks/results/gpu.json``, or ``--output``), in one
piece, at the end; nothing in it is to be added by hand. Its top-level sections: ``benchmark``, ``command``,
``generated_at``, ``repeats``, ``seeds``, ``machine``, ``config``, ``sets`` and ``summary`` (see SECTIONS); each
set lists its runs. ``benchmarks/results/gpu-2026-h100-partial.json`` is an older, hand-assembled file of single
runs, kept for its timings only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "gpu.json"
HEADLINE = ("recall", "precision", "pr_auc", "rmse", "mae", "r2")
SECTIONS = ("benchmark", "command", "generated_at", "repeats", "seeds", "machine", "config", "sets", "summary")
ARM_STATISTICS = ("seconds", "search_seconds")
PAIR_STATISTICS = ("cpu_over_cuda_seconds", "cpu_over_cuda_search_seconds", "cuda_minus_cpu")


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


def spread(values: list[float]) -> dict[str, Any]:
    """Mean and spread of one quantity over the repeats; std (sample) and the mean's standard error need two."""
    many = len(values) > 1
    std = statistics.stdev(values) if many else None
    return {"n": len(values), "mean": round(statistics.fmean(values), 6), "std": None if std is None else round(std, 6),
            "stderr": None if std is None else round(std / len(values) ** 0.5, 6),
            "min": min(values), "max": max(values), "values": values}


def arm(frames: Any, events: Any, name: str, indicator: str, device: str, config: Any,
        seeds: list[int]) -> dict[str, Any]:
    """One device's repeats: the pipeline once per seed, then the spread of each timing and metric."""
    from modelforge.domain.pipeline import train_model

    repeats: list[dict[str, Any]] = []
    for seed in seeds:
        seeded = replace(config, search=replace(config.search, device=device, seed=seed))
        began = time.perf_counter()
        trained = train_model(frames, machine_name=name, indicator=indicator, config=seeded, events=events)
        repeats.append({"seconds": round(time.perf_counter() - began, 3), "device": trained.params["device"],
                        "search_seconds": trained.params["search"]["seconds"],
                        "fits": trained.params["search"]["fits"], "rows_train": trained.data["rows_train"],
                        "metrics": {k: round(float(v), 6) for k, v in trained.metrics.items()
                                    if k in HEADLINE and v is not None}})
    metric_names = sorted(set().union(*(r["metrics"] for r in repeats)))
    return {"device_requested": device, "device_used": sorted({r["device"] for r in repeats}),
            "fits": sorted({r["fits"] for r in repeats}), "rows_train": sorted({r["rows_train"] for r in repeats}),
            **{key: spread([r[key] for r in repeats]) for key in ARM_STATISTICS},
            "metrics": {k: spread([r["metrics"][k] for r in repeats if k in r["metrics"]]) for k in metric_names}}


def paired(cpu: dict[str, Any], cuda: dict[str, Any]) -> dict[str, Any]:
    """Repeat i of one arm against repeat i of the other (the same seed): time ratios, metric differences."""
    def ratio(key: str) -> dict[str, Any]:
        return spread([round(c / g, 4) for c, g in zip(cpu[key]["values"], cuda[key]["values"], strict=True)])

    differences = {k: spread([round(g - c, 6) for c, g in zip(cpu["metrics"][k]["values"],
                                                               cuda["metrics"][k]["values"], strict=True)])
                   for k in cpu["metrics"] if k in cuda["metrics"]}
    return {"cpu_over_cuda_seconds": ratio("seconds"), "cpu_over_cuda_search_seconds": ratio("search_seconds"),
            "cuda_minus_cpu": differences}


def compare(label: str, frames: Any, events: Any, name: str, indicator: str, config: Any, gpu: bool,
            seeds: list[int]) -> dict[str, Any]:
    result: dict[str, Any] = {"dataset": label, "indicator": indicator,
                              "cpu": arm(frames, events, name, indicator, "cpu", config, seeds)}
    if gpu:
        result["cuda"] = arm(frames, events, name, indicator, "cuda", config, seeds)
        result.update(paired(result["cpu"], result["cuda"]))
    print(json.dumps({"dataset": label, "indicator": indicator,
                      **{k: result[k]["mean"] for k in ("cpu_over_cuda_seconds",) if k in result}}), flush=True)
    return result


def demo_set(machines: int, days: float, args: argparse.Namespace, config: Any, gpu: bool) -> dict[str, Any]:
    """One size of the demo data: its first ``--singles`` machines one by one, then all of them as a fleet."""
    from localcloud.demo_data import demo_machine_names, generate_fleet

    fleet = generate_fleet(demo_machine_names(machines), days=days, seed=7)
    runs = [compare(f"demo machine {machine.machine_name}, {days:g} days", machine.telemetry, None,
                    machine.machine_name, indicator, config, gpu, args.seeds)
            for machine in fleet[:args.singles] for indicator in args.indicators]
    frames = {m.machine_name: m.telemetry for m in fleet}
    runs += [compare(f"demo fleet of {machines} x {days:g} days", frames, None, "DEMO-FLEET", indicator, config,
                     gpu, args.seeds) for indicator in args.indicators]
    return {"name": f"demo, {machines} machines x {days:g} days", "machines": machines, "days": days, "runs": runs}


def cmapss_set(path: Path, args: argparse.Namespace, gpu: bool) -> dict[str, Any]:
    from modelforge.domain.features import FeatureConfig
    from modelforge.domain.labeling import LabelingConfig
    from modelforge.domain.pipeline import PipelineConfig
    from modelforge.domain.telemetry import ValidationConfig

    engines, events = cmapss_fleet(path)
    config = PipelineConfig(
        labeling=LabelingConfig(window_minutes=300, health_horizon_minutes=1250),
        features=FeatureConfig(windows_minutes=(50, 100, 300), statistics=("mean", "std", "slope"),
                               trend_window_minutes=None),
        validation=ValidationConfig(min_rows=500), search=args.search)
    runs = [compare("C-MAPSS FD001, 100 training engines", engines, events, "FD001", indicator, config, gpu,
                    args.seeds) for indicator in args.indicators]
    return {"name": "C-MAPSS FD001", "source": str(path), "runs": runs}


def machine_description(gpu: bool) -> dict[str, Any]:
    import xgboost as xgb

    device = None
    if shutil.which("nvidia-smi"):
        probe = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                               capture_output=True, text=True, timeout=30, check=False)
        device = probe.stdout.strip() or None
    return {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform(),
            "xgboost": xgb.__version__, "xgboost_built_with_cuda": bool(xgb.build_info().get("USE_CUDA")),
            "cuda_available": gpu, "gpu": device}


def gpu_present() -> bool:
    """Whether to run the CUDA arm at all: XGBoost can train on a visible GPU here."""
    from modelforge.domain.xgb import cuda_available

    return cuda_available()


def run_benchmark(args: argparse.Namespace, argv: list[str]) -> dict[str, Any]:
    """The whole result file's content, every section of SECTIONS."""
    from modelforge.domain.pipeline import PipelineConfig

    gpu = gpu_present()
    config = PipelineConfig(search=args.search)
    sets = [demo_set(machines, days, args, config, gpu) for machines, days in args.sizes]
    if args.cmapss is not None:
        sets.append(cmapss_set(args.cmapss, args, gpu))
    runs = sum(len(s["runs"]) for s in sets)
    return {
        "benchmark": "benchmarks/gpu.py: the CUDA training path against the CPU path, repeated and paired by seed",
        "command": " ".join(["python", "-m", "benchmarks.gpu", *argv]),
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "repeats": len(args.seeds), "seeds": args.seeds, "machine": machine_description(gpu),
        "config": {"sizes": [list(size) for size in args.sizes], "singles": args.singles,
                   "indicators": list(args.indicators), "cmapss": None if args.cmapss is None else str(args.cmapss),
                   "search": json.loads(json.dumps(asdict(args.search), default=str))},
        "sets": sets,
        "summary": {"runs": runs, "gpu_compared": gpu,
                    "note": ("each arm's timings and metrics are given as mean and spread over the repeats, and "
                             "the pairs' differences as mean, std and standard error: no conclusion is drawn here"
                             if gpu else "no usable GPU on this machine: the CPU arm only, nothing compared")},
    }


def write_results(results: dict[str, Any], path: Path) -> None:
    """All of it or nothing: a temporary file beside the target, then one rename."""
    missing = [section for section in SECTIONS if section not in results]
    if missing:
        raise ValueError(f"refusing to write a partial result file: missing {missing}")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(results, indent=2) + "\n")
    partial.replace(path)


def _size(text: str) -> tuple[int, float]:
    machines, _, days = text.partition("x")
    return int(machines), float(days)


def parse_args(argv: list[str]) -> argparse.Namespace:
    from modelforge.domain.search import SearchConfig

    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", type=lambda s: [_size(part) for part in s.split(",")],
                        default=[(4, 60.0), (12, 120.0)], help="demo data sizes, <machines>x<days>,...")
    parser.add_argument("--singles", type=int, default=2, help="demo machines also trained one by one")
    parser.add_argument("--indicators", type=lambda s: s.split(","), default=["status", "health"])
    parser.add_argument("--cmapss", type=Path, default=None, help="path to train_FD001.txt")
    parser.add_argument("--repeats", type=int, default=3, help="runs per arm, paired by seed (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="the first repeat's search seed")
    parser.add_argument("--budget", type=int, default=None, help="search budget (default: the pipeline's)")
    parser.add_argument("--max-rounds", type=int, default=None, help="boosting rounds cap (default: the pipeline's)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    args.seeds = [args.seed + i for i in range(args.repeats)]
    overrides = {k: v for k, v in (("budget", args.budget), ("max_rounds", args.max_rounds)) if v is not None}
    args.search = replace(SearchConfig(), **overrides)
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    write_results(run_benchmark(args, argv), args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
