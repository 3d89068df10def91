"""Dispatches Lambda invocations to the project's handlers, in worker processes that behave like Lambda
execution environments: warm between invocations, one invocation at a time, a memory limit and a timeout
from template.yaml, and crashes reported with Lambda's error types (Runtime.ExitError,
Runtime.OutOfMemory, Sandbox.Timedout) so the state machine's Retry/Catch see what they would on AWS.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

from localcloud.template import FunctionSpec

MEMORY_POLL_SECONDS = 0.05
# How long a cold worker may take to import its handler: generous, since on a busy machine importing the
# training stack (pandas, XGBoost) takes many seconds; the function's own timeout starts after it.
INIT_TIMEOUT_SECONDS = 300.0


@dataclass
class InvocationResult:
    payload: bytes
    function_error: str | None = None  # "Unhandled" when the payload is an error object, as Lambda says


@dataclass(eq=False)  # identity, so workers can be kept in a set
class _Worker:
    process: subprocess.Popen[str]
    spec: FunctionSpec
    log_thread: threading.Thread
    invocations: int = 0
    ready: bool = False  # the worker has imported its handler (its first protocol line)


@dataclass
class FunctionPool:
    spec: FunctionSpec
    max_concurrency: int
    idle: list[_Worker] = field(default_factory=list)
    running: set[_Worker] = field(default_factory=set)
    busy: int = 0
    condition: threading.Condition = field(default_factory=threading.Condition)


class LocalLambdaRuntime:
    def __init__(
        self,
        functions: dict[str, FunctionSpec],
        base_environment: dict[str, str],
        log_dir: Path,
        *,
        max_concurrency: int = 8,
        echo_logs: bool = False,
    ) -> None:
        self._pools = {spec.name: FunctionPool(spec, max_concurrency) for spec in functions.values()}
        self._by_logical_id = {spec.logical_id: spec.name for spec in functions.values()}
        self._base_environment = base_environment
        self._log_dir = log_dir
        self._echo_logs = echo_logs
        log_dir.mkdir(parents=True, exist_ok=True)

    def pool(self, name_or_arn: str) -> FunctionPool:
        name = name_or_arn.split(":function:", 1)[-1].split(":", 1)[0]
        name = self._by_logical_id.get(name, name)
        try:
            return self._pools[name]
        except KeyError:
            raise KeyError(f"no local function named {name_or_arn}") from None

    def invoke(self, name_or_arn: str, payload: bytes) -> InvocationResult:
        pool = self.pool(name_or_arn)
        worker = self._acquire(pool)
        with pool.condition:
            pool.running.add(worker)
        healthy = False
        try:
            result, healthy = self._invoke_worker(worker, payload)
            return result
        finally:
            self._release(pool, worker, healthy)

    def set_environment(self, name_or_arn: str, environment: dict[str, str]) -> dict[str, str]:
        """Gives a function new settings mid-run, as a configuration update does on Lambda: its idle workers
        end, and the next invocation starts one with them. Returns the environment it replaced (a test
        changing a setting for one case restores it)."""
        pool = self.pool(name_or_arn)
        with pool.condition:
            previous = pool.spec.environment
            pool.spec = replace(pool.spec, environment=dict(environment))
            for worker in pool.idle:
                _terminate(worker.process)
            pool.idle.clear()
        return previous

    def shutdown(self) -> None:
        """Ends every worker, idle or in the middle of an invocation: none may outlive the local cloud."""
        for pool in self._pools.values():
            with pool.condition:
                for worker in [*pool.idle, *pool.running]:
                    _terminate(worker.process)
                pool.idle.clear()

    # ------------------------------------------------------------ workers

    def _acquire(self, pool: FunctionPool) -> _Worker:
        with pool.condition:
            while not pool.idle and pool.busy >= pool.max_concurrency:
                pool.condition.wait()
            pool.busy += 1
            if pool.idle:
                return pool.idle.pop()
        try:
            return self._start_worker(pool.spec)
        except BaseException:
            with pool.condition:
                pool.busy -= 1
                pool.condition.notify()
            raise

    def _release(self, pool: FunctionPool, worker: _Worker, healthy: bool) -> None:
        with pool.condition:
            pool.running.discard(worker)
            pool.busy -= 1
            if healthy and worker.process.poll() is None and worker.spec is pool.spec:  # not set_environment's
                pool.idle.append(worker)
            else:
                _terminate(worker.process)
            pool.condition.notify()

    def _start_worker(self, spec: FunctionSpec) -> _Worker:
        environment = {
            **self._base_environment,
            **spec.environment,
            "_HANDLER": spec.handler,
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "LOCAL_FUNCTION_ARN": spec.arn,
            "PYTHONUNBUFFERED": "1",
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "localcloud.worker"],
            env=environment,
            text=True,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=1,
        )
        assert process.stderr is not None
        log_thread = threading.Thread(target=self._pump_log, args=(spec, process.stderr), daemon=True)
        log_thread.start()
        return _Worker(process=process, spec=spec, log_thread=log_thread)

    def _pump_log(self, spec: FunctionSpec, stream: IO[str]) -> None:
        with (self._log_dir / f"{spec.logical_id}.log").open("a") as log:
            for line in stream:
                log.write(line)
                log.flush()
                if self._echo_logs:
                    sys.stderr.write(f"[{spec.logical_id}] {line}")

    def _invoke_worker(self, worker: _Worker, payload: bytes) -> tuple[InvocationResult, bool]:
        spec, process = worker.spec, worker.process
        assert process.stdin is not None and process.stdout is not None
        request_id = str(uuid.uuid4())
        if not worker.ready and not _wait_until_ready(worker):
            return _exit_error(request_id, process), False
        deadline = time.time() + spec.timeout_s
        message = {
            "request_id": request_id,
            "payload": payload.decode() or "{}",
            "deadline_ms": int(deadline * 1000),
        }
        try:
            process.stdin.write(json.dumps(message) + "\n")
            process.stdin.flush()
        except (BrokenPipeError, OSError):
            return _exit_error(request_id, process), False

        selector = selectors.DefaultSelector()
        selector.register(process.stdout, selectors.EVENT_READ)
        limit_bytes = spec.memory_mb * 1024 * 1024
        try:
            while True:
                remaining = deadline - time.time()
                if remaining <= 0:
                    _terminate(process)
                    return _error(
                        "Sandbox.Timedout",
                        f"RequestId: {request_id} Error: Task timed out after {spec.timeout_s:.2f} seconds",
                    ), False
                if selector.select(timeout=min(remaining, MEMORY_POLL_SECONDS)):
                    line = process.stdout.readline()
                    if not line:
                        process.wait(timeout=5)
                        return _exit_error(request_id, process), False
                    reply = json.loads(line)
                    worker.invocations += 1
                    if "error" in reply:
                        healthy = not reply["error"]["errorType"].startswith("Runtime.")
                        return InvocationResult(json.dumps(reply["error"]).encode(), "Unhandled"), healthy
                    return InvocationResult(reply["result"].encode()), True
                if _rss_bytes(process.pid) > limit_bytes:
                    _terminate(process)
                    return _error(
                        "Runtime.OutOfMemory",
                        f"RequestId: {request_id} Error: Runtime exited: "
                        f"memory used exceeded the function's {spec.memory_mb} MB",
                    ), False
        finally:
            selector.close()


def _wait_until_ready(worker: _Worker) -> bool:
    """Reads the cold worker's ready line, so its import time is not taken from the invocation's timeout
    (under load that turned the timeout and out-of-memory tests' invocations into spurious timeouts).
    False when the worker died or never got ready."""
    stdout = worker.process.stdout
    assert stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(stdout, selectors.EVENT_READ)
        if selector.select(timeout=INIT_TIMEOUT_SECONDS):
            line = stdout.readline()
            worker.ready = bool(line) and json.loads(line).get("ready") is True
    if not worker.ready:
        _terminate(worker.process)
    return worker.ready


def _error(error_type: str, message: str) -> InvocationResult:
    body = {"errorType": error_type, "errorMessage": message, "stackTrace": []}
    return InvocationResult(json.dumps(body).encode(), "Unhandled")


def _exit_error(request_id: str, process: subprocess.Popen[str]) -> InvocationResult:
    code = process.poll()
    if code == 137:
        return _error("Runtime.OutOfMemory", f"RequestId: {request_id} Error: Runtime exited: out of memory")
    detail = f"signal: {-code}" if code is not None and code < 0 else f"exit status {code}"
    return _error("Runtime.ExitError", f"RequestId: {request_id} Error: Runtime exited with error: {detail}")


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, IndexError, ValueError):
        return 0


def _terminate(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)
