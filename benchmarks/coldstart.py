"""Cold import of the API and predict handlers against importing boto3 and pydantic alone: the part of a cold
start that is this code's, on the floor every Lambda function here pays anyway.

    python -m benchmarks.coldstart                 # make bench-coldstart; writes benchmarks/results/coldstart.json
    python -m benchmarks.coldstart --rounds 5      # quicker
    python -m benchmarks.coldstart --functions /other/checkout/functions --no-write   # another tree

Every figure is one fresh interpreter importing one thing (timed inside it, so interpreter start-up is left
out); the arms run in alternation, ``rounds`` times, in a rotating order, so that all of them see the same
machine. ``ratio`` is the median over rounds of (handler import / ``import boto3, pydantic``), in wall-clock
seconds; ``cpu_ratio`` the same in CPU seconds of the importing process, which a busy shared machine disturbs
less. ``libraries`` imports what any handler built on these libraries pays before a line of this project's
code: ``import pydantic`` alone does not import ``BaseModel`` (pydantic loads it lazily), and Powertools'
event handler package imports every resolver it has (asyncio with AppSync's) and its event classes.

Two environments:
``local``
    As tests, the local cloud and benchmarks run: not in Lambda, so Powertools disables tracing.
``lambda_tracing_on``
    As deployed (``Tracing: Active``): ``LAMBDA_TASK_ROOT`` set, tracing on, so the X-Ray SDK is imported and
    patches botocore, as it must to trace.
The ``-X importtime`` top entries (cumulative) of one local API import are recorded beside them. Where valgrind
is installed, ``instructions`` counts the instructions each import executes (cachegrind, one run per arm,
``PYTHONHASHSEED=0``, interpreter start-up subtracted): a figure other processes on the machine do not move,
as the timings are moved on a shared 2-core machine (``--no-instructions`` skips it; about 20 s a run).
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
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results" / "coldstart.json"
ARMS = {
    "boto3_pydantic": "import boto3, pydantic",
    "libraries": "import boto3, pydantic; from pydantic import BaseModel; "
                 "from aws_lambda_powertools import Logger, Metrics, Tracer; "
                 "import aws_lambda_powertools.event_handler",
    "api": "import modelforge.handlers.api",
    "predict": "import modelforge.handlers.predict",
}
TIMED = ("import time; t, c = time.perf_counter(), time.process_time(); {statement}; "
         "print(time.perf_counter() - t, time.process_time() - c)")


def _environment(functions: Path, kind: str, scratch: str) -> dict[str, str]:
    # PYTHONDONTWRITEBYTECODE is dropped too: with it set, the warm-up below writes no bytecode and every round
    # of the handler arms compiles the project's modules again (25 ms), which the floor never pays.
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("POWERTOOLS_", "AWS_", "LAMBDA_", "_X_AMZN")) and key != "PYTHONDONTWRITEBYTECODE"}
    env.update({"PYTHONPATH": f"{functions}{os.pathsep}{ROOT}", "AWS_DEFAULT_REGION": "us-east-1"})
    if kind == "lambda_tracing_on":
        env.update({"LAMBDA_TASK_ROOT": scratch, "AWS_LAMBDA_FUNCTION_NAME": "bench",
                    "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR"})
    return env


def _seconds(statement: str, env: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one fresh interpreter's import."""
    out = subprocess.run([sys.executable, "-c", TIMED.format(statement=statement)], env=env, check=True,
                         capture_output=True, text=True).stdout
    wall, cpu = out.strip().splitlines()[-1].split()
    return float(wall), float(cpu)


def _alternated(env: dict[str, str], rounds: int) -> dict[str, Any]:
    names = list(ARMS)
    for name in names:  # compiles what has no bytecode yet, so that no arm pays for compiling
        _seconds(ARMS[name], env)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    for round_ in range(rounds):
        for name in names[round_ % len(names):] + names[:round_ % len(names)]:
            times[name].append(_seconds(ARMS[name], env))
    base = times["boto3_pydantic"]
    result: dict[str, Any] = {
        "median_seconds": {n: round(statistics.median(w for w, _ in t), 4) for n, t in times.items()},
        "median_cpu_seconds": {n: round(statistics.median(c for _, c in t), 4) for n, t in times.items()}}
    for name in ("api", "predict", "libraries"):
        pairs = list(zip(times[name], base, strict=True))
        result[f"{name}_ratio"] = round(statistics.median(h[0] / f[0] for h, f in pairs), 2)
        result[f"{name}_cpu_ratio"] = round(statistics.median(h[1] / f[1] for h, f in pairs), 2)
    return result


def _instructions(env: dict[str, str]) -> dict[str, Any]:
    """Instructions executed by each arm's import (start-up, ``pass``, subtracted), and their ratios to the
    floor's: deterministic for a given tree and interpreter."""
    env = {**env, "PYTHONHASHSEED": "0"}
    counts = {}
    for name, statement in {"startup": "pass", **ARMS}.items():
        run = subprocess.run(["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
                              sys.executable, "-c", statement], env=env, check=True, capture_output=True, text=True)
        (line,) = [x for x in run.stderr.splitlines() if "I   refs" in x or "I refs" in x]
        counts[name] = int(line.rsplit(":", 1)[1].replace(",", "").strip())
    net = {name: count - counts["startup"] for name, count in counts.items() if name != "startup"}
    ratios = {f"{name}_ratio": round(net[name] / net["boto3_pydantic"], 3) for name in ("api", "predict", "libraries")}
    return {"instructions": net, **ratios}


def _importtime_top(env: dict[str, str], count: int = 10) -> list[dict[str, Any]]:
    """The ``count`` largest cumulative entries of ``python -X importtime`` for one API import."""
    err = subprocess.run([sys.executable, "-X", "importtime", "-c", ARMS["api"]], env=env, check=True,
                         capture_output=True, text=True).stderr
    rows = []
    for line in err.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, self_us, cumulative_us, name = (part.strip() for part in line.replace("import time:", "|").split("|"))
        rows.append({"module": name, "cumulative_ms": round(int(cumulative_us) / 1000, 1),
                     "self_ms": round(int(self_us) / 1000, 1)})
    return sorted(rows, key=lambda row: -row["cumulative_ms"])[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--functions", type=Path, default=ROOT / "functions", help="the tree to import from")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--no-instructions", action="store_true", help="skip the valgrind instruction counts")
    args = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as scratch:
        environments = {kind: _environment(args.functions.resolve(), kind, scratch)
                        for kind in ("local", "lambda_tracing_on")}
        results = {kind: _alternated(env, args.rounds) for kind, env in environments.items()}
        if shutil.which("valgrind") and not args.no_instructions:
            for kind, env in environments.items():
                results[kind]["instructions"] = _instructions(env)
        top = _importtime_top(environments["local"])
    result = {
        "what": "fresh-interpreter import of the handlers vs `import boto3, pydantic`, alternated; ratio = median "
                "over rounds of handler / floor",
        "goal": "api_ratio <= 1.5 (issue 15, item 6)",
        "rounds": args.rounds,
        "functions": str(args.functions),
        **results,
        "importtime_top10_api_local": top,
        "load_average_1_5_15": {"before": [round(v, 2) for v in load_before],
                                "after": [round(v, 2) for v in os.getloadavg()]},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
    }
    print(json.dumps({k: result[k] for k in ("local", "lambda_tracing_on")}, indent=2))
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(result, indent=2) + "\n")
        print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
