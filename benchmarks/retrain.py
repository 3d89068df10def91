"""Retraining fan-out on the local cloud: the retraining state machine (Plan, the Distributed Map, Summary)
from template.yaml, executed by moto, with the real handlers.

    python -m benchmarks.retrain                          # both arms; writes benchmarks/results/retrain.json
    python -m benchmarks.retrain --forced 100 --planned 1000 --max-concurrency 10
    python -m benchmarks.retrain --forced 0 --planned 0 --drift-demo 10 --shifted 3 --no-write   # the issue's demo
    python -m benchmarks.retrain --forced 0 --planned 0 --drift-fleet 10 --shifted 3 --no-write  # with default settings

``forced``
    ``--forced`` demo machines (``--days`` of generated telemetry each), each with a champion (one trained for
    real, its registry items copied to the other machines, so the run does not wait for N trainings first), and
    ``POST /retrain {"all": true, "force": true}``: every item takes its model's lock, writes its trigger and
    submits a real training job. Timed from the request until the run's summary is written (every model
    decided and its job started); the trainings themselves then run on the local cloud's workers and are not
    waited for (on 2 cores, N real trainings take N times one).
``planned``
    ``--planned`` models (synthetic champions, no data) in a plan-only run (``dry_run``: each item decides
    ``forced`` and records ``planned``, starting nothing, so training is stubbed out): the same map over
    N items. Timed from StartExecution until the run's summary is written.

``drift-demo``
    The issue's demonstration: ``--drift-demo`` demo machines with champions (one month of generated
    telemetry, the same on each; one champion trained for real, copied to the others as in ``forced``), the data of
    ``--shifted`` of them (never the trained one) shifted (every sensor times 5), then RetrainSchedule fired
    through the local cloud's HTTP route, as ``fire-schedule RetrainSchedule`` does. Checked: exactly the
    shifted machines get ``drift`` triggers with their figures, every other item records ``skip: stable``.
    The items judge the whole 30 days (test_retrain_flow's ITEM_SETTINGS: drift means every feature drifted),
    so an unshifted machine's verdict is not left to the noise of a one-week window. Timed from the firing
    until the run's summary is written.

``drift-fleet``
    The same demonstration as a plant would see it, with the deployment's default drift settings:
    ``--drift-fleet`` demo machines, each its own (generate_fleet: every machine its own seed, speed and
    failures), trained on its first 60 days (as ``make run`` loads them); then 7 more days of each machine's
    own telemetry arrive (the same generated process continued), with ``--shifted`` of them shifted (the
    motor 8 degrees C warmer and vibration up by half), and RetrainSchedule is fired. Recorded, not
    asserted: every item's decision and figures, and whether exactly the shifted machines were retrained
    for ``drift``.

All record the Distributed Map's MaxConcurrency (the template's RetrainMaxConcurrency) and every item's
outcome (checked: exactly N, none failed), not only the execution's status, which moto's map does not fail
when its children do.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import requests

from localcloud.cloud import LocalCloud
from localcloud.demo import data_location, load_demo_data
from localcloud.demo_data import demo_machine_names, generate_fleet, generate_machine_telemetry
from modelforge.adapters.telemetry import TelemetryStore
from modelforge.adapters.trigger_store import TriggerStore
from tests.conftest import free_port, one_boto3_session
from tests.integration.test_retrain_flow import ITEM_SETTINGS

RESULTS = Path(__file__).parent / "results" / "retrain.json"
FAST_TRAINING = {"SEARCH_BUDGET": "1", "MAX_BOOST_ROUNDS": "100"}


def start_cloud(state_dir: Path, max_concurrency: int, items: dict[str, str] | None = None) -> LocalCloud:
    overrides: dict[str, dict[str, str]] = {"TrainingFunction": FAST_TRAINING}
    if items:
        overrides["RetrainItemFunction"] = items
    cloud = LocalCloud(aws_port=free_port(), api_port=free_port(), state_dir=state_dir,
                       parameter_overrides={"RetrainMaxConcurrency": str(max_concurrency)},
                       environment_overrides=overrides)
    return cloud.start()


def train_one_champion(cloud: LocalCloud, machine: str) -> dict[str, Any]:
    answer = requests.post(f"{cloud.api_url}/train", json={"indicator": "status", "machine_name": machine},
                           timeout=30)
    answer.raise_for_status()
    process_id = answer.json()["process_id"]
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        job = requests.get(f"{cloud.api_url}/status/{process_id}", timeout=30).json()
        if job["status"] in ("completed", "failed"):
            if job.get("gate_decision") != "promoted":
                raise RuntimeError(f"the seed champion was not promoted: {job}")
            return dict(job)
        time.sleep(1)
    raise RuntimeError("the seed champion did not train in time")


def copy_champion(cloud: LocalCloud, source: str, targets: list[str]) -> None:
    """The source machine's champion (pointer and version) registered under each target machine."""
    dynamodb = cloud.client("dynamodb")
    table = cloud.stack.tables["ModelsTable"].name
    pointer = dynamodb.get_item(TableName=table, Key={"model_name": {"S": f"champion#{source}#status"},
                                                      "version": {"S": "current"}})["Item"]
    version = dynamodb.get_item(TableName=table, Key={"model_name": {"S": f"{source}#status"},
                                                      "version": pointer["champion_version"]})["Item"]
    for machine in targets:
        dynamodb.put_item(TableName=table, Item={**version, "model_name": {"S": f"{machine}#status"},
                                                 "machine_name": {"S": machine},
                                                 "machine_names": {"L": [{"S": machine}]}})
        dynamodb.put_item(TableName=table, Item={**pointer, "model_name": {"S": f"champion#{machine}#status"}})


def wait_for_summary(cloud: LocalCloud, run_id: str, timeout: float) -> dict[str, Any]:
    table = cloud.stack.tables["TriggersTable"].name
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        item = cloud.client("dynamodb").get_item(TableName=table, Key={"trigger_id": {"S": f"run#{run_id}"}},
                                                 ConsistentRead=True).get("Item")
        if item and item["run_status"]["S"] != "running":
            run = requests.get(f"{cloud.api_url}/retrains/{run_id}", timeout=60).json()
            return dict(run)
        time.sleep(0.5)
    raise RuntimeError(f"run {run_id} not summarized after {timeout} s")


def fire_the_schedule(cloud: LocalCloud) -> tuple[str, dict[str, Any], float]:
    """RetrainSchedule fired through the local cloud's HTTP route: the run's id, the run once summarized, and
    the seconds from the firing until then."""
    began = time.perf_counter()
    fired = requests.post(f"{cloud.api_url}/_local/schedules/RetrainSchedule/fire", timeout=60)
    fired.raise_for_status()
    run_id = fired.json()["result"]["executionArn"].rsplit(":", 1)[-1]
    run = wait_for_summary(cloud, run_id, timeout=1800)
    return run_id, run, time.perf_counter() - began


def forced_arm(cloud: LocalCloud, machines: int, days: float) -> dict[str, Any]:
    with one_boto3_session():
        names = [m.machine_name for m in load_demo_data(cloud.stack, machines=machines, days=days)]
        # The one champion trained for real gets a month with enough failures to train and pass the gate.
        bucket, prefix = data_location(cloud.stack)
        TelemetryStore(bucket, prefix).write(names[0], generate_machine_telemetry(
            names[0], start="2025-01-01", days=30, seed=7, failures_per_30_days=6.0).telemetry)
    seed = train_one_champion(cloud, names[0])
    copy_champion(cloud, names[0], names[1:])
    began = time.perf_counter()
    answer = requests.post(f"{cloud.api_url}/retrain", json={"all": True, "force": True}, timeout=30)
    answer.raise_for_status()
    run = wait_for_summary(cloud, answer.json()["run_id"], timeout=1800)
    seconds = time.perf_counter() - began
    summary = run["summary"]
    assert summary["models"] == machines and summary["by_outcome"] == {"started": machines}, summary
    return {"models": machines, "days_per_machine": days, "seconds_until_summary": round(seconds, 1),
            "models_per_second": round(machines / seconds, 2), "summary": summary,
            "triggers": len(run["triggers"]), "seed_champion_job": seed["process_id"], "run_status": run["status"]}


def drift_demo_arm(cloud: LocalCloud, machines: int, shifted: int) -> dict[str, Any]:
    """Every machine carries the trained machine's month (so the copied champion is each one's own: demo
    machines generated with other seeds differ from it by far more than any threshold, run by run)."""
    names = demo_machine_names(machines)
    moved = names[-shifted:] if shifted else []
    bucket, prefix = data_location(cloud.stack)
    store = TelemetryStore(bucket, prefix)
    month = generate_machine_telemetry(names[0], start="2025-01-01", days=30, seed=7,
                                       failures_per_30_days=6.0).telemetry
    sensors = [c for c in month.columns if c != "timestamp"]
    with one_boto3_session():
        store.write(names[0], month)
    seed = train_one_champion(cloud, names[0])
    copy_champion(cloud, names[0], names[1:])
    with one_boto3_session():
        for name in names[1:]:
            frame = month.copy()
            if name in moved:
                frame[sensors] = frame[sensors] * 5  # every sensor far off its training range
            store.write(name, frame)
    run_id, run, seconds = fire_the_schedule(cloud)
    with one_boto3_session():
        store_outcomes = TriggerStore(cloud.stack.tables["TriggersTable"].name).outcomes(run_id)
    outcomes = {o.model_name.split("#", 1)[0]: o for o in store_outcomes}
    triggers = {t["machine_name"]: t for t in run["triggers"]}
    decisions = {name: outcomes[name].decision for name in sorted(outcomes)}
    assert sorted(outcomes) == sorted(names), decisions
    assert sorted(triggers) == sorted(moved), triggers
    assert all(t["reason"] == "drift" and {"drift_share", "max_psi"} <= set(t["figures"]) for t in triggers.values())
    assert {n: d for n, d in decisions.items() if n not in moved} == {n: "skip: stable" for n in names
                                                                      if n not in moved}, decisions
    return {"models": machines, "shifted": moved, "seconds_until_summary": round(seconds, 1),
            "summary": {k: v for k, v in run["summary"].items() if k != "failed_models"}, "decisions": decisions,
            "drift_figures": {n: t["figures"] for n, t in sorted(triggers.items())},
            "stable_figures": {n: outcomes[n].figures for n in names if n not in moved},
            "seed_champion_job": seed["process_id"], "run_id": run_id, "run_status": run["status"]}


def drift_fleet_arm(cloud: LocalCloud, machines: int, shifted: int) -> dict[str, Any]:
    names = demo_machine_names(machines)
    moved = names[-shifted:] if shifted else []
    fleet = {m.machine_name: m.telemetry for m in generate_fleet(names, start="2025-01-01", days=67, seed=0)}
    cut = pd.Timestamp("2025-03-02", tz="UTC")  # 60 days to train on (as `make run` loads), then a new week
    bucket, prefix = data_location(cloud.stack)
    store = TelemetryStore(bucket, prefix)
    with one_boto3_session():
        for name, frame in fleet.items():
            store.write(name, frame[frame["timestamp"] < cut])
    champions = train_champions(cloud, names)
    with one_boto3_session():
        for name in moved:
            later = fleet[name]["timestamp"] >= cut
            fleet[name].loc[later, "Motor_Temperature_C"] += 8.0
            fleet[name].loc[later, "Vibration_RMS_mm_s"] *= 1.5
        for name, frame in fleet.items():
            store.write(name, frame)
    run_id, run, seconds = fire_the_schedule(cloud)
    with one_boto3_session():
        outcomes = {o.model_name.split("#", 1)[0]: o
                    for o in TriggerStore(cloud.stack.tables["TriggersTable"].name).outcomes(run_id)}
    retrained = sorted(t["machine_name"] for t in run["triggers"] if t["reason"] == "drift")
    with_champion = [n for n in names if champions[n] == "promoted"]
    return {"models": len(outcomes), "machines": machines, "champions": champions, "shifted": moved,
            "exactly_the_shifted_retrained_for_drift": retrained == sorted(set(moved) & set(with_champion)),
            "retrained_for_drift": retrained, "seconds_until_summary": round(seconds, 1),
            "decisions": {n: outcomes[n].decision for n in sorted(outcomes)},
            "figures": {n: {k: outcomes[n].figures.get(k) for k in ("drift_status", "drift_share", "max_psi")}
                        for n in sorted(outcomes)},
            "summary": {k: v for k, v in run["summary"].items() if k != "failed_models"}, "run_id": run_id}


def train_champions(cloud: LocalCloud, names: list[str]) -> dict[str, str]:
    """Each machine's first model, trained through the API; its gate decision (only promoted ones are planned)."""
    started = {}
    for name in names:
        while True:  # MaxJobsInFlight answers 429 while the stack has its fill of jobs
            answer = requests.post(f"{cloud.api_url}/train", json={"indicator": "status", "machine_name": name},
                                   timeout=30)
            if answer.status_code != 429:
                break
            time.sleep(2)
        answer.raise_for_status()
        started[name] = answer.json()["process_id"]
    decided: dict[str, str] = {}
    deadline = time.monotonic() + 1800
    while len(decided) < len(names) and time.monotonic() < deadline:
        for name, process_id in started.items():
            job = requests.get(f"{cloud.api_url}/status/{process_id}", timeout=30).json()
            if name not in decided and job["status"] in ("completed", "failed"):
                decided[name] = job.get("gate_decision") or f"failed: {job.get('error_message')}"
        time.sleep(2)
    return decided


def planned_arm(cloud: LocalCloud, models: int) -> dict[str, Any]:
    dynamodb = cloud.client("dynamodb")
    table = cloud.stack.tables["ModelsTable"].name
    for i in range(models):
        machine = f"PLAN-{i:05d}"
        dynamodb.put_item(TableName=table, Item={
            "model_name": {"S": f"{machine}#status"}, "version": {"S": "v1"}, "machine_name": {"S": machine},
            "indicator": {"S": "status"}, "artifact_uri": {"S": "s3://none/model.ubj"},
            "artifact_sha256": {"S": "0" * 64}, "status": {"S": "champion"}})
        dynamodb.put_item(TableName=table, Item={
            "model_name": {"S": f"champion#{machine}#status"}, "version": {"S": "current"},
            "champion_version": {"S": "v1"}, "revision": {"N": "1"}})
    run_id = str(uuid.uuid4())
    began = time.perf_counter()
    cloud.client("stepfunctions").start_execution(
        stateMachineArn=cloud.stack.state_machines["RetrainStateMachine"].arn, name=run_id,
        input=json.dumps({"all": True, "force": True, "dry_run": True}))
    run = wait_for_summary(cloud, run_id, timeout=3600)
    seconds = time.perf_counter() - began
    summary = run["summary"]
    planned = summary["by_outcome"].get("planned", 0)
    return {"models": models, "planned": planned, "seconds_until_summary": round(seconds, 1),
            "models_per_second": round(summary["models"] / seconds, 2), "summary": {
                k: v for k, v in summary.items() if k != "failed_models"}, "failed": len(summary["failed_models"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--forced", type=int, default=100, help="demo machines retrained by force (0: skip)")
    parser.add_argument("--planned", type=int, default=1000, help="models in the plan-only run (0: skip)")
    parser.add_argument("--days", type=float, default=14, help="days of telemetry per demo machine")
    parser.add_argument("--max-concurrency", type=int, default=10, help="the map's MaxConcurrency")
    parser.add_argument("--drift-demo", type=int, default=0, help="demo machines in the drift demo (0: skip)")
    parser.add_argument("--drift-fleet", type=int, default=0,
                        help="demo machines in the drift demo with default settings (0: skip)")
    parser.add_argument("--shifted", type=int, default=3, help="of those, how many have their data shifted")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    result: dict[str, Any] = {"max_concurrency": args.max_concurrency, "cpu_count": os.cpu_count(),
                              "platform": platform.platform(), "load_average_before": os.getloadavg()}
    for arm, size in (("planned", args.planned), ("forced", args.forced), ("drift_demo", args.drift_demo),
                      ("drift_fleet", args.drift_fleet)):
        if not size:
            continue
        with tempfile.TemporaryDirectory() as state_dir:
            cloud = start_cloud(Path(state_dir), args.max_concurrency,
                                ITEM_SETTINGS if arm == "drift_demo" else None)
            try:
                if arm == "planned":
                    result[arm] = planned_arm(cloud, size)
                elif arm == "forced":
                    result[arm] = forced_arm(cloud, size, args.days)
                elif arm == "drift_demo":
                    result[arm] = drift_demo_arm(cloud, size, args.shifted)
                else:
                    result[arm] = drift_fleet_arm(cloud, size, args.shifted)
                result[arm]["load_average"] = os.getloadavg()
            finally:
                cloud.stop()
        print(arm, json.dumps(result[arm]), flush=True)
    result["load_average_after"] = os.getloadavg()
    print(json.dumps(result, indent=2))
    if not args.no_write:
        # An arm not run this time keeps its last figures (each arm says its own machine load).
        kept = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps({**kept, **result}, indent=2) + "\n")


if __name__ == "__main__":
    main()
