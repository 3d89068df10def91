"""One Lambda "execution environment": a process that imports one handler and serves invocations one at a time.

Started by ``localcloud.runtime`` with the function's environment from template.yaml. The protocol runs over
a private copy of the original stdout (one JSON line per message); the handler's own stdout (Powertools logs)
is redirected to stderr, which the runtime collects as the function's log.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
from typing import Any


class LocalLambdaContext:
    """The attributes of a Lambda context object that handlers and Powertools read."""

    def __init__(
        self, function_name: str, memory_mb: int, arn: str, request_id: str, deadline_ms: int
    ) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = arn
        self.memory_limit_in_mb = memory_mb
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = f"local/{os.getpid()}"
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


def _error(error_type: str, message: str, trace: list[str] | None = None) -> dict[str, Any]:
    return {"errorType": error_type, "errorMessage": message, "stackTrace": trace or []}


def main() -> None:
    handler_path = os.environ["_HANDLER"]
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # handler prints go to the function's log

    module_name, function_name = handler_path.rsplit(".", 1)
    try:
        handler = getattr(importlib.import_module(module_name), function_name)
        init_error = None
    except Exception as error:  # reported on every invocation, as Lambda reports Runtime.ImportModuleError
        handler, init_error = (
            None,
            _error(
                "Runtime.ImportModuleError",
                f"Unable to import module '{module_name}': {error}",
                traceback.format_exc().splitlines(),
            ),
        )

    # Imported (or failed to): the runtime starts an invocation's timeout clock only now, as Lambda's init
    # phase does not count against the function's timeout.
    protocol.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        request = json.loads(line)
        context = LocalLambdaContext(
            os.environ["AWS_LAMBDA_FUNCTION_NAME"],
            int(os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"]),
            os.environ["LOCAL_FUNCTION_ARN"],
            request["request_id"],
            request["deadline_ms"],
        )
        if init_error is not None:
            reply: dict[str, Any] = {"error": init_error}
        else:
            try:
                result = handler(json.loads(request["payload"]), context)
                reply = {"result": json.dumps(result, default=str)}
            except MemoryError:
                protocol.write(
                    json.dumps({"error": _error("Runtime.OutOfMemory", "Runtime exited: out of memory")})
                    + "\n"
                )
                os._exit(137)  # a Lambda environment that ran out of memory is not reused
            except Exception as error:
                reply = {
                    "error": _error(type(error).__name__, str(error), traceback.format_exception(error)[-20:])
                }
        protocol.write(json.dumps(reply) + "\n")
        sys.stderr.flush()


if __name__ == "__main__":
    main()
