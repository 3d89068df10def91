"""The API validates its routes' arguments itself (handlers/resolver.py), not with Powertools' OpenAPI middleware,
which is too heavy to import at every cold start. Here each request is resolved twice: by the API's app, and by
a Powertools resolver with validation on whose routes are the same functions with Powertools' markers
(``with_powertools_markers``, as the OpenAPI document is generated), with the same error handlers. Status and
body must be the same, for requests that fail validation anywhere (path, query, header, body) and for ones that
pass it: the services are stand-ins that answer 404 naming the arguments the route called them with."""

from __future__ import annotations

import base64
import copy
import json
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl

import pytest
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.event_handler.openapi import params

from modelforge.domain.compute import ComputeConfig
from modelforge.errors import JobNotFoundError
from modelforge.handlers import api
from modelforge.handlers.http_errors import register_error_handlers, resolve_json
from modelforge.handlers.resolver import with_powertools_markers

UUID = "3f2b8c1e-9a4d-4e6f-8b7a-1c2d3e4f5a6b"
PROMOTE = "/models/M-1/status/promote"
TRAIN = json.dumps({"machine_name": "M-1", "indicator": "status"})
FORM = {"content-type": "application/x-www-form-urlencoded"}
# (method, path, raw query string, extra headers, body, base64-encoded)
CASES: list[tuple[Any, ...]] = [
    ("GET", f"/status/{UUID}"), ("GET", "/status/abc"), ("GET", "/status/a%20b"),
    ("GET", "/jobs"), ("GET", "/jobs", "limit=0"), ("GET", "/jobs", "limit=abc"), ("GET", "/jobs", "limit=5"),
    ("GET", "/jobs", "limit=1&limit=2"), ("GET", "/jobs", "limit=1,2"), ("GET", "/jobs", "limit="),
    ("GET", "/jobs", "status=pending&limit=3&machine_name=M-1"), ("GET", "/jobs", "status=bogus&unknown=1"),
    ("GET", "/jobs", "machine_name=bad%20name&limit=999&status=x"), ("GET", "/jobs", "next_token=" + "x" * 3000),
    ("GET", "/jobs", "next_token=a,b"), ("GET", "/jobs", "next_token=a&next_token=b"),
    ("GET", "/models"), ("GET", "/models", "machine_name=M-1"),
    ("GET", "/models", "machine_name=M-1&indicator=bogus&limit=101"),
    ("GET", "/models/M-1/bogus"), ("GET", "/models/M-1/status"), ("GET", "/models/bad%20name/health"),
    ("POST", PROMOTE), ("POST", PROMOTE, "", None, "{not json"), ("POST", PROMOTE, "", None, "[]"),
    ("POST", PROMOTE, "", None, "[{}]"), ("POST", PROMOTE, "", None, "null"), ("POST", PROMOTE, "", None, '"x"'),
    ("POST", PROMOTE, "", None, json.dumps({"version": "20250601T120000Z-0123abcd", "reason": "r"})),
    ("POST", PROMOTE, "", None, json.dumps({"version": "20250601T120000Z-0123abcd", "reason": "a rollback"})),
    ("POST", "/models/M-1/bogus/promote", "", None, "{}"), ("POST", PROMOTE, "", FORM),
    ("POST", PROMOTE, "", {"content-type": "text/plain"}),
    ("POST", PROMOTE, "", {"content-type": "application/problem+json"}, "{}"),
    ("POST", "/train", "", None, "{}"), ("POST", "/train", "", None, TRAIN), ("POST", "/train", "", None, TRAIN, True),
    ("POST", "/train", "", {"idempotency-key": ""}, TRAIN),
    ("POST", "/train", "", {"idempotency-key": "k" * 300}, TRAIN),
    ("POST", "/train", "", {"Idempotency-Key": "a,b"}, TRAIN), ("POST", "/train", "", {"idempotency-key": ""}, "{}"),
    ("POST", "/train", "", {"idempotency-key": ""}, "{bad"),
    ("POST", "/train", "", None, json.dumps({"machine_name": "M-1", "indicator": "status",
                                             "start_date": "3020-01-01"})),
    ("POST", "/train", "", None, json.dumps([{"machine_name": "M-1", "indicator": "status"}, 5])),
    ("POST", "/retrain", "", None, "{}"), ("POST", "/retrain", "", None, '{"machine_name": 5}'),
    ("GET", "/retrains/bad%20id"), ("GET", "/retrains/run-1"),
    ("GET", "/triggers", "status=bogus&limit=0"), ("GET", "/triggers", "run_id=r1&limit=1000"),
    ("POST", "/triggers/resolve", "", None, "{}"), ("POST", "/triggers/resolve", "", None, '{"process_ids": []}'),
    ("GET", "/health"), ("GET", "/machines"), ("GET", "/nope"),
]


class Echo:
    """A service whose every call fails with a 404 naming the call: what the route passed on."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __getattr__(self, method: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            raise JobNotFoundError(f"{self.name}.{method} {args!r} {sorted(kwargs.items())!r}")
        return call


def echo_services() -> SimpleNamespace:
    names = ("jobs", "registry", "artifacts", "catalog", "executions", "triggers", "retrain_executions")
    stubs: dict[str, Any] = {name: Echo(name) for name in names}
    return SimpleNamespace(**stubs, submit_once=lambda **kwargs: Echo("submit_once").call(**kwargs),
                           settings=SimpleNamespace(max_jobs_in_flight=None, compute_config=ComputeConfig),
                           history=None)


@pytest.fixture(scope="module")
def reference() -> APIGatewayHttpResolver:
    """The API's routes under Powertools' own validation, as the API ran before."""
    app = APIGatewayHttpResolver(enable_validation=True)
    for rule, method, args, kwargs, func in api.app._routes:
        app.route(rule, method, *args, **kwargs)(with_powertools_markers(func, params))
    register_error_handlers(app)
    return app


def event_for(template: dict[str, Any], method: str, path: str, raw_query: str = "",
              headers: dict[str, str] | None = None, body: str | None = None, encoded: bool = False) -> dict[str, Any]:
    event = copy.deepcopy(template)
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    event["routeKey"] = event["requestContext"]["routeKey"] = f"{method} {path}"
    event["rawQueryString"] = raw_query
    query: dict[str, str] = {}
    for name, value in parse_qsl(raw_query, keep_blank_values=True):  # API Gateway joins repeated values
        query[name] = f"{query[name]},{value}" if name in query else value
    if query:
        event["queryStringParameters"] = query
    event["headers"].update(headers or {})
    event.pop("pathParameters", None)
    if body is not None:
        event["body"] = base64.b64encode(body.encode()).decode() if encoded else body
        event["isBase64Encoded"] = encoded
        event["headers"].setdefault("content-type", "application/json")
    return event


@pytest.mark.parametrize("case", CASES, ids=[" ".join(str(part)[:40] for part in case[:3]) for case in CASES])
def test_the_api_answers_as_powertools_validation_did(
    case: tuple[Any, ...], reference: APIGatewayHttpResolver, load_event: Any, lambda_context: Any
) -> None:
    event = event_for(load_event("get_status"), *case)
    api.app.append_context(services=echo_services())
    ours = resolve_json(api.app, copy.deepcopy(event), lambda_context)
    # The reference runs the same route functions, which read the API app's context and current event.
    api.app.append_context(services=echo_services())
    theirs = resolve_json(reference, event, lambda_context)
    assert (ours["statusCode"], json.loads(ours["body"])) == (theirs["statusCode"], json.loads(theirs["body"]))
