"""localcloud.runtime.LocalLambdaRuntime: handlers in worker processes that behave like Lambda."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from localcloud.runtime import InvocationResult, LocalLambdaRuntime
from localcloud.template import REPO_ROOT, FunctionSpec

HANDLERS = "tests.unit.fixtures_handlers"


def spec(
    logical_id: str,
    handler: str,
    *,
    memory_mb: int = 512,
    timeout_s: int = 30,
    environment: dict[str, str] | None = None,
) -> FunctionSpec:
    name = f"test-{logical_id}"
    return FunctionSpec(
        logical_id=logical_id,
        name=name,
        arn=f"arn:aws:lambda:us-east-1:123456789012:function:{name}",
        handler=f"{HANDLERS}.{handler}",
        package_type="Zip",
        memory_mb=memory_mb,
        timeout_s=timeout_s,
        environment=environment or {},
    )


FUNCTIONS = {
    "Echo": spec("Echo", "echo", environment={"FROM_TEMPLATE": "template-value"}),
    "Fail": spec("Fail", "raise_value_error"),
    "Exit": spec("Exit", "exit_hard"),
    "Sleep": spec("Sleep", "sleep", timeout_s=1),
    "Hog": spec("Hog", "allocate", memory_mb=256),
    "Meet": spec("Meet", "rendezvous"),
    "Missing": spec("Missing", "no_such_handler"),
}


@pytest.fixture
def make_runtime(tmp_path: Path) -> Iterator[Callable[..., LocalLambdaRuntime]]:
    runtimes: list[LocalLambdaRuntime] = []

    def make(max_concurrency: int = 4) -> LocalLambdaRuntime:
        # The worker imports this package from the repository root, wherever pytest was started.
        base = {
            "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(
                os.pathsep
            ),
            "PATH": os.environ.get("PATH", ""),
            "FROM_BASE": "base-value",
            "LANG": "C.UTF-8",
        }
        runtime = LocalLambdaRuntime(
            FUNCTIONS, base, tmp_path / f"logs-{len(runtimes)}", max_concurrency=max_concurrency
        )
        runtimes.append(runtime)
        return runtime

    yield make
    for runtime in runtimes:
        runtime.shutdown()


@pytest.fixture
def runtime(make_runtime: Callable[..., LocalLambdaRuntime]) -> LocalLambdaRuntime:
    return make_runtime()


def invoke(runtime: LocalLambdaRuntime, function: str, payload: Any = None) -> tuple[Any, str | None]:
    result = runtime.invoke(function, json.dumps(payload if payload is not None else {}).encode())
    assert isinstance(result, InvocationResult)
    return json.loads(result.payload), result.function_error


def alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists() if sys.platform.startswith("linux") else _signal_zero(pid)


def _signal_zero(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_echo_returns_the_payload(runtime: LocalLambdaRuntime) -> None:
    body, error = invoke(runtime, "test-Echo", {"machine": "MOTOBOMBA-007", "n": 3})

    assert error is None
    assert body["event"] == {"machine": "MOTOBOMBA-007", "n": 3}
    assert body["function_name"] == "test-Echo"
    assert body["memory_limit_in_mb"] == 512


def test_functions_are_found_by_name_arn_or_logical_id(runtime: LocalLambdaRuntime) -> None:
    for reference in ("test-Echo", FUNCTIONS["Echo"].arn, FUNCTIONS["Echo"].arn + ":$LATEST", "Echo"):
        body, error = invoke(runtime, reference, {"ref": reference})
        assert error is None and body["event"] == {"ref": reference}
    with pytest.raises(KeyError):
        runtime.invoke("test-Nope", b"{}")


def test_an_empty_payload_is_an_empty_event(runtime: LocalLambdaRuntime) -> None:
    result = runtime.invoke("test-Echo", b"")

    assert result.function_error is None
    assert json.loads(result.payload)["event"] == {}


def test_the_worker_sees_the_function_environment(runtime: LocalLambdaRuntime) -> None:
    names = ["FROM_TEMPLATE", "FROM_BASE", "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"]

    body, _ = invoke(runtime, "test-Echo", {"env": names})

    assert body["env"] == {
        "FROM_TEMPLATE": "template-value",
        "FROM_BASE": "base-value",
        "AWS_LAMBDA_FUNCTION_NAME": "test-Echo",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
    }


def test_each_invocation_has_its_own_request_id(runtime: LocalLambdaRuntime) -> None:
    first, _ = invoke(runtime, "test-Echo")
    second, _ = invoke(runtime, "test-Echo")

    assert first["request_id"] != second["request_id"]


def test_a_warm_worker_is_reused(runtime: LocalLambdaRuntime) -> None:
    first, _ = invoke(runtime, "test-Echo")
    second, _ = invoke(runtime, "test-Echo")

    assert first["pid"] == second["pid"]
    assert first["pid"] != os.getpid()


def test_new_settings_reach_the_next_invocation_in_a_new_worker(runtime: LocalLambdaRuntime) -> None:
    first, _ = invoke(runtime, "test-Echo", {"env": ["FROM_TEMPLATE"]})
    previous = runtime.set_environment("Echo", {"FROM_TEMPLATE": "changed"})
    second, _ = invoke(runtime, "test-Echo", {"env": ["FROM_TEMPLATE"]})
    runtime.set_environment("Echo", previous)
    third, _ = invoke(runtime, "test-Echo", {"env": ["FROM_TEMPLATE"]})

    assert previous == {"FROM_TEMPLATE": "template-value"}
    assert [b["env"]["FROM_TEMPLATE"] for b in (first, second, third)] == ["template-value", "changed",
                                                                           "template-value"]
    assert len({first["pid"], second["pid"], third["pid"]}) == 3  # the warm worker had the old settings


def test_handler_prints_go_to_the_function_log(runtime: LocalLambdaRuntime, tmp_path: Path) -> None:
    body, error = invoke(runtime, "test-Echo", {"say": "hello-from-the-handler"})
    assert error is None and body["event"] == {"say": "hello-from-the-handler"}  # the protocol is intact

    log = tmp_path / "logs-0" / "Echo.log"
    deadline = time.monotonic() + 10  # the log is pumped by a thread; wait for it, assert nothing on time
    while time.monotonic() < deadline and "hello-from-the-handler" not in (
        log.read_text() if log.exists() else ""
    ):
        time.sleep(0.02)
    assert "hello-from-the-handler" in log.read_text()


def test_an_exception_is_an_unhandled_function_error(runtime: LocalLambdaRuntime) -> None:
    body, error = invoke(runtime, "test-Fail")

    assert error == "Unhandled"
    assert body["errorType"] == "ValueError"
    assert body["errorMessage"].startswith("the handler rejected its input")
    assert any("raise_value_error" in line for line in body["stackTrace"])


def test_a_worker_that_raised_stays_warm(runtime: LocalLambdaRuntime) -> None:
    first, _ = invoke(runtime, "test-Fail")
    second, error = invoke(runtime, "test-Fail")

    assert error == "Unhandled"
    assert first["errorMessage"] == second["errorMessage"]  # it names the worker's pid
    assert f"(pid {os.getpid()})" not in first["errorMessage"]


def test_a_handler_that_cannot_be_imported_is_an_import_error(runtime: LocalLambdaRuntime) -> None:
    body, error = invoke(runtime, "test-Missing")

    assert error == "Unhandled"
    assert body["errorType"] == "Runtime.ImportModuleError"
    assert HANDLERS in body["errorMessage"]


def test_exiting_is_an_exit_error_and_the_next_call_gets_a_new_worker(runtime: LocalLambdaRuntime) -> None:
    body, error = invoke(runtime, "test-Exit")

    assert error == "Unhandled"
    assert body["errorType"] == "Runtime.ExitError"
    assert "exit status 3" in body["errorMessage"]
    assert runtime.pool("test-Exit").idle == []

    again, error_again = invoke(runtime, "test-Exit")
    assert (again["errorType"], error_again) == ("Runtime.ExitError", "Unhandled")


def test_a_timeout_kills_the_worker_and_the_next_call_works(runtime: LocalLambdaRuntime) -> None:
    before, error = invoke(runtime, "test-Sleep", {"seconds": 0})
    assert error is None

    body, error = invoke(runtime, "test-Sleep", {"seconds": 60})

    assert error == "Unhandled"
    assert body["errorType"] == "Sandbox.Timedout"
    assert "1.00 seconds" in body["errorMessage"]
    assert not alive(before["pid"])

    after, error = invoke(runtime, "test-Sleep", {"seconds": 0})
    assert error is None
    assert after["pid"] != before["pid"]


def test_exceeding_the_memory_size_is_out_of_memory(runtime: LocalLambdaRuntime) -> None:
    body, error = invoke(runtime, "test-Hog")

    assert error == "Unhandled"
    assert body["errorType"] == "Runtime.OutOfMemory"
    assert "256 MB" in body["errorMessage"]
    assert runtime.pool("test-Hog").idle == []
    # Another function is unaffected.
    assert invoke(runtime, "test-Echo")[1] is None


def test_invocations_up_to_max_concurrency_run_in_parallel(
    make_runtime: Callable[..., LocalLambdaRuntime], tmp_path: Path
) -> None:
    runtime = make_runtime(max_concurrency=3)
    meeting = tmp_path / "meeting"
    meeting.mkdir()
    event = {"dir": str(meeting), "expected": 3, "wait_s": 20}

    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda _: invoke(runtime, "test-Meet", event), range(3)))

    # Each invocation saw all three present at once, which serial execution could never show.
    assert [error for _, error in results] == [None, None, None]
    assert [body["seen"] for body, _ in results] == [3, 3, 3]
    assert len({body["pid"] for body, _ in results}) == 3


def test_invocations_beyond_max_concurrency_wait_for_a_worker(
    make_runtime: Callable[..., LocalLambdaRuntime], tmp_path: Path
) -> None:
    runtime = make_runtime(max_concurrency=2)
    meeting = tmp_path / "meeting"
    meeting.mkdir()
    # Each invocation waits a little for a third one to join; with two workers one never can.
    event = {"dir": str(meeting), "expected": 3, "wait_s": 0.3, "leave": True}

    with ThreadPoolExecutor(max_workers=5) as pool:
        results = list(pool.map(lambda _: invoke(runtime, "test-Meet", event), range(5)))

    assert [error for _, error in results] == [None] * 5
    assert max(body["seen"] for body, _ in results) <= 2
    assert len({body["pid"] for body, _ in results}) <= 2


def test_shutdown_stops_the_idle_workers(runtime: LocalLambdaRuntime) -> None:
    body, _ = invoke(runtime, "test-Echo")
    assert alive(body["pid"])

    runtime.shutdown()

    assert not alive(body["pid"])


def test_shutdown_stops_busy_workers_too(runtime: LocalLambdaRuntime, tmp_path: Path) -> None:
    meeting = tmp_path / "busy"
    meeting.mkdir()
    event = {"dir": str(meeting), "expected": 99, "wait_s": 25}  # stays busy until killed
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(invoke, runtime, "test-Meet", event)
        deadline = time.monotonic() + 10
        while not any(meeting.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.02)
        (marker,) = meeting.iterdir()
        pid = int(marker.name.split("-", 1)[0])
        try:
            runtime.shutdown()
            stopped = not alive(pid)
        finally:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)  # the worker this test started; never leave it behind
            pending.result(timeout=30)

    assert stopped
