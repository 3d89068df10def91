"""Ready means ready: the local front's GET /health says "starting" (503) until the local cloud is ready, then
answers as the API function does; wait_ready and `python -m localcloud wait-ready` poll it."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from localcloud import __main__ as cli
from localcloud.http_api import LocalHttpApi, Route
from localcloud.readiness import Readiness, wait_ready
from localcloud.runtime import InvocationResult
from localcloud.template import LocalStack

HEALTH = {"statusCode": 200, "headers": {"Content-Type": "application/json"},
          "body": json.dumps({"status": "ok", "version": "test"})}


class FakeInvoke:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, function_name: str, payload: bytes) -> InvocationResult:
        self.calls.append(json.loads(payload)["rawPath"])
        return InvocationResult(json.dumps(HEALTH).encode())


def front(stack: LocalStack, readiness: Readiness | None) -> tuple[LocalHttpApi, FakeInvoke]:
    spec = stack.functions["ApiFunction"]
    invoke = FakeInvoke()
    routes = [Route(method, path, spec.name) for method, path in spec.http_routes]
    return LocalHttpApi(routes, invoke, "127.0.0.1", 0, "123456789012", readiness=readiness), invoke


def test_health_says_starting_until_ready(local_stack: LocalStack) -> None:
    readiness = Readiness(stage="loading the demo data")
    api, invoke = front(local_stack, readiness)

    status, headers, body = api.handle("GET", "/health", {}, b"", "127.0.0.1")

    assert (status, json.loads(body)) == (503, {"status": "starting", "detail": "loading the demo data"})
    assert headers["Retry-After"] == "1" and invoke.calls == []
    # Everything else is served meanwhile, as it is.
    assert api.handle("GET", "/machines", {}, b"", "127.0.0.1")[0] == 200 and invoke.calls == ["/machines"]

    readiness.mark_ready()
    status, _, body = api.handle("GET", "/health", {}, b"", "127.0.0.1")

    assert (status, json.loads(body)["status"]) == (200, "ok")
    assert invoke.calls == ["/machines", "/health"]  # the API function's own answer, as deployed


def test_without_a_readiness_the_front_is_ready_at_once(local_stack: LocalStack) -> None:
    api, invoke = front(local_stack, None)

    assert api.handle("GET", "/health", {}, b"", "127.0.0.1")[0] == 200 and invoke.calls == ["/health"]


@pytest.fixture
def serving(local_stack: LocalStack) -> Iterator[tuple[str, Readiness]]:
    readiness = Readiness()
    api, _ = front(local_stack, readiness)
    api.start()
    try:
        yield f"http://127.0.0.1:{api.port}", readiness
    finally:
        api.stop()


def test_wait_ready_returns_once_the_cloud_is_ready(serving: tuple[str, Readiness]) -> None:
    url, readiness = serving
    timer = threading.Timer(0.6, readiness.mark_ready)
    timer.start()
    try:
        assert wait_ready(url, timeout=10, interval=0.1) == {"status": "ok", "version": "test"}
        assert readiness.ready
    finally:
        timer.cancel()


def test_wait_ready_times_out_with_what_it_last_saw(serving: tuple[str, Readiness]) -> None:
    url, _ = serving

    with pytest.raises(TimeoutError, match="starting"):
        wait_ready(url, timeout=0.5, interval=0.1)


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_wait_ready_keeps_trying_while_nothing_listens() -> None:
    with pytest.raises(TimeoutError, match="not ready"):
        wait_ready(f"http://127.0.0.1:{unused_port()}", timeout=0.5, interval=0.1)


def test_the_wait_ready_command(serving: tuple[str, Readiness], capsys: pytest.CaptureFixture[Any]) -> None:
    url, readiness = serving

    assert cli.main(["wait-ready", "--api-url", url, "--timeout", "0.5"]) == 1
    assert "starting" in capsys.readouterr().err
    readiness.mark_ready()
    assert cli.main(["wait-ready", "--api-url", url, "--timeout", "5"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "ok"
