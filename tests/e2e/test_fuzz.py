"""Bad input: schemathesis drives the API with its own OpenAPI document against a local cloud started in this
process, plus hand-written hostile requests a schema-driven fuzzer does not make. Nothing may answer 5xx;
every documented answer must match its schema; invalid data must be rejected, and writes nothing.

The document is the one the API function generates from its route models (``openapi_document``, what
GET /openapi.json serves; a test checks the cloud serves exactly it). It is loaded at import because
schemathesis 4's fixture-based loader (``schemathesis.pytest.from_fixture``) does not run under pytest 9.2
(it writes ``Node._nodeid``, which pytest 9.2 no longer has); requests go to the cloud's URL.

Bounded: at most 25 generated examples per operation (15 for POST /train), no example database, and a
training function that fails at once (tests.integration.faulty_handlers.crash), so an accepted submission
costs a process start, not a training."""

from __future__ import annotations

import ast
import base64
import contextlib
import functools
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
)

from localcloud.cloud import LocalCloud
from localcloud.demo import load_demo_data
from tests.conftest import free_port, one_boto3_session

pytestmark = pytest.mark.e2e

CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance, negative_data_rejection]
CHEAP_TRAINING = "tests.integration.faulty_handlers.crash"  # fails at once: Runtime.ExitError, job failed
MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
LOCAL_FRONT_501_METHODS = {"trace", "query"}


@contextlib.contextmanager
def ast_parse_serialized() -> Iterator[None]:
    """CPython 3.11 keeps the ast module's recursion-depth count per interpreter, not per thread, so two
    threads turning source into ast objects at once can fail with "SystemError: AST constructor recursion
    depth mismatch". Here they do: hypothesis parses strategies' lambdas in the test thread while moto's Step
    Functions interpreter, in a server thread, literal_evals the definition of every execution the fuzzer
    starts. ast.parse (which literal_eval calls) takes one lock while the cloud runs."""
    original = ast.parse
    lock = threading.Lock()

    @functools.wraps(original)
    def parse(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return original(*args, **kwargs)

    ast.parse = parse
    try:
        yield
    finally:
        ast.parse = original


@pytest.fixture(scope="module")
def fuzz_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    """One local cloud for the module (moto's state is process-wide: never two at once in one process)."""
    cloud = LocalCloud(aws_port=free_port(), api_port=free_port(), state_dir=tmp_path_factory.mktemp("fuzz"),
                       handler_overrides={"TrainingFunction": CHEAP_TRAINING})
    with ast_parse_serialized():
        cloud.start()
        try:
            with one_boto3_session():
                load_demo_data(cloud.stack, machines=2, days=30)
            yield cloud
        finally:
            cloud.stop()


@pytest.fixture(scope="module")
def machines(fuzz_cloud: LocalCloud) -> list[str]:
    listed = requests.get(f"{fuzz_cloud.api_url}/machines", timeout=30).json()["machines"]
    names = [m["machine_name"] for m in listed]
    assert len(names) == 2, listed
    return names


def _own_document() -> dict[str, Any]:
    from modelforge.handlers.api import openapi_document

    return openapi_document()


schema = schemathesis.openapi.from_dict(_own_document())
schema.config.update(request_timeout=60)
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], database="none")
# The local HTTP front cannot answer TRACE or QUERY (test_an_unrouted_method_is_a_4xx shows it); the coverage
# phase still sends every other undeclared method to every route.
BOUNDED: dict[str, Any] = {
    "deadline": None, "database": None, "derandomize": True,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
}


def test_the_cloud_serves_the_document_under_test(fuzz_cloud: LocalCloud) -> None:
    served = requests.get(f"{fuzz_cloud.api_url}/openapi.json", timeout=30)
    assert served.status_code == 200
    assert served.json() == schema.raw_schema


def _aim_at_known_machines(case: Any, machines: list[str]) -> None:
    """Generated machine names (and the document's example, MOTOBOMBA-007) have no data here, so every positive
    body would stop at the 422 for an unknown machine; they are pointed at the machines that have data, so
    the accepting path is fuzzed too. The body stays valid for the schema. (Unknown machines: see
    test_an_unknown_machine_is_422_and_writes_nothing.)"""
    body = case.body
    if (case.meta is not None and case.meta.generation.mode.is_positive and isinstance(body, dict)
            and isinstance(body.get("machine_name"), str)):
        body["machine_name"] = machines[len(body["machine_name"]) % len(machines)]


def _call_and_validate(case: Any, cloud: LocalCloud) -> None:
    response = case.call(base_url=cloud.api_url)
    case.validate_response(response, checks=CHECKS, transport_kwargs={"base_url": cloud.api_url})


def _operation_test(method: str, path: str) -> Any:
    """One test function per operation, so each has a nodeid of its own: schemathesis's items for one
    function's operations all share the function's nodeid under pytest 9.2 (it names them ``test[GET /x]``
    but pytest builds the id from the original name), and pytest-xdist, which hands out tests by nodeid,
    ran only one of them. POST /train gets fewer examples and its bodies aimed at known machines."""
    operation = schema.include(method=method, path=path)
    if (method, path) == ("POST", "/train"):
        @operation.parametrize()
        @settings(max_examples=15, **BOUNDED)
        def train_answers(case: Any, fuzz_cloud: LocalCloud, machines: list[str]) -> None:
            _aim_at_known_machines(case, machines)
            _call_and_validate(case, fuzz_cloud)

        return train_answers

    @operation.parametrize()
    @settings(max_examples=25, **BOUNDED)
    def answers(case: Any, fuzz_cloud: LocalCloud) -> None:
        _call_and_validate(case, fuzz_cloud)

    return answers


def _test_name(method: str, path: str) -> str:
    words = "".join(c if c.isalnum() else "_" for c in path.strip("/")).strip("_") or "root"
    return f"test_{method.lower()}_{words}_answers_as_documented"


DOCUMENTED_OPERATIONS = [(result.ok().method.upper(), result.ok().path) for result in schema.get_all_operations()]
for _method, _path in DOCUMENTED_OPERATIONS:
    globals()[_test_name(_method, _path)] = _operation_test(_method, _path)


def test_every_documented_operation_has_its_own_test() -> None:
    names = {_test_name(method, path) for method, path in DOCUMENTED_OPERATIONS}
    assert len(names) == len(DOCUMENTED_OPERATIONS) >= 8
    assert ("POST", "/train") in DOCUMENTED_OPERATIONS


# ------------------------------------------------------------------ hand-written hostile requests


def _post_train(cloud: LocalCloud, body: bytes, content_type: str = "application/json") -> requests.Response:
    return requests.post(f"{cloud.api_url}/train", data=body, headers={"content-type": content_type}, timeout=60)


def _train_body(machine: str, **fields: Any) -> dict[str, Any]:
    return {"indicator": "status", "machine_name": machine, **fields}


@functools.lru_cache(maxsize=1)
def _dynamodb(cloud: LocalCloud) -> Any:
    """One client for the module's cloud (making one per call loads botocore's service model each time)."""
    return cloud.client("dynamodb")


def _jobs(cloud: LocalCloud) -> int:
    table = _dynamodb(cloud)
    return int(table.scan(TableName=cloud.stack.tables["JobsTable"].name, Select="COUNT")["Count"])


def test_an_unknown_machine_is_422_and_writes_nothing(fuzz_cloud: LocalCloud) -> None:
    before = _jobs(fuzz_cloud)
    response = requests.post(f"{fuzz_cloud.api_url}/train", json=_train_body("NO-SUCH-MACHINE"), timeout=60)
    assert response.status_code == 422, response.text
    assert [e["loc"] for e in response.json()["detail"]] == [["body", "machine_name"]]
    assert _jobs(fuzz_cloud) == before


def test_an_oversized_body_is_refused_with_413(fuzz_cloud: LocalCloud, machines: list[str]) -> None:
    before = _jobs(fuzz_cloud)
    padding = " " * (MAX_BODY_BYTES + 1)
    body = json.dumps(_train_body(machines[0])).replace("{", "{" + padding, 1).encode()
    assert len(body) > MAX_BODY_BYTES
    response = _post_train(fuzz_cloud, body)
    assert response.status_code == 413, response.text
    assert _jobs(fuzz_cloud) == before


@pytest.mark.parametrize("name", ["../etc", "a/b", "%2e%2e%2f", "..", "./x", ".hidden", "a\\b", "a\x00b",
                                  "MOTOBOMBA-001/../MOTOBOMBA-002", "machine_name=x/month=2025-01"])
def test_path_traversal_machine_names_are_rejected(fuzz_cloud: LocalCloud, name: str) -> None:
    before = _jobs(fuzz_cloud)
    submitted = requests.post(f"{fuzz_cloud.api_url}/train", json=_train_body(name), timeout=60)
    assert submitted.status_code in (404, 422), submitted.text
    if submitted.status_code == 422:
        assert ["body", "machine_name"] in [e["loc"] for e in submitted.json()["detail"]]
    listed = requests.get(f"{fuzz_cloud.api_url}/jobs", params={"machine_name": name}, timeout=60)
    assert listed.status_code in (404, 422), listed.text
    assert _jobs(fuzz_cloud) == before


@pytest.mark.parametrize("path", ["/status/../etc", "/status/..%2fetc", "/status/%2e%2e%2f", "/status/a/b",
                                  "/status/%2e%2e", "/status/%00", "/machines/..%2f..%2fetc"])
def test_path_traversal_in_the_url_is_404_or_422(fuzz_cloud: LocalCloud, path: str) -> None:
    # Sent as written: requests would normalise "/../" away before it left the client.
    with socket.create_connection(("127.0.0.1", int(fuzz_cloud.api_url.rsplit(":", 1)[1])), timeout=60) as raw:
        raw.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        answer = b""
        while chunk := raw.recv(65536):
            answer += chunk
    status = int(answer.split(b" ", 2)[1])
    assert status in (404, 422), answer[:500]


@pytest.mark.parametrize("body", [b'{"indicator": "status", "machine_name": "\xff\xfe"}', b"\xff\xfe\xfd",
                                  "{\"machine_name\": \"é\"}".encode("latin-1")])
def test_a_body_that_is_not_utf8_is_a_4xx(fuzz_cloud: LocalCloud, body: bytes) -> None:
    before = _jobs(fuzz_cloud)
    response = _post_train(fuzz_cloud, body)
    assert 400 <= response.status_code < 500, response.text
    assert _jobs(fuzz_cloud) == before


def test_multipart_without_a_boundary_is_a_4xx(fuzz_cloud: LocalCloud, machines: list[str]) -> None:
    before = _jobs(fuzz_cloud)
    response = _post_train(fuzz_cloud, json.dumps(_train_body(machines[0])).encode(), "multipart/form-data")
    assert 400 <= response.status_code < 500, response.text
    assert _jobs(fuzz_cloud) == before


@pytest.mark.parametrize("field", ["start_date", "end_date"])
@pytest.mark.parametrize("day", ["1800-01-01", "2500-01-01", "0001-01-01", "9999-12-31"])
def test_dates_centuries_away_are_422_naming_the_field(fuzz_cloud: LocalCloud, machines: list[str], field: str,
                                                       day: str) -> None:
    before = _jobs(fuzz_cloud)
    response = requests.post(f"{fuzz_cloud.api_url}/train", json=_train_body(machines[0], **{field: day}),
                             timeout=60)
    assert response.status_code == 422, response.text
    assert [e["loc"] for e in response.json()["detail"]] == [["body", field]]
    assert _jobs(fuzz_cloud) == before


@pytest.mark.parametrize("body", ["[]", "[{}]", '"a string"', "42", "3.5", "true", "null", '""', "{", "{}}", ""])
def test_json_that_is_not_an_object_is_422(fuzz_cloud: LocalCloud, body: str) -> None:
    before = _jobs(fuzz_cloud)
    response = _post_train(fuzz_cloud, body.encode())
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][0] == "body"
    assert _jobs(fuzz_cloud) == before


def test_a_100_kb_machine_name_is_422(fuzz_cloud: LocalCloud) -> None:
    before = _jobs(fuzz_cloud)
    response = requests.post(f"{fuzz_cloud.api_url}/train", json=_train_body("M" * 100_000), timeout=60)
    assert response.status_code == 422, response.text[:500]
    assert [e["loc"] for e in response.json()["detail"]] == [["body", "machine_name"]]
    assert "M" * 1000 not in response.text  # the answer names the field, it does not echo the input
    assert _jobs(fuzz_cloud) == before


def test_a_100_kb_query_parameter_is_a_4xx(fuzz_cloud: LocalCloud) -> None:
    response = requests.get(f"{fuzz_cloud.api_url}/jobs", params={"machine_name": "M" * 100_000}, timeout=60)
    assert 400 <= response.status_code < 500


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "application/octet-stream",
                                          "multipart/form-data; boundary=x", "application/x-www-form-urlencoded"])
def test_a_body_of_another_media_type_is_a_4xx(fuzz_cloud: LocalCloud, machines: list[str],
                                               content_type: str) -> None:
    before = _jobs(fuzz_cloud)
    response = _post_train(fuzz_cloud, json.dumps(_train_body(machines[0])).encode(), content_type)
    assert 400 <= response.status_code < 500, response.text
    assert _jobs(fuzz_cloud) == before


def _token(key: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode()


@pytest.mark.parametrize("token", ["!!!", "W10=", _token({"process_id": 1}), _token(["process_id"])])
def test_a_next_token_that_does_not_decode_to_a_key_is_422(fuzz_cloud: LocalCloud, token: str) -> None:
    response = requests.get(f"{fuzz_cloud.api_url}/jobs", params={"next_token": token}, timeout=60)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["query", "next_token"]


@pytest.mark.parametrize("key", [{}, {"process_id": "x"}, {"foo": "bar"},
                                 {"process_id": "x", "record_type": "training_job", "created_at": "x", "z": "y"}])
def test_a_forged_next_token_is_422(fuzz_cloud: LocalCloud, key: dict[str, str]) -> None:
    """A token that decodes to an object of strings, but not to a key of this listing, never reaches DynamoDB
    as an ExclusiveStartKey (which answered 500 before job_store checked the token's key names)."""
    response = requests.get(f"{fuzz_cloud.api_url}/jobs", params={"next_token": _token(key)}, timeout=60)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["query", "next_token"]


def test_a_next_token_of_another_listing_is_422(fuzz_cloud: LocalCloud) -> None:
    all_jobs_key = {"process_id": "00000000-0000-4000-8000-000000000000", "record_type": "training_job",
                    "created_at": "2025-01-01T00:00:00.000000Z"}
    response = requests.get(f"{fuzz_cloud.api_url}/jobs", timeout=60,
                            params={"status": "failed", "next_token": _token(all_jobs_key)})
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["query", "next_token"]


def test_the_document_declares_the_statuses_the_api_answers(fuzz_cloud: LocalCloud, machines: list[str]) -> None:
    document = requests.get(f"{fuzz_cloud.api_url}/openapi.json", timeout=30).json()
    unknown = requests.get(f"{fuzz_cloud.api_url}/status/00000000-0000-4000-8000-000000000000", timeout=60)
    other_type = _post_train(fuzz_cloud, json.dumps(_train_body(machines[0])).encode(), "text/plain")
    observed = {("/status/{process_id}", "get", unknown.status_code), ("/train", "post", other_type.status_code)}
    assert observed == {("/status/{process_id}", "get", 404), ("/train", "post", 415)}
    undeclared = {(path, method, status) for path, method, status in observed
                  if str(status) not in document["paths"][path][method]["responses"]}
    assert not undeclared


@pytest.mark.parametrize("method", sorted(m.upper() for m in LOCAL_FRONT_501_METHODS | {"propfind"}))
def test_an_unrouted_method_is_a_4xx(fuzz_cloud: LocalCloud, method: str) -> None:
    response = requests.request(method, f"{fuzz_cloud.api_url}/health", timeout=60)
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:200])
