"""Fleet-scale benchmark: the same rows imported and trained as 10 machines and as 1,000 (issue 15, item 1).

    python -m benchmarks.fleet                      # make bench-fleet: 200,000 rows, 10 vs 1,000 machines
    python -m benchmarks.fleet --rows 20000 --label smoke

The data: ``--rows`` readings of the demo generator (``localcloud/demo_data.py``, a reading a minute, ten
failures per 30 days), generated as 10 machines of ``rows / 10`` rows each. The 10-machine arm is those
machines; the 1,000-machine arm is the same rows cut into 100 consecutive pieces per machine, each piece a
machine of its own (``rows / 1000`` rows: 200 by default, the size of a C-MAPSS engine, the issue's
per-machine case). The failures are the generator's onsets, imported as recorded failure events (each in
the piece that holds it), and training uses them (``failure_events: records``), so both arms hold exactly the
same rows and failures, and the ratio 1000/10 measures what costs per machine. 200,000 rows: the 10-machine
arm then trains in well under a minute on 2 cores, and a per-machine cost of 10 ms shows as 10 s.

Both arms run in one process, one after the other, against one local cloud (``localcloud.LocalCloud``: moto
in server mode, as ``make run``), through the service's own library paths:

``import``
    ``modelforge.importer.import_dataset`` into ``TelemetryStore`` (the data bucket) and ``FailureEventStore``,
    what ``modelforge-import`` runs; the arms write under prefixes of their own.
``train``
    ``logic/training_job.py: train_for_job``, what the training Lambda runs, with the stack's adapters
    (telemetry and failure events read from S3, artifacts and the registry item written), a fleet job with
    the template's default settings (the same search in both arms). Per stage (the pipeline's stopwatch, the
    use case's read, report and write) from the registry item's ``timings``; ``train_seconds`` is the wall
    time of the whole call.

Ratios are arm 1000 over arm 10, per stage. Other processes on the machine slow both arms, not equally;
``load_average_before_after`` says how busy it was. Results go to ``benchmarks/results/fleet.json`` under
``--label`` (other labels' runs are kept, so a before and an after sit side by side).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

RESULTS = Path(__file__).parent / "results" / "fleet.json"
BASE_MACHINES = 10
FAILURES_PER_30_DAYS = 10.0
SEED = 15


def base_fleet(rows: int) -> list[Any]:
    """``BASE_MACHINES`` demo machines of exactly ``rows / BASE_MACHINES`` readings each."""
    from localcloud.demo_data import generate_fleet

    per_machine = rows // BASE_MACHINES
    days = per_machine * 1.05 / 1440  # the generator leaves ~1 % out as outages: generate a little more
    fleet = generate_fleet([f"BASE-{i:02d}" for i in range(BASE_MACHINES)], days=days, seed=SEED,
                           failures_per_30_days=FAILURES_PER_30_DAYS)
    trimmed = []
    for machine in fleet:
        frame = machine.telemetry.iloc[:per_machine].reset_index(drop=True)
        onsets = [o for o in machine.failure_onsets if o <= frame["timestamp"].iloc[-1]]
        trimmed.append((frame, onsets))
    return trimmed


def split_fleet(base: list[Any], machines: int) -> Any:
    """The base fleet as ``machines`` machines (consecutive pieces), with each failure in its piece."""
    from modelforge.domain.importing import ImportedData, normalize_events

    pieces = machines // len(base)
    telemetry: dict[str, pd.DataFrame] = {}
    events: list[dict[str, Any]] = []
    for b, (frame, onsets) in enumerate(base):
        for p, rows in enumerate(np.array_split(np.arange(len(frame)), pieces)):
            name = f"FLEET{machines}-{b * pieces + p:04d}"
            piece = frame.iloc[rows].reset_index(drop=True)
            telemetry[name] = piece
            first, last = piece["timestamp"].iloc[0], piece["timestamp"].iloc[-1]
            events += [{"machine_name": name, "timestamp": o, "component": None, "failure_type": "failure"}
                       for o in onsets if first <= o <= last]
    return ImportedData(telemetry=telemetry, events=normalize_events(pd.DataFrame(events)))


class _OneJob:
    """The job store's read, for one job held in memory (the use case reads nothing else from it)."""

    def __init__(self, job: Any) -> None:
        self.job = job

    def get(self, process_id: str) -> Any:
        return self.job


def fleet_job(machines: list[str], name: str) -> Any:
    from modelforge.jobs import FailureEventSource, Indicator, Job, JobStatus

    now = datetime.now(UTC)
    return Job(process_id=str(uuid.uuid4()), indicator=Indicator.STATUS, machine_name=name,
               machine_names=machines, status=JobStatus.RUNNING, created_at=now, updated_at=now,
               failure_events=FailureEventSource.RECORDS)


def run_arm_import(imported: Any, stores: dict[str, Any]) -> dict[str, Any]:
    from modelforge.importer import import_dataset

    started = time.perf_counter()
    summary = import_dataset(imported, stores["telemetry"], stores["events"])
    return {"import_seconds": round(time.perf_counter() - started, 3), "rows": summary["rows"],
            "events": summary["events"], "machines": summary["machines"]}


def run_arm_train(machines: list[str], stores: dict[str, Any], cloud_env: dict[str, str]) -> dict[str, Any]:
    from modelforge.adapters.model_registry import ModelRegistry
    from modelforge.adapters.model_store import ModelArtifactStore
    from modelforge.logic.training_job import TrainingDependencies, TrainingTask, train_for_job
    from modelforge.registry import ModelName
    from modelforge.settings import TrainingSettings

    settings = TrainingSettings.from_env(cloud_env)
    job = fleet_job(machines, f"FLEET{len(machines)}")
    registry = ModelRegistry(settings.models_table_name)
    deps = TrainingDependencies(jobs=_OneJob(job), telemetry=stores["telemetry"],
                                artifacts=ModelArtifactStore(settings.models_bucket_name), registry=registry,
                                failure_events=stores["events"])
    started = time.perf_counter()
    outcome = train_for_job(TrainingTask(process_id=job.process_id), deps, settings.pipeline_config())
    seconds = time.perf_counter() - started
    version = registry.get_version(ModelName(job.machine_name, job.indicator), outcome.model_id)
    metrics = {k: version.metrics.get(k) for k in ("recall", "precision", "pr_auc", "roc_auc",
                                                   "events_caught_ahead", "threshold") if k in version.metrics}
    return {"train_seconds": round(seconds, 3), "timings": dict(version.timings),
            "rows_train": version.data.get("rows_train"), "rows_test": version.data.get("rows_test"),
            "failure_events_train": version.data.get("failure_events_train"),
            "failure_events_test": version.data.get("failure_events_test"), "metrics": metrics}


def ratios(small: dict[str, Any], large: dict[str, Any]) -> dict[str, float | None]:
    def ratio(a: float | None, b: float | None) -> float | None:
        return round(b / a, 2) if a and b is not None else None

    out = {"import": ratio(small["import_seconds"], large["import_seconds"]),
           "train": ratio(small["train_seconds"], large["train_seconds"])}
    for stage in dict.fromkeys([*small["timings"], *large["timings"]]):
        out[stage] = ratio(small["timings"].get(stage), large["timings"].get(stage))
    return out


def run(rows: int, splits: list[int]) -> dict[str, Any]:
    from localcloud.cloud import LocalCloud
    from localcloud.demo import data_location
    from modelforge.adapters.failure_events import FailureEventStore
    from modelforge.adapters.telemetry import TelemetryStore

    load_before = os.getloadavg()
    base = base_fleet(rows)
    arms: dict[int, dict[str, Any]] = {}
    with LocalCloud(aws_port=free_port(), api_port=free_port()) as cloud:
        bucket, prefix = data_location(cloud.stack)
        env = dict(cloud.stack.functions["TrainingFunction"].environment)
        stores = {n: {"telemetry": TelemetryStore(bucket, f"bench-fleet-{n}/{prefix}"),
                      "events": FailureEventStore(bucket, f"bench-fleet-{n}/failure_events")} for n in splits}
        imported = {n: split_fleet(base, n) for n in splits}
        for n in splits:
            arms[n] = run_arm_import(imported[n], stores[n])
            print(f"{n} machines: imported in {arms[n]['import_seconds']} s", flush=True)
        for n in splits:
            arms[n].update(run_arm_train(sorted(imported[n].telemetry), stores[n], env))
            print(f"{n} machines: trained in {arms[n]['train_seconds']} s {arms[n]['timings']}", flush=True)
    small, large = arms[min(splits)], arms[max(splits)]
    return {"rows": rows, "splits": splits, "arms": {str(n): arms[n] for n in splits},
            f"ratio_{max(splits)}_over_{min(splits)}": ratios(small, large),
            "goals": {"import_ratio_max": 1.5, "train_ratio_max": 1.5},
            "load_average_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)]}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--splits", default="10,1000", help="machine counts, multiples of 10 (default 10,1000)")
    parser.add_argument("--label", default="current", help="the run's name in the results file")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    splits = sorted(int(s) for s in args.splits.split(","))
    result = run(args.rows, splits)
    result.update({"commit": _commit(), "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
                   "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                               "platform": platform.platform()}})
    saved = json.loads(args.out.read_text()) if args.out.exists() else {}
    saved.setdefault("runs", {})[args.label] = result
    args.out.write_text(json.dumps(saved, indent=2) + "\n")
    print(json.dumps(result[f"ratio_{max(splits)}_over_{min(splits)}"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
