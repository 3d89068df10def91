"""Load benchmark: POST /train from many concurrent clients against the local cloud, then an audit that every
accepted submission has exactly one job and one execution, and that duplicates were deduplicated.

    python -m benchmarks.load                       # 500 requests, 50 clients (make bench-load)
    python -m benchmarks.load --requests 100 --clients 10 --no-write    # a smoke run

What it measures: the API -> job -> execution path (API Gateway front, the ApiFunction handler with
Powertools idempotency, DynamoDB, StartExecution, the state machine's own status writes). It does NOT measure
training: TrainingFunction is replaced by ``stub_training`` below, which returns a model id and an S3 address
at once, so hundreds of executions do not queue behind XGBoost on a laptop's cores; GateFunction (which would
score that model against the champion) by ``stub_gate``, which rejects it. Everything runs in this
process tree and talks to 127.0.0.1 only; it stops by itself (bounded waits everywhere).

The mix: ``--duplicates`` of the requests (20 %) repeat an earlier request's ``Idempotency-Key`` with the same
body (the retry a flaky network makes); the others are distinct submissions, a quarter of them without a key.
A concurrent duplicate may get 409 with Retry-After while the first is in flight; it is retried after that
many seconds, as a client should. Latency is per request, from the first attempt to the final answer
(retries included), measured at the client.

The audit, after every execution has ended (bounded): distinct accepted process_ids == items in the jobs table
== executions of the state machine, every accepted process_id has its job and its execution (named by the
process_id), every request with the same key got the same process_id; ``lost`` counts accepted process_ids
missing a job or an execution. Results go to benchmarks/results/load.json.

The local cloud runs each function's invocations in at most 8 warm worker processes (max_concurrency in
localcloud/runtime.py; AWS would scale out instead): a sampler reports how often all 8 ApiFunction workers
were busy, i.e. whether that cap was the bottleneck.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import socket
import statistics
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results" / "load.json"
REPO_ROOT = Path(__file__).resolve().parent.parent
STUB_TRAINING = "benchmarks.load.stub_training"
MAX_CONFLICT_RETRIES = 30
REQUEST_TIMEOUT_S = 120
SETTLE_TIMEOUT_S = 300


STUB_GATE = "benchmarks.load.stub_gate"


def stub_training(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """TrainingFunction's stand-in: what the real handler returns, without training (see the module doc)."""
    model_id = f"stub-{event['process_id']}"
    return {"model_id": model_id, "bucket_address": f"s3://stub-models/model/{model_id}.ubj"}


def stub_gate(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """GateFunction's stand-in (the stub trained no model to score): rejects, so no champion changes."""
    return {"decision": "rejected", "reason": "load benchmark: no model was trained"}


# ---------------------------------------------------------------- the load


@dataclass
class Planned:
    index: int
    body: dict[str, Any]
    key: str | None
    duplicate_of: int | None = None  # index of the request whose key and body this one repeats


@dataclass
class Outcome:
    planned: Planned
    status: int | None = None
    process_id: str | None = None
    latency_ms: float = 0.0
    attempts: int = 0
    conflicts: int = 0
    error: str | None = None
    statuses: list[int] = field(default_factory=list)


def plan(requests_total: int, duplicate_share: float, machines: list[str], seed: int) -> list[Planned]:
    rng = random.Random(seed)
    duplicates = round(requests_total * duplicate_share)
    originals: list[Planned] = []
    for index in range(requests_total - duplicates):
        body: dict[str, Any] = {"indicator": rng.choice(["status", "health"]), "machine_name": rng.choice(machines)}
        with_key = index % 4 != 3  # a quarter of the distinct submissions carry no key
        originals.append(Planned(index, body, f"load-{seed}-{index}" if with_key else None))
    keyed = [p for p in originals if p.key is not None]
    repeats = [Planned(len(originals) + i, dict(source.body), source.key, duplicate_of=source.index)
               for i, source in enumerate(rng.choices(keyed, k=duplicates))]
    # Each duplicate is placed shortly after its original, so many arrive while the first is still in flight.
    order = list(originals)
    for repeat in repeats:
        position = next(i for i, p in enumerate(order) if p.index == repeat.duplicate_of)
        order.insert(min(len(order), position + 1 + rng.randrange(0, 60)), repeat)
    return order


def send(session: Any, api_url: str, planned: Planned) -> Outcome:
    import requests

    outcome = Outcome(planned)
    headers = {"content-type": "application/json"}
    if planned.key is not None:
        headers["Idempotency-Key"] = planned.key
    started = time.perf_counter()
    try:
        while True:
            outcome.attempts += 1
            response = session.post(f"{api_url}/train", json=planned.body, headers=headers, timeout=REQUEST_TIMEOUT_S)
            outcome.statuses.append(response.status_code)
            if response.status_code == 409 and outcome.conflicts < MAX_CONFLICT_RETRIES:
                outcome.conflicts += 1
                time.sleep(float(response.headers.get("Retry-After", "1")))
                continue
            outcome.status = response.status_code
            if response.status_code == 200:
                outcome.process_id = response.json()["process_id"]
            else:
                outcome.error = response.text[:300]
            break
    except requests.RequestException as error:
        outcome.error = f"{type(error).__name__}: {error}"
    outcome.latency_ms = (time.perf_counter() - started) * 1000
    return outcome


class BusySampler:
    """Samples how many ApiFunction workers are busy, to tell whether the local cap was the bottleneck."""

    def __init__(self, pool: Any, period_s: float = 0.01) -> None:
        self._pool, self._period = pool, period_s
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._period):
            self.samples.append(self._pool.busy)

    def __enter__(self) -> BusySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from /proc/stat; (0, 0) where there is none."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in [0, 100])."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


# ---------------------------------------------------------------- the audit


def settle(cloud: Any, expected: int, timeout_s: float) -> dict[str, int]:
    """Waits (bounded) until the state machine has `expected` executions and none is running."""
    sfn = cloud.client("stepfunctions")
    deadline = time.monotonic() + timeout_s
    while True:
        statuses = Counter(e["status"] for e in list_executions(sfn, cloud.outputs["StateMachineArn"]))
        if sum(statuses.values()) >= expected and statuses.get("RUNNING", 0) == 0:
            return dict(statuses)
        if time.monotonic() > deadline:
            return dict(statuses)
        time.sleep(0.5)


def list_executions(sfn: Any, arn: str) -> list[dict[str, Any]]:
    executions: list[dict[str, Any]] = []
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=arn):
        executions.extend(page["executions"])
    return executions


def scan_jobs(cloud: Any) -> list[dict[str, Any]]:
    dynamodb = cloud.client("dynamodb")
    items: list[dict[str, Any]] = []
    for page in dynamodb.get_paginator("scan").paginate(TableName=cloud.stack.tables["JobsTable"].name,
                                                        ConsistentRead=True):
        items.extend({k: next(iter(v.values())) for k, v in item.items()} for item in page["Items"])
    return items


def audit(cloud: Any, outcomes: list[Outcome]) -> dict[str, Any]:
    accepted = [o for o in outcomes if o.status == 200 and o.process_id]
    accepted_ids = {o.process_id for o in accepted}
    execution_states = settle(cloud, len(accepted_ids), SETTLE_TIMEOUT_S)
    jobs = scan_jobs(cloud)
    executions = list_executions(cloud.client("stepfunctions"), cloud.outputs["StateMachineArn"])
    job_ids = Counter(j["process_id"] for j in jobs)
    execution_names = Counter(e["name"] for e in executions)
    by_key: dict[str, set[str]] = {}
    for outcome in accepted:
        if outcome.planned.key is not None:
            by_key.setdefault(outcome.planned.key, set()).add(str(outcome.process_id))
    return {
        "accepted_process_ids": len(accepted_ids),
        "jobs": len(jobs),
        "executions": len(executions),
        "lost": sum(1 for pid in accepted_ids if job_ids[pid] != 1 or execution_names[pid] != 1),
        "jobs_without_accepted_request": sum(1 for pid in job_ids if pid not in accepted_ids),
        "executions_without_job": sum(1 for name in execution_names if name not in job_ids),
        "keys_answered_with_two_process_ids": sum(1 for ids in by_key.values() if len(ids) > 1),
        "job_statuses": dict(Counter(j["status"] for j in jobs)),
        "execution_statuses": execution_states,
    }


# ---------------------------------------------------------------- main


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run(args: argparse.Namespace) -> dict[str, Any]:
    # The worker processes import the stub from this package: make sure they can, wherever we were started.
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    import requests

    from localcloud.cloud import LocalCloud
    from localcloud.demo import load_demo_data
    from localcloud.template import resolve_stack

    stubs = {"TrainingFunction": STUB_TRAINING, "GateFunction": STUB_GATE}
    overrides = {name: handler for name, handler in stubs.items() if name in resolve_stack().functions}
    # The cost guard (MaxJobsInFlight) at the template's maximum: this measures the API -> job -> execution
    # path under load, and a 429 for jobs in flight would be the guard working, not a request lost.
    with LocalCloud(aws_port=free_port(), api_port=free_port(), handler_overrides=overrides,
                    parameter_overrides={"MaxJobsInFlight": "1000"}) as cloud:
        machines = [m.machine_name for m in load_demo_data(cloud.stack, machines=args.machines, days=args.days)]
        requests_plan = plan(args.requests, args.duplicates, machines, args.seed)
        sessions = threading.local()

        def client(planned: Planned) -> Outcome:
            if not hasattr(sessions, "session"):
                sessions.session = requests.Session()
            return send(sessions.session, cloud.api_url, planned)

        # One warm-up request per client slot is not counted: it starts the API's worker processes.
        with ThreadPoolExecutor(args.clients) as pool:
            list(pool.map(lambda _: requests.get(f"{cloud.api_url}/health", timeout=60), range(args.clients)))
        # Unloaded: one client, one request at a time, to tell service time from queueing under load.
        single = requests.Session()
        unloaded = [send(single, cloud.api_url, Planned(-1 - i, {"indicator": "status", "machine_name": machines[0]},
                                                        f"unloaded-{args.seed}-{i}"))
                    for i in range(args.unloaded)]
        api_pool = cloud.runtime.pool(cloud.stack.functions["ApiFunction"].name) if cloud.runtime else None
        cpu_before = cpu_times()
        started = time.perf_counter()
        with BusySampler(api_pool) as sampler, ThreadPoolExecutor(args.clients) as pool:
            outcomes = list(pool.map(client, requests_plan))
        load_seconds = time.perf_counter() - started
        cpu_after = cpu_times()
        checked = audit(cloud, outcomes + unloaded)
        cap = api_pool.max_concurrency if api_pool else 0

    accepted = [o for o in outcomes if o.status == 200]
    latencies = [o.latency_ms for o in outcomes if o.status is not None]
    first_attempt = [o.latency_ms for o in outcomes if o.status is not None and o.attempts == 1]
    samples = sampler.samples or [0]
    return {
        "what": "POST /train through the local cloud's HTTP API; TrainingFunction and GateFunction are stubs "
                "(no training, no scoring): this measures the API / job / execution path, not training",
        "stubbed_functions": sorted(overrides),
        "requests": len(outcomes),
        "clients": args.clients,
        "duplicates_planned": sum(1 for p in requests_plan if p.duplicate_of is not None),
        "without_key": sum(1 for p in requests_plan if p.key is None),
        "accepted": len(accepted),
        "distinct_process_ids": checked["accepted_process_ids"],  # the load's and the unloaded requests'
        "distinct_process_ids_from_load": len({o.process_id for o in accepted if o.process_id}),
        "jobs": checked["jobs"],
        "executions": checked["executions"],
        "lost": checked["lost"],
        "jobs_without_accepted_request": checked["jobs_without_accepted_request"],
        "executions_without_job": checked["executions_without_job"],
        "keys_answered_with_two_process_ids": checked["keys_answered_with_two_process_ids"],
        "failed_requests": {str(k): v for k, v in Counter(o.status or o.error for o in outcomes
                                                          if o.status != 200).items()},
        "conflicts_409_retried": sum(o.conflicts for o in outcomes),
        "job_statuses": checked["job_statuses"],
        "execution_statuses": checked["execution_statuses"],
        "seconds": round(load_seconds, 3),
        "throughput_rps": round(len(accepted) / load_seconds, 2),
        "p50_ms": round(percentile(latencies, 50), 1),
        "p99_ms": round(percentile(latencies, 99), 1),
        "max_ms": round(max(latencies), 1),
        "mean_ms": round(statistics.fmean(latencies), 1),
        "p50_ms_first_attempt_only": round(percentile(first_attempt, 50), 1) if first_attempt else None,
        "unloaded_requests": len(unloaded),
        "unloaded_failed": sum(1 for o in unloaded if o.status != 200),
        "unloaded_p50_ms": round(percentile([o.latency_ms for o in unloaded], 50), 1) if unloaded else None,
        "api_workers_cap": cap,
        "api_workers_all_busy_share": round(sum(1 for s in samples if s >= cap) / len(samples), 3) if cap else None,
        "api_workers_mean_busy": round(statistics.fmean(samples), 2),
        "cpu_busy_share": round((cpu_after[0] - cpu_before[0]) / (cpu_after[1] - cpu_before[1]), 3)
        if cpu_after[1] > cpu_before[1] else None,
        "machine": {"cpu_count": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(), "demo_machines": args.machines, "demo_days": args.days},
    }


def report(result: dict[str, Any]) -> None:
    print(result["what"])
    rows = [
        ("requests", result["requests"]), ("clients", result["clients"]),
        ("duplicates (same key+body)", result["duplicates_planned"]), ("without key", result["without_key"]),
        ("accepted (200)", result["accepted"]),
        ("distinct process_ids (load)", result["distinct_process_ids_from_load"]),
        ("distinct process_ids (load + unloaded)", result["distinct_process_ids"]),
        ("jobs", result["jobs"]), ("executions", result["executions"]), ("lost", result["lost"]),
        ("keys with two process_ids", result["keys_answered_with_two_process_ids"]),
        ("409s retried", result["conflicts_409_retried"]), ("failed requests", result["failed_requests"]),
        ("job statuses", result["job_statuses"]), ("execution statuses", result["execution_statuses"]),
        ("load seconds", result["seconds"]), ("throughput (accepted/s)", result["throughput_rps"]),
        ("p50 ms", result["p50_ms"]), ("p99 ms", result["p99_ms"]), ("max ms", result["max_ms"]),
        (f"p50 ms unloaded (1 client, {result['unloaded_requests']} requests)", result["unloaded_p50_ms"]),
        (f"ApiFunction workers all {result['api_workers_cap']} busy", result["api_workers_all_busy_share"]),
        ("ApiFunction workers busy (mean)", result["api_workers_mean_busy"]),
        ("CPU busy (all cores, during load)", result["cpu_busy_share"]),
        ("cpu count / python", f"{result['machine']['cpu_count']} / {result['machine']['python']}"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")


def verdict(result: dict[str, Any]) -> list[str]:
    problems = []
    if result["lost"]:
        problems.append(f"{result['lost']} accepted submissions have no job or no execution")
    if not result["distinct_process_ids"] == result["jobs"] == result["executions"]:
        problems.append("distinct accepted process_ids, jobs and executions differ")
    if result["keys_answered_with_two_process_ids"]:
        problems.append("a duplicate with the same Idempotency-Key got another process_id")
    if result["accepted"] != result["requests"] or result["unloaded_failed"]:
        problems.append("some requests were not accepted")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duplicates", type=float, default=0.2, help="share of requests that repeat a key")
    parser.add_argument("--machines", type=int, default=2)
    parser.add_argument("--days", type=float, default=30)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--unloaded", type=int, default=20, help="sequential requests before the load")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--no-write", action="store_true", help="print only; do not write the JSON")
    args = parser.parse_args(argv)
    result = run(args)
    report(result)
    problems = verdict(result)
    for problem in problems:
        print(f"PROBLEM: {problem}", file=sys.stderr)
    if not args.no_write:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=2) + "\n")
        print(f"results written to {args.output}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
