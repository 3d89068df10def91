"""``make run``: the whole stack on this machine. Ports and sizes come from flags or environment variables:
MODELFORGE_HOST, MODELFORGE_AWS_PORT (default 5000), MODELFORGE_API_PORT (default 3000),
MODELFORGE_DEMO_MACHINES (10), MODELFORGE_DEMO_DAYS (60)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from pathlib import Path

from localcloud.cloud import DEFAULT_API_PORT, DEFAULT_AWS_PORT, DEFAULT_HOST, LocalCloud


def _parser() -> argparse.ArgumentParser:
    env = os.environ.get
    parser = argparse.ArgumentParser(prog="modelforge-local", description=__doc__)
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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    started = time.perf_counter()
    cloud = LocalCloud(
        host=args.host,
        aws_port=args.aws_port,
        api_port=args.api_port,
        state_dir=args.state_dir.resolve(),
        echo_logs=args.verbose,
    )
    cloud.start()
    print(
        f"local AWS (moto) on {cloud.aws_endpoint}; stack '{cloud.stack.stack_name}' created from template.yaml",
        flush=True,
    )
    if args.machines > 0:
        from localcloud.demo import load_demo_data

        summaries = load_demo_data(cloud.stack, machines=args.machines, days=args.days)
        rows = sum(s.rows for s in summaries)
        print(
            f"demo data: {len(summaries)} machines, {rows:,} rows ({summaries[0].first_timestamp:%Y-%m-%d} .. "
            f"{summaries[0].last_timestamp:%Y-%m-%d})",
            flush=True,
        )
    machine = "MOTOBOMBA-001"
    outputs = cloud.outputs
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
