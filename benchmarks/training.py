"""Training benchmark: the seed's pipeline against ours on a generated fleet of >= 1,000,000 rows.

    python -m benchmarks.training            # the full run (make bench), ~9 minutes on 2 idle cores
    python -m benchmarks.training --quick    # a small smoke run

Arms, each in a fresh child process (one process tree), on the same fleet (generated in the child from the
same seed, so no arm pays for another's data) and the same test split:

``baseline`` (seed-faithful)
    Per machine: the seed's labeling loop (``iterrows`` over every failure reading, a boolean mask over the
    whole frame for each), the chronological 80/20 split, ``scale_pos_weight``, then an exhaustive
    ``GridSearchCV(XGBClassifier, scoring="recall", cv=5)`` over the seed's kind of grid (n_estimators x
    max_depth x learning_rate), refit on the training period and thresholded at 0.5 as ``predict`` does.
    Deviations, to compare like with like: the baseline gets the same cleaning and the same rolling features
    as ours; the grid is a 2x2x2 subset of the seed's 36-point grid so the run fits in minutes;
    ``n_jobs=1`` for the search with XGBoost on every core (the seed's ``n_jobs=-1`` would oversubscribe
    2 cores, and its worker processes would escape the memory measurement).
``ours``
    Per machine: ``train_model`` with the default settings (validation, vectorized labeling, purged split,
    early-stopping search, threshold on validation, evaluation, profile) plus rendering the HTML report.

Both are scored on exactly the same rows: the held-out final 20 % of each machine as our labeling and
split define it (rows inside a failure's downtime excluded; on the remaining rows the seed's labels and ours
agree, which ``labeling`` checks). Recall is at each arm's own threshold; PR-AUC and recall are computed
over the pooled held-out rows of the whole fleet (per-machine means are reported beside them).

``labeling`` times the seed's loop against ``label_failures`` on every machine.
``strategies`` ("measure and pick") runs our pipeline with each search strategy (early_stopping, halving,
grid over the same grid as the baseline, with purged time-series folds) on the first ``--strategies``
machines.

Peak memory is the child's ``ru_maxrss``. ``peak_over_data`` is (peak RSS - RSS before the data existed) /
in-memory size of the data (``DataFrame.memory_usage(deep=True)``): what the arm costs on top of the
interpreter and its initialized libraries, relative to the data. "Before the data" is measured after a
warm-up on a tiny problem (XGBoost's and OpenMP's thread pools, matplotlib's font cache are one-time costs
that do not grow with the data); ``peak_over_data_from_imports`` is the same ratio measured from just after
the imports, warm-up included, for comparison. Other processes on the machine slow both arms alike but not
equally; ``load_average_before_after`` records how busy the machine was.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results" / "training.json"
WINDOW_MINUTES = 30
DROP_THRESHOLD_PCT = 30.0
BASELINE_GRID = {"n_estimators": [100, 200], "max_depth": [4, 6], "learning_rate": [0.1, 0.2]}
BASELINE_FOLDS = 5
QUICK_GRID = {"n_estimators": [50], "max_depth": [4], "learning_rate": [0.1, 0.2]}


# ---------------------------------------------------------------- helpers run in the children


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _fleet(machines: int, days: float, seed: int) -> list[Any]:
    from localcloud.demo_data import demo_machine_names, generate_fleet

    return generate_fleet(demo_machine_names(machines), days=days, seed=seed)


def _reference_split(frame: Any) -> tuple[Any, Any, int]:
    """The held-out rows both arms are scored on: (timestamps ns, labels, split time ns)."""
    import numpy as np

    from modelforge.domain.labeling import LabelingConfig, label_failures, timestamps_ns
    from modelforge.domain.splitting import chronological_split
    from modelforge.domain.telemetry import clean_telemetry

    clean = clean_telemetry(frame, machine_name="reference")
    labels = label_failures(clean.frame, LabelingConfig(window_minutes=WINDOW_MINUTES,
                                                        drop_threshold_pct=DROP_THRESHOLD_PCT))
    usable = ~np.isnan(labels.label)
    t, y = timestamps_ns(clean.frame)[usable], labels.label[usable]
    split = chronological_split(t, test_fraction=0.2, purge_minutes=WINDOW_MINUTES)
    return t[split.test], y[split.test].astype(int), split.split_ns


def seed_labeling_loop(df: Any, *, window_minutes: int = WINDOW_MINUTES,
                       threshold_pct: float = -DROP_THRESHOLD_PCT) -> Any:
    """The seed's ModelFactory labeling, verbatim in substance: every reading at or below the threshold is a
    failure event, and each one marks the rows in the window before it with a mask over the whole frame."""
    import pandas as pd

    df["failure_label"] = 0
    failure_events = df[df["Eng_RPM_variation_percentage"] <= threshold_pct]
    if not failure_events.empty:
        for _index, event_row in failure_events.iterrows():
            failure_timestamp = event_row["timestamp"]
            window_start_timestamp = failure_timestamp - pd.Timedelta(minutes=window_minutes)
            window_mask = (df["timestamp"] >= window_start_timestamp) & (df["timestamp"] < failure_timestamp)
            df.loc[window_mask, "failure_label"] = 1
    return df


def _pooled(parts: list[tuple[Any, Any, float]]) -> dict[str, Any]:
    import numpy as np
    from sklearn.metrics import average_precision_score

    y = np.concatenate([p[0] for p in parts])
    scores = np.concatenate([p[1] for p in parts])
    alarms = np.concatenate([p[1] >= p[2] for p in parts])
    tp = int((alarms & (y == 1)).sum())
    per_machine_ap = [float(average_precision_score(p[0], p[1])) for p in parts if 0 < p[0].sum() < len(p[0])]
    per_machine_recall = [float(((p[1] >= p[2]) & (p[0] == 1)).sum() / p[0].sum()) for p in parts if p[0].sum()]
    return {
        "recall": tp / int(y.sum()),
        "precision": tp / max(int(alarms.sum()), 1),
        "pr_auc": float(average_precision_score(y, scores)),
        "recall_mean_per_machine": float(np.mean(per_machine_recall)),
        "pr_auc_mean_per_machine": float(np.mean(per_machine_ap)),
        "test_rows": len(y),
        "test_positives": int(y.sum()),
    }


def run_baseline(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np
    import xgboost as xgb
    from sklearn.model_selection import GridSearchCV

    from modelforge.domain.features import build_features
    from modelforge.domain.labeling import timestamps_ns
    from modelforge.domain.telemetry import clean_telemetry

    grid = QUICK_GRID if args.quick else BASELINE_GRID
    rss_after_imports = _rss_mb()
    # Warm-up: initialize the libraries (thread pools, lazy imports) on a tiny problem before measuring.
    rng = np.random.default_rng(0)
    tiny_x, tiny_y = rng.normal(size=(600, 4)), np.tile([0, 0, 1], 200)
    GridSearchCV(xgb.XGBClassifier(n_estimators=5, n_jobs=os.cpu_count()), {"max_depth": [2, 3]}, cv=3,
                 scoring="recall").fit(tiny_x, tiny_y)
    rss_before_data = _rss_mb()
    fleet = _fleet(args.machines, args.days, args.seed)
    data_bytes = sum(int(m.telemetry.memory_usage(deep=True).sum()) for m in fleet)
    references = [_reference_split(m.telemetry) for m in fleet]
    parts, fits, chosen = [], 0, []
    started = time.perf_counter()
    for machine, (ref_t, ref_y, split_ns) in zip(fleet, references, strict=True):
        clean = clean_telemetry(machine.telemetry, machine_name=machine.machine_name)
        df = seed_labeling_loop(clean.frame.copy())
        x, _names = build_features(df, clean.sensor_columns)
        t = timestamps_ns(df)
        y = df["failure_label"].to_numpy()
        train = t < split_ns
        count_normal = int((y[train] == 0).sum())
        count_pre_failure = int((y[train] == 1).sum()) or 1
        model = xgb.XGBClassifier(objective="binary:logistic", eval_metric="logloss", tree_method="hist",
                                  scale_pos_weight=count_normal / count_pre_failure, random_state=42,
                                  n_jobs=os.cpu_count())
        search = GridSearchCV(model, grid, scoring="recall", cv=BASELINE_FOLDS, n_jobs=1)
        search.fit(x[train], y[train])
        fits += len(search.cv_results_["params"]) * BASELINE_FOLDS + 1
        chosen.append(search.best_params_)
        rows = np.searchsorted(t, ref_t)
        assert np.array_equal(t[rows], ref_t), "the held-out rows must exist in the baseline's frame"
        scores = search.best_estimator_.predict_proba(x[rows])[:, 1]
        parts.append((ref_y, scores, 0.5))
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "fits": fits, "grid": grid, "cv_folds": BASELINE_FOLDS, "best_params": chosen,
            **_pooled(parts), **_memory(rss_after_imports, rss_before_data, data_bytes)}


def run_ours(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np

    from localcloud.demo_data import generate_machine_telemetry
    from modelforge.domain.pipeline import PipelineConfig, train_model
    from modelforge.domain.report import render_report

    config = PipelineConfig()
    rss_after_imports = _rss_mb()
    # Warm-up: initialize the libraries (thread pools, matplotlib's fonts) on a tiny job before measuring.
    render_report(train_model(generate_machine_telemetry("warm-up", days=30, seed=1).telemetry,
                              machine_name="warm-up", indicator="status", config=config))
    rss_before_data = _rss_mb()
    fleet = _fleet(args.machines, args.days, args.seed)
    data_bytes = sum(int(m.telemetry.memory_usage(deep=True).sum()) for m in fleet)
    references = [_reference_split(m.telemetry) for m in fleet]
    parts, fits, devices, report_bytes, per_machine = [], 0, set(), 0, []
    started = time.perf_counter()
    for machine, (ref_t, ref_y, _split) in zip(fleet, references, strict=True):
        began = time.perf_counter()
        trained = train_model(machine.telemetry, machine_name=machine.machine_name, indicator="status",
                              config=config)
        report_bytes += len(render_report(trained).encode())
        json.dumps(trained.profile)
        ev = trained.evaluation
        assert np.array_equal(ev.timestamps_ns, ref_t) and np.array_equal(ev.y_true.astype(int), ref_y)
        parts.append((ref_y, ev.predicted, trained.metrics["threshold"]))
        fits += trained.params["search"]["fits"]
        devices.add(trained.params["device"])
        per_machine.append({"machine": machine.machine_name, "seconds": round(time.perf_counter() - began, 2),
                            "recall": trained.metrics["recall"], "pr_auc": trained.metrics["pr_auc"],
                            "events_caught_ahead": trained.metrics["events_caught_ahead"],
                            "events_total": trained.metrics["events_total"]})
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "fits": fits, "device": sorted(devices), "strategy": config.search.strategy,
            "report_bytes": report_bytes, "per_machine": per_machine, **_pooled(parts),
            **_memory(rss_after_imports, rss_before_data, data_bytes)}


def run_strategies(args: argparse.Namespace) -> dict[str, Any]:
    """Our pipeline with each search strategy on the first ``--strategies`` machines ("measure and pick")."""
    from dataclasses import replace

    from modelforge.domain.pipeline import PipelineConfig, train_model

    fleet = _fleet(args.machines, args.days, args.seed)[: args.strategies]
    results: dict[str, Any] = {}
    for strategy in ("early_stopping", "halving", "grid"):
        base = PipelineConfig()
        grid = QUICK_GRID if args.quick else BASELINE_GRID
        config = replace(base, search=replace(base.search, strategy=strategy, grid=grid))
        parts, fits, started = [], 0, time.perf_counter()
        for machine in fleet:
            trained = train_model(machine.telemetry, machine_name=machine.machine_name, indicator="status",
                                  config=config)
            ev = trained.evaluation
            parts.append((ev.y_true.astype(int), ev.predicted, trained.metrics["threshold"]))
            fits += trained.params["search"]["fits"]
        results[strategy] = {"seconds": round(time.perf_counter() - started, 2), "fits": fits, **_pooled(parts)}
    return {"machines": len(fleet), "grid": QUICK_GRID if args.quick else BASELINE_GRID,
            "cv_folds": PipelineConfig().search.cv_folds, "strategies": results}


def run_labeling(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np

    from modelforge.domain.labeling import LabelingConfig, label_failures
    from modelforge.domain.telemetry import clean_telemetry

    config = LabelingConfig(window_minutes=WINDOW_MINUTES, drop_threshold_pct=DROP_THRESHOLD_PCT)
    fleet = _fleet(args.machines, args.days, args.seed)
    loop_seconds = ours_seconds = 0.0
    rows = disagreements = compared = 0
    for machine in fleet:
        frame = clean_telemetry(machine.telemetry, machine_name=machine.machine_name).frame
        rows += len(frame)
        copy = frame.copy()
        began = time.perf_counter()
        seed = seed_labeling_loop(copy)["failure_label"].to_numpy()
        loop_seconds += time.perf_counter() - began
        began = time.perf_counter()
        labels = label_failures(frame, config)
        ours_seconds += time.perf_counter() - began
        known = ~np.isnan(labels.label)
        compared += int(known.sum())
        disagreements += int((seed[known] != labels.label[known]).sum())
    return {"baseline_seconds": loop_seconds, "ours_seconds": ours_seconds, "rows": rows,
            "rows_compared": compared, "label_disagreements": disagreements}


def _memory(rss_after_imports: float, rss_before_data: float, data_bytes: int) -> dict[str, Any]:
    peak = _peak_mb()
    data_mb = data_bytes / 1024 / 1024
    return {"peak_rss_mb": round(peak, 1), "rss_after_imports_mb": round(rss_after_imports, 1),
            "rss_before_data_mb": round(rss_before_data, 1), "data_mb": round(data_mb, 1),
            "peak_over_data": round((peak - rss_before_data) / data_mb, 3),
            "peak_over_data_from_imports": round((peak - rss_after_imports) / data_mb, 3)}


ARMS = {"baseline": run_baseline, "ours": run_ours, "labeling": run_labeling, "strategies": run_strategies}


# ---------------------------------------------------------------- the parent


def _child(arm: str, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        out = handle.name
    command = [sys.executable, "-m", "benchmarks.training", "--arm", arm, "--result-file", out,
               "--machines", str(args.machines), "--days", str(args.days), "--seed", str(args.seed),
               "--strategies", str(args.strategies)]
    if args.quick:
        command.append("--quick")
    began = time.perf_counter()
    subprocess.run(command, check=True)
    result = json.loads(Path(out).read_text())
    os.unlink(out)
    result["process_seconds"] = round(time.perf_counter() - began, 2)
    return result


def _machine() -> dict[str, Any]:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    import xgboost

    from modelforge.domain.xgb import resolve_device

    return {"platform": platform.platform(), "cpu": cpu, "cpus": os.cpu_count(), "memory_gb": round(memory_gb, 1),
            "python": platform.python_version(), "xgboost": xgboost.__version__,
            "xgboost_device": resolve_device("auto")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machines", type=int, default=12)
    parser.add_argument("--days", type=float, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="a small smoke run (not the benchmark)")
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--strategies", type=int, default=3, metavar="N",
                        help="also compare our search strategies (early_stopping, halving, grid) on N machines")
    parser.add_argument("--arm", choices=sorted(ARMS), help=argparse.SUPPRESS)
    parser.add_argument("--result-file", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick and "--machines" not in (argv or sys.argv):
        args.machines, args.days, args.strategies = 2, 30, min(args.strategies, 1)
    if args.arm:
        result = ARMS[args.arm](args)
        Path(args.result_file).write_text(json.dumps(result, default=str))
        return 0

    print(f"training benchmark: {args.machines} machines x {args.days:g} days (seed {args.seed})", flush=True)
    results: dict[str, Any] = {}
    arms = ["labeling", "ours", "baseline"] + (["strategies"] if args.strategies else [])
    load_before = os.getloadavg()
    for arm in arms:
        print(f"  running {arm} ...", flush=True)
        results[arm] = _child(arm, args)
    base, ours, lab = results["baseline"], results["ours"], results["labeling"]
    summary = {
        "rows": lab["rows"],
        "machines": args.machines,
        "days": args.days,
        "seed": args.seed,
        "quick": args.quick,
        "machine": _machine(),
        "baseline": base,
        "ours": ours,
        "labeling": lab,
        **({"strategies": results["strategies"]} if "strategies" in results else {}),
        # Other work on the machine slows both arms; the load average shows how busy it was.
        "load_average_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "ratios": {
            "speedup_end_to_end": base["seconds"] / ours["seconds"],
            "fits": base["fits"] / ours["fits"],
            "peak_rss": base["peak_rss_mb"] / ours["peak_rss_mb"],
            "recall_delta": ours["recall"] - base["recall"],
            "pr_auc_delta": ours["pr_auc"] - base["pr_auc"],
            "labeling_speedup": lab["baseline_seconds"] / lab["ours_seconds"],
        },
    }
    ratios = summary["ratios"]
    summary["criteria"] = {
        "rows_at_least_1m": lab["rows"] >= 1_000_000,
        "speedup_at_least_5x": ratios["speedup_end_to_end"] >= 5,
        "recall_no_worse": ratios["recall_delta"] >= -0.01,
        "pr_auc_no_worse": ratios["pr_auc_delta"] >= -0.01,
        "labeling_at_least_50x": ratios["labeling_speedup"] >= 50,
        "ours_peak_under_3x_data": ours["peak_over_data"] < 3,
        "labels_agree_with_seed": lab["label_disagreements"] == 0,
    }
    _print(summary)
    output = args.output or (None if args.quick else RESULTS)
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(summary, indent=2, default=str) + "\n")
        print(f"results written to {output}")
    return 0


def _print(s: dict[str, Any]) -> None:
    base, ours, lab, r = s["baseline"], s["ours"], s["labeling"], s["ratios"]
    print(f"\nrows: {s['rows']:,}   machine: {s['machine']['cpu']} x{s['machine']['cpus']}, "
          f"xgboost device {s['machine']['xgboost_device']}")
    print(f"{'':22}{'baseline':>12}{'ours':>12}{'ratio':>12}")
    print(f"{'wall time (s)':22}{base['seconds']:12.1f}{ours['seconds']:12.1f}{r['speedup_end_to_end']:11.1f}x")
    print(f"{'model fits':22}{base['fits']:12d}{ours['fits']:12d}{r['fits']:11.1f}x")
    print(f"{'peak RSS (MB)':22}{base['peak_rss_mb']:12.0f}{ours['peak_rss_mb']:12.0f}{r['peak_rss']:11.2f}x")
    print(f"{'peak over data (x)':22}{base['peak_over_data']:12.2f}{ours['peak_over_data']:12.2f}"
          f"   (data {ours['data_mb']:.0f} MB)")
    print(f"{'recall':22}{base['recall']:12.4f}{ours['recall']:12.4f}{r['recall_delta']:+12.4f}")
    print(f"{'PR-AUC':22}{base['pr_auc']:12.4f}{ours['pr_auc']:12.4f}{r['pr_auc_delta']:+12.4f}")
    print(f"{'precision':22}{base['precision']:12.4f}{ours['precision']:12.4f}")
    print(f"{'labeling (s)':22}{lab['baseline_seconds']:12.2f}{lab['ours_seconds']:12.3f}"
          f"{r['labeling_speedup']:11.0f}x   ({lab['label_disagreements']} disagreements on "
          f"{lab['rows_compared']:,} rows)")
    if "strategies" in s:
        st = s["strategies"]
        print(f"\nsearch strategies on {st['machines']} machines (ours otherwise):")
        for name, r in st["strategies"].items():
            print(f"  {name:16}{r['seconds']:8.1f} s{r['fits']:6d} fits   recall {r['recall']:.4f}   "
                  f"PR-AUC {r['pr_auc']:.4f}")
    print("criteria: " + ", ".join(f"{k}={'PASS' if v else 'FAIL'}" for k, v in s["criteria"].items()))


if __name__ == "__main__":
    raise SystemExit(main())
