"""localcloud.http_api.LocalHttpApi: requests -> payload-2.0 events -> HTTP responses, without sockets."""

from __future__ import annotations

import base64
import io
import json
import re
from typing import Any

import pytest

from localcloud import http_api
from localcloud.http_api import MAX_BODY_BYTES, LocalHttpApi, Route
from localcloud.runtime import InvocationResult
from localcloud.template import LocalStack

FUNCTION = "modelforge-local-ApiFunction"


class FakeServer:
    """Stands in for ThreadingHTTPServer so that constructing LocalHttpApi binds no socket."""

    def __init__(self, address: tuple[str, int], handler: Any) -> None:
        self.server_address = address
        self.RequestHandlerClass = handler
        self.daemon_threads = False

    def serve_forever(self) -> None:
        raise AssertionError("these tests never serve")

    def shutdown(self) -> None:
        return

    def server_close(self) -> None:
        return


class FakeInvoke:
    def __init__(self, result: Any = None, *, payload: bytes | None = None, error: str | None = None) -> None:
        body = (
            payload
            if payload is not None
            else json.dumps(result if result is not None else {"statusCode": 200, "body": "{}"}).encode()
        )
        self.result = InvocationResult(body, error)
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, function_name: str, payload: bytes) -> InvocationResult:
        self.calls.append((function_name, json.loads(payload)))
        return self.result

    @property
    def event(self) -> dict[str, Any]:
        ((_, event),) = self.calls
        return event


@pytest.fixture(autouse=True)
def no_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_api, "ThreadingHTTPServer", FakeServer)


@pytest.fixture
def routes(local_stack: LocalStack) -> list[Route]:
    spec = local_stack.functions["ApiFunction"]
    return [Route(method, path, spec.name) for method, path in spec.http_routes]


def front(routes: list[Route], invoke: FakeInvoke) -> LocalHttpApi:
    return LocalHttpApi(routes, invoke, "127.0.0.1", 0, "123456789012")


def test_the_routes_come_from_the_template(routes: list[Route]) -> None:
    assert {(r.method, r.path) for r in routes} >= {
        ("POST", "/train"),
        ("GET", "/status/{process_id}"),
        ("GET", "/jobs"),
        ("GET", "/machines"),
        ("GET", "/health"),
    }
    assert {r.function_name for r in routes} == {FUNCTION}


def test_a_post_becomes_a_payload_2_event(routes: list[Route]) -> None:
    invoke = FakeInvoke()
    body = json.dumps({"indicator": "status", "machine_name": "MOTOBOMBA-007"}).encode()

    status, _, _ = front(routes, invoke).handle(
        "POST",
        "/train",
        {"Content-Type": "application/json", "Host": "localhost:3000", "User-Agent": "pytest"},
        body,
        "10.0.0.7",
    )

    assert status == 200
    ((function_name, event),) = invoke.calls
    assert function_name == FUNCTION
    assert event["version"] == "2.0"
    assert event["routeKey"] == "POST /train"
    assert event["rawPath"] == "/train"
    assert event["rawQueryString"] == ""
    assert event["headers"] == {
        "content-type": "application/json",
        "host": "localhost:3000",
        "user-agent": "pytest",
    }
    assert event["body"] == body.decode()
    assert event["isBase64Encoded"] is False
    assert "pathParameters" not in event
    assert "queryStringParameters" not in event
    context = event["requestContext"]
    assert context["http"] == {
        "method": "POST",
        "path": "/train",
        "protocol": "HTTP/1.1",
        "sourceIp": "10.0.0.7",
        "userAgent": "pytest",
    }
    assert context["routeKey"] == "POST /train"
    assert context["accountId"] == "123456789012"
    assert context["requestId"]


def test_path_and_query_parameters(routes: list[Route]) -> None:
    invoke = FakeInvoke()
    process_id = "3f2b8c1e-9a4d-4e6f-8b7a-1c2d3e4f5a6b"

    front(routes, invoke).handle("GET", f"/status/{process_id}?verbose=1&tag=a&tag=b&empty=", {}, b"", "::1")

    event = invoke.event
    assert event["routeKey"] == "GET /status/{process_id}"
    assert event["rawPath"] == f"/status/{process_id}"
    assert event["pathParameters"] == {"process_id": process_id}
    assert event["rawQueryString"] == "verbose=1&tag=a&tag=b&empty="
    assert event["queryStringParameters"] == {"verbose": "1", "tag": "a,b", "empty": ""}
    assert "body" not in event


def test_headers_are_lower_cased_and_repeated_ones_joined(routes: list[Route]) -> None:
    invoke = FakeInvoke()

    front(routes, invoke).handle(
        "GET", "/health", {"X-Trace": "one", "x-trace": "two", "ACCEPT": "*/*"}, b"", "127.0.0.1"
    )

    assert invoke.event["headers"] == {"x-trace": "one,two", "accept": "*/*"}


def test_cookies_are_listed(routes: list[Route]) -> None:
    invoke = FakeInvoke()

    front(routes, invoke).handle("GET", "/health", {"Cookie": "a=1; b=2"}, b"", "127.0.0.1")

    assert invoke.event["cookies"] == ["a=1", "b=2"]


def test_a_body_that_is_not_utf8_is_base64_encoded(routes: list[Route]) -> None:
    invoke = FakeInvoke()
    body = b"\xff\xfe\x00binary"

    front(routes, invoke).handle(
        "POST", "/train", {"Content-Type": "application/octet-stream"}, body, "127.0.0.1"
    )

    assert invoke.event["isBase64Encoded"] is True
    assert base64.b64decode(invoke.event["body"]) == body


@pytest.mark.parametrize(
    ("method", "target"),
    [
        ("GET", "/nope"),
        ("GET", "/train"),  # a known path with another method
        ("DELETE", "/jobs"),
        ("GET", "/status/a/b"),  # a path parameter never spans a slash
        ("GET", "/status/"),
        ("GET", "/health/"),
    ],
)
def test_an_unknown_route_is_api_gateways_404(routes: list[Route], method: str, target: str) -> None:
    invoke = FakeInvoke()

    status, headers, body = front(routes, invoke).handle(method, target, {}, b"", "127.0.0.1")

    assert status == 404
    assert json.loads(body) == {"message": "Not Found"}
    assert headers["Content-Type"] == "application/json"
    assert invoke.calls == []


def test_a_body_over_the_limit_is_413(routes: list[Route]) -> None:
    # The request handler reads no more than MAX_BODY_BYTES and passes None for a larger body.
    invoke = FakeInvoke()

    status, _, body = front(routes, invoke).handle(
        "POST", "/train", {"Content-Length": str(MAX_BODY_BYTES + 1)}, None, "127.0.0.1"
    )

    assert status == 413
    assert json.loads(body) == {"message": "Request Entity Too Large"}
    assert invoke.calls == []
    assert MAX_BODY_BYTES == 10 * 1024 * 1024  # API Gateway's payload limit


def test_a_function_error_is_a_500(routes: list[Route]) -> None:
    invoke = FakeInvoke(
        {"errorType": "Runtime.ExitError", "errorMessage": "exit status 1"}, error="Unhandled"
    )

    status, _, body = front(routes, invoke).handle("GET", "/health", {}, b"", "127.0.0.1")

    assert status == 500
    assert json.loads(body) == {"message": "Internal Server Error"}
    assert b"ExitError" not in body


def test_a_full_response_is_translated(routes: list[Route]) -> None:
    invoke = FakeInvoke(
        {
            "statusCode": 422,
            "headers": {"Content-Type": "application/json", "X-Request": "7"},
            "multiValueHeaders": {"Vary": ["Accept", "Origin"]},
            "body": '{"detail": []}',
            "isBase64Encoded": False,
            "cookies": [],
        }
    )

    status, headers, body = front(routes, invoke).handle("POST", "/train", {}, b"{}", "127.0.0.1")

    assert status == 422
    assert headers == {"Content-Type": "application/json", "X-Request": "7", "Vary": "Accept,Origin"}
    assert body == b'{"detail": []}'


def test_a_base64_response_body_is_decoded(routes: list[Route]) -> None:
    raw = b"\x89PNG\r\n\x1a\n\x00\xff"
    invoke = FakeInvoke(
        {
            "statusCode": 200,
            "headers": {"Content-Type": "image/png", "Content-Length": "3"},
            "body": base64.b64encode(raw).decode(),
            "isBase64Encoded": True,
        }
    )

    status, headers, body = front(routes, invoke).handle("GET", "/health", {}, b"", "127.0.0.1")

    assert (status, body) == (200, raw)
    assert headers == {"Content-Type": "image/png"}  # the server sets the real length itself


def test_set_cookies_become_a_header(routes: list[Route]) -> None:
    invoke = FakeInvoke({"statusCode": 204, "cookies": ["session=abc"]})

    status, headers, body = front(routes, invoke).handle("GET", "/health", {}, b"", "127.0.0.1")

    assert (status, body) == (204, b"")
    assert headers["Set-Cookie"] == "session=abc"


@pytest.mark.parametrize("result", [{"status": "ok"}, ["a", 1], "plain"])
def test_a_result_without_status_code_is_a_200_json_body(routes: list[Route], result: Any) -> None:
    status, headers, body = front(routes, FakeInvoke(result)).handle("GET", "/health", {}, b"", "127.0.0.1")

    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == result


def test_route_matching() -> None:
    route = Route("GET", "/models/{model_name}/versions/{version}", "fn")

    assert route.match("GET", "/models/PUMP-1%23status/versions/v.2") == {
        "model_name": "PUMP-1%23status",
        "version": "v.2",
    }
    assert route.match("POST", "/models/a/versions/b") is None
    assert route.match("GET", "/models/a/versions/b/c") is None
    assert route.match("GET", "/models/a/versionsXb") is None
    assert Route("GET", "/openapi.json", "fn").match("GET", "/openapiXjson") is None  # '.' is literal


# ---------------------------------------------------------------- the request handler, in-memory connection


class FakeConnection:
    """What BaseHTTPRequestHandler needs of a socket: the request bytes in, the response bytes out."""

    def __init__(self, incoming: bytes) -> None:
        self.incoming = io.BytesIO(incoming)
        self.sent = bytearray()

    def makefile(self, mode: str, *args: Any) -> io.BytesIO:
        assert "r" in mode
        return self.incoming

    def sendall(self, data: bytes) -> None:
        self.sent += data


def serve(api: LocalHttpApi, incoming: bytes) -> tuple[list[int], bytes]:
    """Runs the request handler over one connection: the status of every response, and all it sent."""
    connection = FakeConnection(incoming)
    api.server.RequestHandlerClass(connection, ("127.0.0.1", 50000), api.server)
    sent = bytes(connection.sent)
    return [int(status) for status in re.findall(rb"HTTP/1\.[01] (\d{3}) ", sent)], sent


def request(method: str, path: str, body: bytes = b"", *, close: bool = False) -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {len(body)}\r\n"
    return (head + ("Connection: close\r\n" if close else "") + "\r\n").encode() + body


def test_the_request_handler_serves_keep_alive_requests(routes: list[Route]) -> None:
    api = front(routes, FakeInvoke({"statusCode": 200, "body": "{}"}))

    statuses, _ = serve(api, request("POST", "/train", b"{}") + request("GET", "/health", close=True))

    assert statuses == [200, 200]


def test_a_request_after_a_too_large_body_is_still_served(routes: list[Route]) -> None:
    api = front(routes, FakeInvoke({"statusCode": 200, "body": "{}"}))
    too_large = b"a" * (MAX_BODY_BYTES + 1)

    statuses, sent = serve(api, request("POST", "/train", too_large) + request("GET", "/health", close=True))

    # Either the body is skipped and the next request served, or the 413 says the connection closes.
    assert statuses == [413, 200] or (statuses == [413] and b"Connection: close" in sent)


# ---------------------------------------------------------------- the payload limit on POST /predict (issue 16)


@pytest.fixture
def predict_front(local_stack: LocalStack) -> tuple[LocalHttpApi, FakeInvoke]:
    spec = local_stack.functions["PredictFunction"]
    invoke = FakeInvoke({"statusCode": 200, "body": "{}"})
    return front([Route(m, p, spec.name) for m, p in spec.http_routes], invoke), invoke


def chunked(path: str, body: bytes, chunk: int = 1024 * 1024) -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    parts = [f"{len(body[i:i + chunk]):x}\r\n".encode() + body[i:i + chunk] + b"\r\n"
             for i in range(0, len(body), chunk)]
    return head.encode() + b"".join(parts) + b"0\r\n\r\n"


def test_a_predict_body_over_the_limit_is_413_and_never_reaches_the_function(
    predict_front: tuple[LocalHttpApi, FakeInvoke]
) -> None:
    api, invoke = predict_front
    too_large = b'{"records": [' + b" " * MAX_BODY_BYTES + b"]}"

    statuses, sent = serve(api, request("POST", "/predict", too_large, close=True))

    assert statuses == [413]
    assert sent.endswith(b'{"message": "Request Entity Too Large"}')
    assert invoke.calls == []


def test_a_chunked_body_over_the_limit_is_413_too(predict_front: tuple[LocalHttpApi, FakeInvoke]) -> None:
    api, invoke = predict_front

    statuses, _ = serve(api, chunked("/predict", b" " * (MAX_BODY_BYTES + 1)))

    assert statuses == [413]
    assert invoke.calls == []


def test_a_chunked_body_within_the_limit_reaches_the_function(
    predict_front: tuple[LocalHttpApi, FakeInvoke]
) -> None:
    api, invoke = predict_front
    body = json.dumps({"machine_name": "M-1", "indicator": "status", "records": [{"Eng_RPM": 1.0}] * 3}).encode()

    statuses, _ = serve(api, chunked("/predict", body, chunk=7))

    assert statuses == [200]
    assert invoke.event["body"] == body.decode()
