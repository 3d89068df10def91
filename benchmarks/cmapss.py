"""NASA C-MAPSS FD001 and FD002 through the product's own API (``make bench-cmapss``; ``--subset`` picks one).

1. Starts the local cloud (moto + Step Functions + the real handlers, from template.yaml).
2. Imports ``train_FD001.txt`` with the importer (``modelforge.importer``): one machine per engine, a cycle
   every ``CYCLE_MINUTES``, each engine's last cycle a recorded failure event.
3. ``POST /train`` a fleet model of the 100 training engines for each indicator, with the literature's targets
   expressed in the job's options: ``status`` = fails within 30 cycles, ``health`` = time to failure capped
   at 125 cycles. Polls ``GET /status`` until the job is done.
4. Scores the last cycle of every test engine (``test_FD001.txt``, converted by the same importer mapping)
   through ``POST /predict`` and compares with ``RUL_FD001.txt``: precision/recall/F1 for status (on all 100
   test engines, and on the 93 with at least 50 cycles, the subset Azure's LSTM sample reports on); RMSE and
   the PHM08 score for health (against the true RUL, and against it capped at 125).

Every choice (features, hyperparameters, decision threshold) comes from the training engines:
    * the feature recipe (``FEATURES``) from a grouped 5-fold cross-validation on train_FD001 only, scored at
      the last cycle of random truncations of held-out training engines (``benchmarks/cmapss_study/``, whose
      scripts never open the test files): per sensor the raw reading plus the rolling mean and least-squares
      slope over 30, 60 and 100 cycles, and the cycle number (every engine, test ones too, is observed from
      its first cycle). Constant sensors are dropped by the pipeline itself. Adding std, min/max, EWM or the
      trend feature did not help in that study;
    * the hyperparameters by the service's own search, on validation engines within the training fleet;
    * the threshold by the search's rule, the highest recall at precision >= ``MIN_PRECISION`` on the
      validation engines: 0.96, the operating point the goal states, fixed before any test engine was scored.
      The rule across parts of the validation engines (``threshold_parts``) was tried by grouped CV on the
      training engines and not taken: it bought precision the pooled rule already had with recall
      (``benchmarks/cmapss_study/status_threshold.py``);
    * FD002's health cap (150) by grouped CV (``fd002_cap.py``); neither a survival estimate beyond the cap
      (``beyond_cap.py``) nor longer windows, other caps or smaller trees (``fd002_recipe.py``) beat it by
      more than 0.3 RMSE there, so none was taken;
The test engines' answers (``RUL_FD001.txt``) are read only after every prediction has been made.

FD002 flies six operating conditions: its jobs also name the condition columns (``operating_settings``:
setting1..3) and ask for ``regimes: auto`` (k-means on the training engines' settings, k by silhouette), so
each sensor is standardized within its regime before the rolling features (``modelforge.domain.regimes``).

Figures come with 95% bootstrap intervals over the test engines (``BOOTSTRAP`` resamples of the engines,
seeded): one engine either way moves FD001's precision or recall by about 0.04. When the gate rejects a
model (no champion, so /predict answers 404), the decision and its reason are recorded and the run goes on.

Writes ``benchmarks/results/cmapss.json``: one entry per subset (a run of one subset keeps the other's).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "cmapss.json"
DATASETS = ROOT.parent / "shared" / "datasets"
BOOTSTRAP = 2000
CYCLE_MINUTES = 10.0  # the stated interval: one engine cycle every 10 minutes
WINDOW_CYCLES = 30  # status: "fails within 30 cycles"
RUL_CAP_CYCLES = 125  # health: the piecewise-linear RUL target of the literature
# The feature recipe, chosen by grouped cross-validation on the training engines only (benchmarks/cmapss_study).
FEATURES: dict[str, Any] = {
    "feature_windows_minutes": [300, 600, 1000],  # 30, 60 and 100 cycles
    "feature_statistics": ["mean", "slope"],
    "trend_window_minutes": 0,  # none
}
MIN_PRECISION = 0.96  # status: the threshold maximizes recall at this precision on validation engines
PUBLISHED = {
    "status": {
        "azure_lstm_sample (test engines with >= 50 cycles)": {"precision": 0.96, "recall": 0.96, "f1": 0.96},
        "azure_ml_template_best": {"precision": 0.95, "recall": 0.80, "f1": 0.87},
    },
    "health": {
        "cnn_babu_2016": {"rmse": 18.45},
        "deep_lstm_zheng_2017": {"rmse": 16.14},
        "best_deep_models_reported": {"rmse": 12.6},
    },
}
GOALS = {"status": {"precision": 0.96, "recall": 0.96}, "health": {"rmse_max": 13.0}}
SUBSETS: dict[str, dict[str, Any]] = {
    "FD001": {
        "dataset": "NASA C-MAPSS FD001 (100 training engines run to failure, 100 test engines, one condition)",
        "options": {},
        "health_cap_cycles": RUL_CAP_CYCLES,
        "published": PUBLISHED,
        "goals": GOALS,
    },
    "FD002": {
        "dataset": "NASA C-MAPSS FD002 (260 training engines run to failure, 259 test engines, six conditions)",
        "options": {"operating_settings": ["setting1", "setting2", "setting3"], "regimes": "auto"},
        # health: the training cap chosen by benchmarks/cmapss_study/fd002_cap.py (grouped CV on the training
        # engines, scored against the UNCAPPED remaining life): 150 cycles had the best mean and the best worst
        # fold in both partitions tried, and was best in 9 of their 10 folds (log_fd002_cap_{42,7}.txt).
        "health_cap_cycles": 150,
        "published": {"health": {"cnn_babu_2016": {"rmse": 30.29}, "deep_lstm_zheng_2017": {"rmse": 24.49},
                                 "dcnn_li_2018": {"rmse": 22.36}, "adl_dnn_xiang_2022": {"rmse": 17.33},
                                 "rve_costa_2022": {"rmse": 14.92}, "tcnn_transformer_wang_2021": {"rmse": 14.75}}},
        "goals": {"status": {"precision": 0.95, "recall": 0.95}, "health": {"rmse_max": 18.0}},
    },
}
JOB_TIMEOUT_S = 1800


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def train_options(indicator: str, subset: str = "FD001") -> dict[str, Any]:
    options: dict[str, Any] = {
        "label_window_minutes": int(WINDOW_CYCLES * CYCLE_MINUTES),
        "health_horizon_minutes": int(RUL_CAP_CYCLES * CYCLE_MINUTES),
        "holdout": "machines",
        **FEATURES,
        **SUBSETS[subset]["options"],
    }
    if indicator == "status":
        options["min_precision"] = MIN_PRECISION
    else:
        options["health_horizon_minutes"] = int(SUBSETS[subset]["health_cap_cycles"] * CYCLE_MINUTES)
    return options


def wait_for(session: Any, api_url: str, process_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while time.monotonic() < deadline:
        body = session.get(f"{api_url}/status/{process_id}", timeout=30).json()
        if body["status"] in ("completed", "failed"):
            return dict(body)
        time.sleep(2)
    raise TimeoutError(f"job {process_id} did not finish in {JOB_TIMEOUT_S} s")


def test_records(data_dir: Path, subset: str) -> dict[str, list[dict[str, Any]]]:
    """Each test engine's rows in the data contract, as /predict records (timestamps as ISO strings)."""
    from modelforge.domain.importing import cmapss_mapping, read_cmapss, to_contract

    imported = to_contract(read_cmapss(data_dir / f"test_{subset}.txt"),
                           cmapss_mapping(subset, cycle_minutes=CYCLE_MINUTES, last_cycle_is_failure=False))
    records = {}
    for name, frame in sorted(imported.telemetry.items()):
        rows = frame.assign(timestamp=frame["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
        records[name] = rows.to_dict(orient="records")
    return records


def classification(truth: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    tp = int(np.sum(truth & predicted))
    fp = int(np.sum(~truth & predicted))
    fn = int(np.sum(truth & ~predicted))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"engines": len(truth), "positives": int(truth.sum()), "tp": tp, "fp": fp, "fn": fn,
            "precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4)}


def regression(true_rul: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    d = predicted - true_rul
    score = float(np.sum(np.where(d < 0, np.exp(-d / 13) - 1, np.exp(d / 10) - 1)))
    return {"engines": len(true_rul), "rmse": round(float(np.sqrt(np.mean(d**2))), 3),
            "mae": round(float(np.mean(np.abs(d))), 3), "phm08_score": round(score, 1)}


def bootstrap(truth: np.ndarray, predicted: np.ndarray, figures: Any, keys: tuple[str, ...]) -> dict[str, Any]:
    """95% percentile intervals of ``figures(truth, predicted)[key]`` over test engines resampled with
    replacement (seeded, so a rerun gives the same intervals)."""
    rng = np.random.default_rng(0)
    draws: dict[str, list[float]] = {key: [] for key in keys}
    for _ in range(BOOTSTRAP):
        rows = rng.integers(0, len(truth), len(truth))
        sample = figures(truth[rows], predicted[rows])
        for key in keys:
            draws[key].append(sample[key])
    return {key: [round(float(np.percentile(v, 2.5)), 4), round(float(np.percentile(v, 97.5)), 4)]
            for key, v in draws.items()}


def train_and_predict(session: Any, api: str, subset: str, indicator: str, machines: list[str],
                      engines: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """One job through the API, then the last cycle of every test engine through /predict; a model the gate
    rejected (no champion) is recorded with the gate's reason instead of scored."""
    body = {"indicator": indicator, "machine_name": subset, "machine_names": machines,
            "failure_events": "records", "options": train_options(indicator, subset)}
    began = time.perf_counter()
    response = session.post(f"{api}/train", json=body, timeout=120)
    response.raise_for_status()
    job = wait_for(session, api, response.json()["process_id"])
    result: dict[str, Any] = {
        "process_id": job["process_id"], "model_id": job.get("model_id"), "gate": job.get("gate_decision"),
        "gate_reason": job.get("gate_reason"), "job_status": job["status"],
        "train_seconds_through_api": round(time.perf_counter() - began, 1),
        "held_out_training_engines": job.get("metrics"), "options": body["options"]}
    if job["status"] != "completed":
        result["error"] = job.get("error_message")
        return result
    predictions = {}
    began = time.perf_counter()
    for name, records in engines.items():
        answer = session.post(f"{api}/predict", json={"machine_name": subset, "indicator": indicator,
                                                      "records": records}, timeout=120)
        if answer.status_code == 404:  # the gate kept no champion: nothing to score
            result["predict_404"] = answer.json()
            return result
        answer.raise_for_status()
        predictions[name] = answer.json()["predictions"][-1]
    result[f"predict_seconds_{len(engines)}_engines"] = round(time.perf_counter() - began, 1)
    result["_predictions"] = predictions
    return result


def score(results: dict[str, Any], data_dir: Path, subset: str, engines: dict[str, list[dict[str, Any]]],
          indicators: list[str]) -> None:
    """Only called once every prediction is made: reads the test engines' answers and scores them."""
    true_rul = np.loadtxt(data_dir / f"RUL_{subset}.txt")
    names = sorted(engines)
    cycles = np.array([len(engines[n]) for n in names])
    for indicator in indicators:
        predictions = results[indicator].pop("_predictions", None)
        if predictions is None:
            continue
        if indicator == "status":
            alarm = np.array([predictions[n]["prediction"] >= 0.5 for n in names])
            truth = true_rul <= WINDOW_CYCLES
            figures = results["status"]["test_engines"] = classification(truth, alarm)
            figures["ci95"] = bootstrap(truth, alarm, classification, ("precision", "recall", "f1"))
            long_enough = cycles >= 50
            results["status"]["test_engines_with_50_cycles"] = classification(truth[long_enough],
                                                                              alarm[long_enough])
            probability = {n: predictions[n]["probability"] for n in names}
            results["status"]["misclassified"] = [
                {"engine": n, "true_rul": int(r), "probability": round(probability[n], 4)}
                for n, r, a, t in zip(names, true_rul, alarm, truth, strict=True) if a != t]
        else:
            predicted = np.array([predictions[n]["prediction"] / CYCLE_MINUTES for n in names])
            figures = results["health"]["test_engines"] = regression(true_rul, predicted)
            figures["ci95"] = bootstrap(true_rul, predicted, regression, ("rmse", "mae"))
            capped = np.minimum(true_rul, RUL_CAP_CYCLES)
            results["health"]["test_engines_rul_capped_125"] = regression(capped, predicted)
            # What a perfect predictor of the capped target would score against the true RUL: the floor a
            # model that never predicts beyond the cap cannot go below.
            results["health"]["perfect_capped_predictor_vs_true_rul"] = regression(true_rul, capped)


def goals_met(results: dict[str, Any], goals: dict[str, Any]) -> dict[str, bool]:
    verdict = {}
    status = results.get("status", {})
    for part in ("test_engines", "test_engines_with_50_cycles"):
        if part in status:
            verdict[f"status_{part}"] = bool(status[part]["precision"] >= goals["status"]["precision"]
                                             and status[part]["recall"] >= goals["status"]["recall"])
    if "test_engines" in results.get("health", {}):
        verdict["health_rmse"] = bool(results["health"]["test_engines"]["rmse"] <= goals["health"]["rmse_max"])
    return verdict


def run(data_dir: Path, indicators: list[str], subset: str = "FD001") -> dict[str, Any]:
    import requests

    from localcloud.cloud import LocalCloud
    from localcloud.demo import data_location
    from modelforge.adapters.failure_events import FailureEventStore
    from modelforge.adapters.telemetry import TelemetryStore
    from modelforge.domain.importing import cmapss_mapping, read_cmapss, to_contract
    from modelforge.importer import import_dataset

    spec = SUBSETS[subset]
    results: dict[str, Any] = {
        "dataset": spec["dataset"],
        "protocol": {
            "cycle_minutes": CYCLE_MINUTES,
            "status": f"fails within {WINDOW_CYCLES} cycles, judged at the last cycle of each test engine",
            "health": f"remaining life, training target capped at {spec['health_cap_cycles']} cycles; RMSE and "
                      f"PHM08 score at the last cycle of each test engine against RUL_{subset}.txt",
            "choices": "features from a grouped CV study on the training engines; hyperparameters and threshold "
                       "from the service's search on validation engines (never the test engines)",
            "ci95": f"2.5th-97.5th percentiles over {BOOTSTRAP} bootstrap resamples of the test engines",
        },
        "published": spec["published"],
        "goals": spec["goals"],
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
    }
    with LocalCloud(aws_port=free_port(), api_port=free_port()) as cloud:
        started = time.perf_counter()
        imported = to_contract(read_cmapss(data_dir / f"train_{subset}.txt"),
                               cmapss_mapping(subset, cycle_minutes=CYCLE_MINUTES))
        bucket, prefix = data_location(cloud.stack)
        summary = import_dataset(imported, TelemetryStore(bucket, prefix), FailureEventStore(bucket))
        results["import"] = {**{k: v for k, v in summary.items() if k != "machines"},
                             "machines": len(imported.telemetry),
                             "seconds": round(time.perf_counter() - started, 1)}
        machines = sorted(imported.telemetry)
        engines = test_records(data_dir, subset)
        session = requests.Session()
        for indicator in indicators:
            results[indicator] = train_and_predict(session, cloud.api_url, subset, indicator, machines, engines)
    # Only now, with every prediction made, are the test engines' answers read.
    score(results, data_dir, subset, engines, indicators)
    results["goals_met"] = goals_met(results, spec["goals"])
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subset", nargs="+", default=list(SUBSETS), choices=list(SUBSETS))
    parser.add_argument("--data-root", type=Path, default=Path(os.environ.get("CMAPSS_ROOT", DATASETS)),
                        help="the folder holding cmapss-fd001/ and cmapss-fd002/")
    parser.add_argument("--indicators", nargs="+", default=["status", "health"], choices=["status", "health"])
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    stored = json.loads(args.output.read_text()) if args.output.exists() else {}
    combined = {k: v for k, v in stored.items() if k in SUBSETS}
    if str(stored.get("dataset", "")).startswith("NASA C-MAPSS FD001"):  # the one-subset layout before FD002
        combined["FD001"] = stored
    for subset in args.subset:
        data_dir = args.data_root / f"cmapss-{subset.lower()}"
        if not (data_dir / f"train_{subset}.txt").exists():
            print(f"C-MAPSS {subset} not found in {data_dir}: set CMAPSS_ROOT or --data-root", file=sys.stderr)
            return 2
        fresh = run(data_dir, args.indicators, subset)
        # A run of some indicators keeps the stored figures of the others.
        combined[subset] = {**combined.get(subset, {}), **fresh}
        combined[subset]["goals_met"] = goals_met(combined[subset], SUBSETS[subset]["goals"])
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(combined, indent=2) + "\n")  # each subset kept as soon as it is done
        print(json.dumps({subset: {k: combined[subset][k] for k in ("status", "health", "goals_met")
                                   if k in combined[subset]}}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
