"""``make run``: the whole stack on this machine. Ports and sizes come from flags or environment variables:
MODELFORGE_HOST, MODELFORGE_AWS_PORT (default 5000), MODELFORGE_API_PORT (default 3000),
MODELFORGE_DEMO_MACHINES (10), MODELFORGE_DEMO_DAYS (60), MODELFORGE_RUN_SCHEDULES (off).
--function-env FUNCTION:NAME=VALUE (repeatable) sets a function's environment variable over the template's.

Against a running local cloud (its API at --api-url, default http://$MODELFORGE_HOST:$MODELFORGE_API_PORT):
  modelforge-local wait-ready [--timeout S]     wait until GET /health says ok (503 "starting" until then)
  modelforge-local schedules                   the template's schedules
  modelforge-local fire-schedule NAME          fire one now (NAME: e.g. RetrainSchedule)
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from localcloud.cloud import DEFAULT_API_PORT, DEFAULT_AWS_PORT, DEFAULT_HOST, LocalCloud


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def _parser() -> argparse.ArgumentParser:
    env = os.environ.get
    parser = argparse.ArgumentParser(prog="modelforge-local", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default=env("MODELFORGE_HOST", DEFAULT_HOST))
    parser.add_argument("--aws-port", type=int, default=int(env("MODELFORGE_AWS_PORT", DEFAULT_AWS_PORT)))
    parser.add_argument("--api-port", type=int, default=int(env("MODELFORGE_API_PORT", DEFAULT_API_PORT)))
    parser.add_argument(
        "--machines",
        type=int,
        default=int(env("MODELFORGE_DEMO_MACHINES", "10")),
        help="demo machines to load (0: none)",
    )
    parser.add_argument(
        "--days",
        type=float,
        default=float(env("MODELFORGE_DEMO_DAYS", "60")),
        help="days of minute-level demo telemetry per machine",
    )
    parser.add_argument("--state-dir", type=Path, default=Path(env("MODELFORGE_STATE_DIR", ".localcloud")))
    parser.add_argument("--verbose", action="store_true", help="echo the functions' logs here")
    parser.add_argument(
        "--run-schedules",
        action="store_true",
        default=_flag(env("MODELFORGE_RUN_SCHEDULES")),
        help="also fire the template's rate(...) schedules on their own period (default: only by hand, "
        "with fire-schedule)",
    )
    parser.add_argument(
        "--function-env",
        action="append",
        default=[],
        type=_function_env,
        metavar="FUNCTION:NAME=VALUE",
        help="set an environment variable of one function over the template's (repeatable), e.g. "
        "TrainingFunction:SEARCH_BUDGET=1 for a cheaper search where a script does not need the default one",
    )
    return parser


def _function_env(value: str) -> tuple[str, str, str]:
    function, _, assignment = value.partition(":")
    name, equals, setting = assignment.partition("=")
    if not function or not name or not equals:
        raise argparse.ArgumentTypeError(f"{value!r} is not FUNCTION:NAME=VALUE")
    return function, name, setting


def _environment_overrides(assignments: list[tuple[str, str, str]]) -> dict[str, dict[str, str]]:
    overrides: dict[str, dict[str, str]] = {}
    for function, name, value in assignments:
        overrides.setdefault(function, {})[name] = value
    return overrides


def _default_api_url() -> str:
    env = os.environ.get
    return f"http://{env('MODELFORGE_HOST', DEFAULT_HOST)}:{env('MODELFORGE_API_PORT', str(DEFAULT_API_PORT))}"


def _client_parser(command: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"modelforge-local {command}", description=description)
    parser.add_argument("--api-url", default=_default_api_url(),
                        help="the running local cloud's API (default: %(default)s)")
    return parser


def _call(method: str, url: str, timeout: float) -> tuple[int, Any]:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        body = error.read()
        try:
            return int(error.code), json.loads(body or b"null")
        except ValueError:
            return int(error.code), body.decode(errors="replace")


def _schedules(argv: list[str]) -> int:
    args = _client_parser("schedules", "List the template's schedules on a running local cloud.").parse_args(argv)
    try:
        status, body = _call("GET", f"{args.api_url.rstrip('/')}/_local/schedules", timeout=30)
    except OSError as error:
        print(f"no local cloud at {args.api_url}: {error}", file=sys.stderr)
        return 2
    print(json.dumps(body, indent=2))
    return 0 if status == 200 else 1


def _fire_schedule(argv: list[str]) -> int:
    parser = _client_parser(
        "fire-schedule",
        "Fire one of the template's schedules now on a running local cloud: the function gets what "
        "EventBridge would send it. Exit status 0 when it succeeded (or, with --no-wait, was delivered), 1 when "
        "the function failed, 2 when there is no such schedule or no local cloud.")
    parser.add_argument("name", help="the schedule's logical id (RetrainSchedule), its rule's name, or its "
                                     "function's name or logical id")
    parser.add_argument("--no-wait", dest="wait", action="store_false",
                        help="deliver asynchronously, as EventBridge does, and return at once")
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for the function (900)")
    args = parser.parse_args(argv)
    url = (f"{args.api_url.rstrip('/')}/_local/schedules/{urllib.parse.quote(args.name, safe='')}/fire"
           f"?wait={'true' if args.wait else 'false'}")
    try:
        status, body = _call("POST", url, timeout=args.timeout)
    except OSError as error:
        print(f"no local cloud at {args.api_url}: {error}", file=sys.stderr)
        return 2
    print(json.dumps(body, indent=2))
    return {200: 0, 202: 0, 404: 2}.get(status, 1)


def _wait_ready(argv: list[str]) -> int:
    parser = _client_parser(
        "wait-ready",
        "Wait until a local cloud (starting, say, in the background) is ready: the stack created and the demo "
        "data loaded. Exit status 0 when GET /health answers ok, 1 after --timeout seconds.")
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait (300)")
    args = parser.parse_args(argv)
    from localcloud.readiness import wait_ready

    try:
        body = wait_ready(args.api_url, timeout=args.timeout)
    except TimeoutError as error:
        print(error, file=sys.stderr)
        return 1
    print(json.dumps(body))
    return 0


COMMANDS = {"wait-ready": _wait_ready, "schedules": _schedules, "fire-schedule": _fire_schedule}


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else list(argv)
    if arguments and arguments[0] in COMMANDS:
        return COMMANDS[arguments[0]](arguments[1:])
    if arguments and arguments[0] == "run":
        arguments = arguments[1:]
    args = _parser().parse_args(arguments)
    started = time.perf_counter()
    cloud = LocalCloud(
        host=args.host,
        aws_port=args.aws_port,
        api_port=args.api_port,
        state_dir=args.state_dir.resolve(),
        echo_logs=args.verbose,
        run_schedules=args.run_schedules,
        environment_overrides=_environment_overrides(args.function_env),
    )
    cloud.start(ready=False)  # GET /health answers 503 "starting" until the demo data is in place
    try:
        print(
            f"local AWS (moto) on {cloud.aws_endpoint}; stack '{cloud.stack.stack_name}' created from "
            f"template.yaml; {cloud.api_url}/health says \"starting\" until it is ready",
            flush=True,
        )
        if args.machines > 0:
            from localcloud.demo import load_demo_data

            cloud.readiness.starting(f"loading the demo data ({args.machines} machines)")
            summaries = load_demo_data(cloud.stack, machines=args.machines, days=args.days)
            rows = sum(s.rows for s in summaries)
            print(
                f"demo data: {len(summaries)} machines, {rows:,} rows ({summaries[0].first_timestamp:%Y-%m-%d} .. "
                f"{summaries[0].last_timestamp:%Y-%m-%d})",
                flush=True,
            )
    except BaseException:
        cloud.stop()
        raise
    cloud.mark_ready()
    machine = "MOTOBOMBA-001"
    outputs = cloud.outputs
    api_flag = "" if cloud.api_url == _default_api_url() else f" --api-url {cloud.api_url}"
    schedules = "".join(
        f"\n  python -m localcloud fire-schedule {logical_id}{api_flag}   # {spec.expression}"
        f"{'' if args.run_schedules else ', fired only by hand'}"
        for logical_id, spec in cloud.stack.schedules.items())
    print(
        f"""
modelforge is running ({time.perf_counter() - started:.1f} s to start). Function logs: {cloud.state_dir}/logs

  API           {cloud.api_url}    (Swagger UI: {cloud.api_url}/swagger, OpenAPI: {cloud.api_url}/openapi.json)
  AWS endpoint  {cloud.aws_endpoint}  (any AWS CLI/SDK with --endpoint-url and dummy credentials)

Try it:
  curl -s -X POST {cloud.api_url}/train -H 'content-type: application/json' \\
       -d '{{"indicator": "status", "machine_name": "{machine}"}}'
  curl -s {cloud.api_url}/status/<process_id>
  curl -s '{cloud.api_url}/jobs?machine_name={machine}'

  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION={cloud.region}
  aws --endpoint-url {cloud.aws_endpoint} stepfunctions list-executions --state-machine-arn {outputs["StateMachineArn"]}
  aws --endpoint-url {cloud.aws_endpoint} dynamodb scan --table-name {outputs["JobsTableName"]}
{schedules}

Ctrl-C stops it.""",
        flush=True,
    )

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(1):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        cloud.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
