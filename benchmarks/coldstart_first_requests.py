"""A cold start past the import: the API handler imported, then its first two requests (the canonical GET /jobs
and POST /train events) resolved with stand-in services that answer 404 at their first call, so that each
request runs its route's validation (built on a route's first call) and use case up to its first AWS call.
This is the work a cold start moves from import to the first request, if any; run it under valgrind:

    PYTHONHASHSEED=0 PYTHONPATH=functions:. valgrind --tool=cachegrind --cache-sim=no \\
        --cachegrind-out-file=/dev/null python -m benchmarks.coldstart_first_requests

and compare with the same command on another tree (docs/benchmarks.md has the figures).
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from modelforge.domain.compute import ComputeConfig
from modelforge.errors import JobNotFoundError
from modelforge.handlers import api
from modelforge.handlers.http_errors import resolve_json

EVENTS = Path(__file__).resolve().parent.parent / "tests" / "events"


class _NotFound:
    def __getattr__(self, method: str) -> Any:
        def call(*_: Any, **__: Any) -> Any:
            raise JobNotFoundError(method)
        return call


def main() -> None:
    stores = {name: _NotFound() for name in ("jobs", "registry", "artifacts", "catalog", "executions", "triggers",
                                             "retrain_executions")}
    services = SimpleNamespace(**stores, submit_once=None, history=None,
                               settings=SimpleNamespace(max_jobs_in_flight=None, compute_config=ComputeConfig))
    context = SimpleNamespace(function_name="bench", memory_limit_in_mb=128, aws_request_id="bench",
                              invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:bench")
    for name in ("get_jobs", "post_train"):
        api.app.append_context(services=services)
        answer = resolve_json(api.app, json.loads((EVENTS / f"{name}.json").read_text()), context)
        assert answer["statusCode"] == 404, answer  # validated, then the first store call


if __name__ == "__main__":
    main()
