"""The HTTP front of the local cloud: what API Gateway (HTTP API) does in AWS. It matches the routes declared
in template.yaml, turns each request into a payload-2.0 event for the API function, and the function's answer
back into an HTTP response. Unknown routes get API Gateway's own 404.

While the cloud is starting (the stack and its demo data not yet in place), ``GET /health`` answers 503
``{"status": "starting"}`` with Retry-After, instead of the API function's liveness answer: see
localcloud.readiness. Other routes are served meanwhile, as they are.

Paths under ``/_local/`` are the local cloud's own tooling, never a template route (no deployed API has them):
``GET /_local/schedules`` lists the template's schedules, ``POST /_local/schedules/<name>/fire`` fires one
now (``?wait=false``: without waiting for the function)."""

from __future__ import annotations

import base64
import io
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from localcloud.readiness import Readiness
from localcloud.runtime import InvocationResult
from localcloud.schedules import LocalSchedules

logger = logging.getLogger("localcloud.http")

MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
LOCAL_PREFIX = "/_local/"  # the local cloud's own routes; template.yaml declares none there
_FIRE = re.compile(r"^/_local/schedules/(?P<name>[^/]+)/fire$")

Invoke = Callable[[str, bytes], InvocationResult]


class Route:
    def __init__(self, method: str, path: str, function_name: str) -> None:
        self.method = method
        self.path = path
        self.function_name = function_name
        pattern = re.sub(r"\\\{([A-Za-z0-9_]+)\\\}", r"(?P<\1>[^/]+)", re.escape(path))
        self._regex = re.compile(f"^{pattern}$")

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if method != self.method:
            return None
        found = self._regex.match(path)
        return found.groupdict() if found else None


class LocalHttpApi:
    def __init__(self, routes: list[Route], invoke: Invoke, host: str, port: int, account_id: str, *,
                 schedules: LocalSchedules | None = None, readiness: Readiness | None = None) -> None:
        self.routes = routes
        self._invoke = invoke
        self._account_id = account_id
        self._schedules = schedules
        self._readiness = readiness  # None: ready from the start
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _serve(self) -> None:
                request_body = self._read_body()
                status, headers, body = api.handle(
                    self.command, self.path, dict(self.headers.items()), request_body, self.client_address[0]
                )
                if request_body is None:
                    # The oversized body was not read, so this connection cannot carry another request.
                    self.close_connection = True
                    headers = {**headers, "Connection": "close"}
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _read_body(self) -> bytes | None:
                """The body, or None when it is over API Gateway's limit (and left unread): by its
                Content-Length, or, sent chunked, as soon as the chunks pass the limit."""
                if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                    return read_chunked(self.rfile, MAX_BODY_BYTES)
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY_BYTES:
                    return None
                return self.rfile.read(length) if length else b""

            def __getattr__(self, name: str) -> Any:
                # Every method reaches the route table, which answers 404 as API Gateway does (http.server
                # would answer an unknown one with a 501 HTML page).
                if name.startswith("do_"):
                    return self._serve
                raise AttributeError(name)

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def handle(
        self, method: str, raw_target: str, headers: dict[str, str], body: bytes | None, source_ip: str
    ) -> tuple[int, dict[str, str], bytes]:
        if body is None:
            return _json(413, {"message": "Request Entity Too Large"})
        target = urlsplit(raw_target)
        if target.path.startswith(LOCAL_PREFIX):
            return self._local(method, target.path, target.query)
        if method == "GET" and target.path == "/health" and self._readiness and not self._readiness.ready:
            status, headers, answer = _json(503, self._readiness.answer())
            return status, {**headers, "Retry-After": "1"}, answer
        for route in self.routes:
            params = route.match(method, target.path)
            if params is not None:
                break
        else:
            return _json(404, {"message": "Not Found"})
        event = self._event(route, params, method, target.path, target.query, headers, body, source_ip)
        result = self._invoke(route.function_name, json.dumps(event).encode())
        if result.function_error:
            logger.error(
                "%s %s: the function failed: %s", method, target.path, result.payload.decode()[:4000]
            )
            return _json(500, {"message": "Internal Server Error"})
        return _response(json.loads(result.payload))

    def _local(self, method: str, path: str, query: str) -> tuple[int, dict[str, str], bytes]:
        fire = _FIRE.match(path)
        if self._schedules is not None and method == "GET" and path == "/_local/schedules":
            return _json(200, {"schedules": self._schedules.list(), "running": self._schedules.running})
        if self._schedules is not None and method == "POST" and fire:
            wait = dict(parse_qsl(query)).get("wait", "true").lower() not in ("false", "0", "no")
            try:
                firing = self._schedules.fire(unquote(fire.group("name")), wait=wait)
            except KeyError as error:
                return _json(404, {"message": str(error.args[0])})
            summary = firing.summary()
            status = {"accepted": 202, "succeeded": 200}.get(summary["status"], 502)
            return _json(status, summary)
        return _json(404, {"message": "Not Found"})

    def _event(
        self,
        route: Route,
        params: dict[str, str],
        method: str,
        path: str,
        query: str,
        headers: dict[str, str],
        body: bytes,
        source_ip: str,
    ) -> dict[str, Any]:
        lowered: dict[str, str] = {}
        for name, value in headers.items():
            key = name.lower()
            lowered[key] = f"{lowered[key]},{value}" if key in lowered else value
        query_params: dict[str, str] = {}
        for name, value in parse_qsl(query, keep_blank_values=True):
            query_params[name] = f"{query_params[name]},{value}" if name in query_params else value
        try:
            text, encoded = body.decode("utf-8"), False
        except UnicodeDecodeError:
            text, encoded = base64.b64encode(body).decode(), True
        now = datetime.now(UTC)
        event: dict[str, Any] = {
            "version": "2.0",
            "routeKey": f"{route.method} {route.path}",
            "rawPath": path,
            "rawQueryString": query,
            "headers": lowered,
            "requestContext": {
                "accountId": self._account_id,
                "apiId": "local",
                "domainName": lowered.get("host", "localhost"),
                "domainPrefix": "local",
                "http": {
                    "method": method,
                    "path": path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": source_ip,
                    "userAgent": lowered.get("user-agent", ""),
                },
                "requestId": str(uuid.uuid4()),
                "routeKey": f"{route.method} {route.path}",
                "stage": "$default",
                "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "timeEpoch": int(time.time() * 1000),
            },
            "isBase64Encoded": encoded,
        }
        if "cookie" in lowered:
            event["cookies"] = [c.strip() for c in lowered["cookie"].split(";")]
        if query_params:
            event["queryStringParameters"] = query_params
        if params:
            event["pathParameters"] = params
        if body:
            event["body"] = text
        return event


def read_chunked(stream: io.BufferedIOBase, limit: int) -> bytes | None:
    """A ``Transfer-Encoding: chunked`` body, or None as soon as it would pass ``limit`` bytes (the rest is
    left unread). Without this a chunked body, having no Content-Length, would be taken for an empty one."""
    body = bytearray()
    while True:
        size = int(stream.readline(1024).split(b";", 1)[0].strip(), 16)  # ValueError: not chunked framing
        if size == 0:
            while stream.readline(1024).strip():  # trailer fields, up to the blank line
                pass
            return bytes(body)
        if len(body) + size > limit:
            return None
        body += stream.read(size)
        stream.readline(1024)  # the CRLF after the chunk


def _json(status: int, body: Any) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json"}, json.dumps(body).encode()


def _response(result: Any) -> tuple[int, dict[str, str], bytes]:
    # Payload 2.0: a dict with statusCode is a full response; anything else is a 200 JSON body.
    if not isinstance(result, dict) or "statusCode" not in result:
        return _json(200, result)
    headers = {str(k): str(v) for k, v in (result.get("headers") or {}).items()}
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers[name] = ",".join(str(v) for v in values)
    if result.get("cookies"):
        headers["Set-Cookie"] = "; ".join(result["cookies"])
    body = result.get("body") or ""
    raw = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
    headers.pop("Content-Length", None)
    return int(result["statusCode"]), headers, raw
