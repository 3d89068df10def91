"""The real API Lambda handler, invoked with the canonical events in tests/events, against moto in-process.

Tables, buckets and the state machine are created from template.yaml (``localcloud.template.resolve_stack``);
the handler gets the environment the template gives ApiFunction. moto records executions without running them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import boto3
import pytest
from moto import mock_aws

import modelforge
from localcloud.template import LocalStack
from modelforge.adapters import aws as aws_clients
from modelforge.adapters.job_store import JobStore
from modelforge.adapters.model_registry import ModelRegistry
from modelforge.adapters.telemetry import TelemetryCatalog
from modelforge.handlers import api
from modelforge.jobs import Indicator, Job, JobStatus
from modelforge.registry import ModelName, ModelVersion
from modelforge.schemas import MachineSummary
from modelforge.settings import ApiSettings

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

MACHINE = "MOTOBOMBA-007"  # the machine the canonical post_train event names
OTHER = "MOTOBOMBA-011"
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"
# moto records executions without running them; the jobs stay as the API left them.
MOTO_CONFIG: Any = {"stepfunctions": {"execute_state_machine": False}, "lambda": {"use_docker": False}}


@dataclass
class Cloud:
    """moto in-process with the stack's resources, and the ApiFunction's view of them."""

    stack: LocalStack
    dynamodb: Any
    s3: Any
    sfn: Any
    environment: dict[str, str]

    @property
    def jobs_table(self) -> Any:
        return self.dynamodb.Table(self.stack.tables["JobsTable"].name)

    def jobs_key(self, process_id: str) -> dict[str, str]:
        (hash_key,) = [
            k["AttributeName"]
            for k in self.stack.tables["JobsTable"].properties["KeySchema"]
            if k["KeyType"] == "HASH"
        ]
        return {hash_key: process_id}

    def job_item(self, process_id: str) -> dict[str, Any] | None:
        return self.jobs_table.get_item(Key=self.jobs_key(process_id), ConsistentRead=True).get("Item")

    @property
    def processed_prefix(self) -> str:
        """As the function reads it (the template may leave it empty: the code's default)."""
        return ApiSettings.from_env(self.environment).processed_data_prefix

    @property
    def state_machine_arn(self) -> str:
        return self.environment["STATE_MACHINE_ARN"]

    def executions(self) -> dict[str, dict[str, Any]]:
        listed = self.sfn.list_executions(stateMachineArn=self.state_machine_arn)["executions"]
        return {e["name"]: self.sfn.describe_execution(executionArn=e["executionArn"]) for e in listed}

    def write_manifest(self, name: str, first: datetime, last: datetime) -> MachineSummary:
        summary = MachineSummary(
            machine_name=name,
            first_timestamp=first,
            last_timestamp=last,
            rows=1440,
            columns=["timestamp", "Eng_RPM_variation_percentage", "Eng_RPM"],
        )
        TelemetryCatalog(
            self.environment["DATA_BUCKET_NAME"], self.processed_prefix, s3=self.s3
        ).write_manifest(summary)
        return summary


def _clear_client_caches() -> None:
    aws_clients.client.cache_clear()
    aws_clients.resource.cache_clear()


@pytest.fixture(scope="module", autouse=True)
def _fresh_clients() -> Iterator[None]:
    """The adapters' boto3 clients are cached per process. Drop any another tier made (they may point at a
    local endpoint), then reuse the ones made here across tests: moto intercepts them in every mock_aws
    session, and creating them is most of a handler call's cost."""
    _clear_client_caches()
    yield
    _clear_client_caches()
    api.build_services.cache_clear()


@pytest.fixture(scope="module")
def boto_session(local_stack: LocalStack) -> boto3.session.Session:
    return boto3.session.Session(
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        aws_session_token="testing",
        region_name=local_stack.region,
    )


@pytest.fixture
def cloud(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
    local_stack: LocalStack,
    boto_session: boto3.session.Session,
) -> Iterator[Cloud]:
    for name in list(os.environ):
        if name.startswith(("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_DEFAULT_PROFILE")):
            monkeypatch.delenv(name)
    fake_aws = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": local_stack.region,
        "AWS_REGION": local_stack.region,
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    environment = dict(local_stack.functions["ApiFunction"].environment)
    for name, value in {**fake_aws, **environment}.items():
        monkeypatch.setenv(name, value)
    api.build_services.cache_clear()
    # Explicitly: moto keeps its configuration process-wide (a running LocalCloud turns state machine execution
    # on for the whole process until it stops); this test must not depend on what ran before it.
    with mock_aws(config=MOTO_CONFIG):
        session = boto_session
        dynamodb_client = session.client("dynamodb")
        for table in local_stack.tables.values():
            props = table.properties
            arguments: dict[str, Any] = {
                "TableName": table.name,
                "KeySchema": props["KeySchema"],
                "AttributeDefinitions": props["AttributeDefinitions"],
                "BillingMode": props["BillingMode"],
            }
            if props.get("GlobalSecondaryIndexes"):
                arguments["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
            dynamodb_client.create_table(**arguments)
        s3 = session.client("s3")
        for bucket in local_stack.buckets.values():
            s3.create_bucket(Bucket=bucket)
        role = session.client("iam").create_role(
            RoleName="modelforge-test-states",
            AssumeRolePolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": "sts:AssumeRole",
                            "Principal": {"Service": "states.amazonaws.com"},
                        }
                    ],
                }
            ),
        )["Role"]["Arn"]
        sfn = session.client("stepfunctions")
        for machine in local_stack.state_machines.values():
            created = sfn.create_state_machine(
                name=machine.name, definition=json.dumps(machine.definition), roleArn=role
            )
            assert created["stateMachineArn"] == machine.arn
        yield Cloud(local_stack, session.resource("dynamodb"), s3, sfn, environment)
    api.build_services.cache_clear()


@pytest.fixture
def with_machines(cloud: Cloud) -> Cloud:
    cloud.write_manifest(MACHINE, datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 8, 31, 23, 59, tzinfo=UTC))
    cloud.write_manifest(OTHER, datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 5, 31, 23, 59, tzinfo=UTC))
    return cloud


@pytest.fixture
def call(lambda_context: Any) -> Callable[[dict[str, Any]], tuple[int, Any]]:
    """Invokes the real handler; returns (status code, decoded JSON body)."""

    def invoke(event: dict[str, Any]) -> tuple[int, Any]:
        response = api.lambda_handler(event, lambda_context)
        body = response.get("body") or "null"
        if response.get("isBase64Encoded"):
            body = base64.b64decode(body).decode()
        return int(response["statusCode"]), json.loads(body)

    return invoke


def train_event(load_event: Callable[[str], dict[str, Any]], **body: Any) -> dict[str, Any]:
    event = load_event("post_train")
    event["body"] = json.dumps(body)
    event["headers"]["content-length"] = str(len(event["body"]))
    return event


def status_event(load_event: Callable[[str], dict[str, Any]], process_id: str) -> dict[str, Any]:
    event = load_event("get_status")
    path = f"/status/{process_id}"
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["pathParameters"] = {"process_id": process_id}
    return event


def jobs_event(load_event: Callable[[str], dict[str, Any]], **query: Any) -> dict[str, Any]:
    event = load_event("get_jobs")
    params = {k: str(v) for k, v in query.items() if v is not None}
    event["rawQueryString"] = urlencode(params)
    if params:
        event["queryStringParameters"] = params
    else:
        event.pop("queryStringParameters", None)
    return event


def locs(body: dict[str, Any]) -> list[list[str]]:
    return [entry["loc"] for entry in body["detail"]]


# ---------------------------------------------------------------- the canonical events


def test_canonical_events_name_routes_of_the_api_function(
    local_stack: LocalStack, load_event: Callable[[str], dict[str, Any]]
) -> None:
    routes = {f"{method} {path}" for method, path in local_stack.functions["ApiFunction"].http_routes}
    for name in ("post_train", "post_train_invalid", "get_status", "get_jobs", "get_machines", "get_health"):
        event = load_event(name)
        assert event["version"] == "2.0"
        assert event["routeKey"] in routes, name
        assert event["requestContext"]["routeKey"] == event["routeKey"]
        assert event["requestContext"]["http"]["path"] == event["rawPath"]


# ---------------------------------------------------------------- POST /train


def test_train_creates_a_pending_job_and_starts_its_execution(
    with_machines: Cloud, call: Any, load_event: Callable[[str], dict[str, Any]]
) -> None:
    status, body = call(load_event("post_train"))

    assert status == 200
    assert set(body) == {"process_id", "status"}
    assert body["status"] == "pending"
    process_id = body["process_id"]

    item = with_machines.job_item(process_id)
    assert item is not None
    assert item["status"] == "pending"
    assert item["machine_name"] == MACHINE
    assert item["indicator"] == "status"
    assert (item["start_date"], item["end_date"]) == ("2025-01-01", "2025-08-31")

    executions = with_machines.executions()
    assert list(executions) == [process_id]
    assert json.loads(executions[process_id]["input"]) == {"process_id": process_id, "compute": "lambda"}


def test_train_with_the_invalid_event_names_the_indicator(
    with_machines: Cloud, call: Any, load_event: Callable[[str], dict[str, Any]]
) -> None:
    status, body = call(load_event("post_train_invalid"))

    assert status == 422
    assert locs(body) == [["body", "indicator"]]
    assert with_machines.executions() == {}


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        pytest.param(
            {"indicator": "pressure", "machine_name": MACHINE}, {"indicator"}, id="unknown-indicator"
        ),
        pytest.param(
            {"indicator": "status", "machine_name": MACHINE, "model": "xgb"}, {"model"}, id="unknown-field"
        ),
        pytest.param({"indicator": "status"}, {"machine_name"}, id="missing-machine"),
        pytest.param(
            {"indicator": "status", "machine_name": MACHINE, "start_date": "2025-13-01"},
            {"start_date"},
            id="bad-date",
        ),
        pytest.param(
            {
                "indicator": "status",
                "machine_name": MACHINE,
                "start_date": "2025-05-01",
                "end_date": "2025-04-01",
            },
            {"end_date"},
            id="start-after-end",
        ),
        pytest.param(
            {"indicator": "status", "machine_name": "MOTOBOMBA-404"}, {"machine_name"}, id="no-data"
        ),
        pytest.param(
            {
                "indicator": "status",
                "machine_name": MACHINE,
                "start_date": "1025-01-01",
                "end_date": "2925-01-01",
            },
            {"start_date", "end_date"},
            id="centuries",
        ),
        pytest.param({"indicator": "status", "machine_name": "../x"}, {"machine_name"}, id="path-traversal"),
        pytest.param(
            {"indicator": "status", "machine_name": "plant/MOTOBOMBA-007"}, {"machine_name"}, id="slash"
        ),
        pytest.param(
            {"indicator": "status", "machine_name": MACHINE, "start_date": "2025-09-01"},
            {"start_date"},
            id="start-after-data",
        ),
        pytest.param(
            {"indicator": "status", "machine_name": MACHINE, "end_date": "2024-12-31"},
            {"end_date"},
            id="end-before-data",
        ),
    ],
)
def test_train_rejects_a_bad_request_naming_the_field(
    with_machines: Cloud,
    call: Any,
    load_event: Callable[[str], dict[str, Any]],
    body: dict[str, Any],
    fields: set[str],
) -> None:
    status, response = call(train_event(load_event, **body))

    assert status == 422
    assert response["statusCode"] == 422
    assert {loc[-1] for loc in locs(response)} == fields
    assert all(loc[0] == "body" for loc in locs(response))
    assert all(entry["msg"] for entry in response["detail"])
    assert with_machines.jobs_table.scan()["Items"] == []
    assert with_machines.executions() == {}


def test_a_rejected_machine_name_is_not_echoed_back(
    with_machines: Cloud, call: Any, load_event: Callable[[str], dict[str, Any]]
) -> None:
    status, response = call(train_event(load_event, indicator="status", machine_name="../../etc/passwd"))

    assert status == 422
    assert "etc/passwd" not in json.dumps(response)


def test_train_fails_the_job_when_the_execution_cannot_start(
    with_machines: Cloud, call: Any, load_event: Callable[[str], dict[str, Any]]
) -> None:
    with_machines.sfn.delete_state_machine(stateMachineArn=with_machines.state_machine_arn)

    status, body = call(load_event("post_train"))

    assert status == 503
    items = with_machines.jobs_table.scan()["Items"]
    assert len(items) == 1
    assert items[0]["status"] == "failed"
    assert "could not start the training execution" in items[0]["error_message"]
    assert items[0]["process_id"] in body["detail"]


# ---------------------------------------------------------------- Idempotency-Key, per caller


def keyed_train_event(load_event: Callable[[str], dict[str, Any]], key: str, *, user_arn: str | None = None,
                      jwt_sub: str | None = None) -> dict[str, Any]:
    """The canonical POST /train with an Idempotency-Key, from the IAM principal or JWT subject given."""
    event = load_event("post_train")
    event["headers"]["idempotency-key"] = key
    if user_arn is not None:
        event["requestContext"]["authorizer"]["iam"]["userArn"] = user_arn
    if jwt_sub is not None:
        event["requestContext"]["authorizer"] = {"jwt": {"claims": {"sub": jwt_sub}, "scopes": ["modelforge/train"]}}
    return event


def test_the_same_key_and_body_from_one_caller_is_one_job(
    with_machines: Cloud, call: Any, load_event: Callable[[str], dict[str, Any]]
) -> None:
    first = call(keyed_train_event(load_event, "nightly-2025-06-01"))
    again = call(keyed_train_event(load_event, "nightly-2025-06-01"))

    assert first[0] == again[0] == 200
    assert again[1]["process_id"] == first[1]["process_id"]
    assert len(with_machines.jobs_table.scan()["Items"]) == 1
    assert list(with_machines.executions()) == [first[1]["process_id"]]


@pytest.mark.parametrize("identities", [
    pytest.param(({"user_arn": "arn:aws:iam::123456789012:user/alice"},
                  {"user_arn": "arn:aws:iam::123456789012:user/bob"}), id="iam"),
    pytest.param(({"jwt_sub": "3b1f0c9e-alice"}, {"jwt_sub": "7d2e4a1f-bob"}), id="jwt"),
])
def test_the_same_key_from_two_callers_is_two_jobs(
    with_machines: Cloud, call: Any, load_event: Callable[[str], dict[str, Any]],
    identities: tuple[dict[str, str], dict[str, str]],
) -> None:
    alice, bob = identities
    status_a, body_a = call(keyed_train_event(load_event, "nightly-2025-06-01", **alice))
    status_b, body_b = call(keyed_train_event(load_event, "nightly-2025-06-01", **bob))
    # Each caller's retry still returns their own job.
    _, again_a = call(keyed_train_event(load_event, "nightly-2025-06-01", **alice))
    _, again_b = call(keyed_train_event(load_event, "nightly-2025-06-01", **bob))

    assert status_a == status_b == 200
    assert body_a["process_id"] != body_b["process_id"]
    assert (again_a["process_id"], again_b["process_id"]) == (body_a["process_id"], body_b["process_id"])
    assert len(with_machines.jobs_table.scan()["Items"]) == 2
    assert set(with_machines.executions()) == {body_a["process_id"], body_b["process_id"]}


def test_another_callers_key_with_another_body_is_not_refused(
    with_machines: Cloud, call: Any, load_event: Callable[[str], dict[str, Any]]
) -> None:
    call(keyed_train_event(load_event, "shared-key", user_arn="arn:aws:iam::123456789012:user/alice"))
    event = keyed_train_event(load_event, "shared-key", user_arn="arn:aws:iam::123456789012:user/bob")
    event["body"] = json.dumps({"indicator": "health", "machine_name": OTHER})

    status, body = call(event)

    assert status == 200, body  # not 422: bob never used this key
    assert len(with_machines.jobs_table.scan()["Items"]) == 2


# ---------------------------------------------------------------- MAX_JOBS_IN_FLIGHT, the cost guard


def test_at_the_bound_of_jobs_in_flight_train_is_429_with_retry_after_and_writes_nothing(
    with_machines: Cloud, lambda_context: Any, monkeypatch: pytest.MonkeyPatch,
    load_event: Callable[[str], dict[str, Any]],
) -> None:
    monkeypatch.setenv("MAX_JOBS_IN_FLIGHT", "2")
    accepted = [api.lambda_handler(load_event("post_train"), lambda_context) for _ in range(2)]
    assert [r["statusCode"] for r in accepted] == [200, 200]

    response = api.lambda_handler(keyed_train_event(load_event, "third-job"), lambda_context)

    assert response["statusCode"] == 429
    assert response["headers"]["Retry-After"] == "60"
    assert "2 training jobs are pending or running" in json.loads(response["body"])["detail"]
    assert len(with_machines.jobs_table.scan()["Items"]) == 2
    assert len(with_machines.executions()) == 2
    idempotency = with_machines.dynamodb.Table(with_machines.environment["IDEMPOTENCY_TABLE_NAME"])
    assert idempotency.scan()["Items"] == []  # Powertools deleted the record: the key is not left in progress

    # Once a job finishes, the same key goes through.
    first = json.loads(accepted[0]["body"])["process_id"]
    JobStore(with_machines.stack.tables["JobsTable"].name).mark_failed(first, "boom", datetime(2025, 6, 2, tzinfo=UTC))
    retried = api.lambda_handler(keyed_train_event(load_event, "third-job"), lambda_context)
    assert retried["statusCode"] == 200, retried["body"]
    assert len(with_machines.executions()) == 3


def test_a_retry_of_an_accepted_key_at_the_bound_returns_its_job(
    with_machines: Cloud, call: Any, monkeypatch: pytest.MonkeyPatch, load_event: Callable[[str], dict[str, Any]]
) -> None:
    monkeypatch.setenv("MAX_JOBS_IN_FLIGHT", "1")
    status, first = call(keyed_train_event(load_event, "only-job"))
    assert status == 200

    assert call(keyed_train_event(load_event, "only-job")) == (200, first)
    assert call(load_event("post_train"))[0] == 429


def test_jobs_in_flight_are_counted_with_count_queries_on_the_status_index(cloud: Cloud) -> None:
    from modelforge.adapters.job_store import BY_STATUS_INDEX

    class Spy:
        def __init__(self, table: Any) -> None:
            self.table, self.calls = table, []

        def __getattr__(self, name: str) -> Any:
            def recorded(**kwargs: Any) -> Any:
                self.calls.append((name, kwargs))
                return getattr(self.table, name)(**kwargs)
            return recorded

    writer = JobStore(cloud.stack.tables["JobsTable"].name)
    stamp = datetime(2025, 6, 1, tzinfo=UTC)
    for i, status in enumerate([JobStatus.PENDING, JobStatus.RUNNING, JobStatus.RUNNING, JobStatus.COMPLETED,
                                JobStatus.FAILED]):
        writer.create(Job(process_id=f"00000000-0000-4000-8000-00000000000{i}", indicator=Indicator.STATUS,
                          machine_name=MACHINE, status=status, created_at=stamp, updated_at=stamp))
    spy = Spy(cloud.jobs_table)

    assert JobStore(cloud.stack.tables["JobsTable"].name, table=spy).count_in_flight() == 3
    assert [name for name, _ in spy.calls] == ["query", "query"]
    assert all(k["IndexName"] == BY_STATUS_INDEX and k["Select"] == "COUNT" for _, k in spy.calls)


def test_the_document_declares_train_s_429(cloud: Cloud, call: Any,
                                           load_event: Callable[[str], dict[str, Any]]) -> None:
    event = load_event("get_health")
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/openapi.json"
    event["routeKey"] = event["requestContext"]["routeKey"] = "GET /openapi.json"

    _, document = call(event)

    declared = document["paths"]["/train"]["post"]["responses"]
    assert declared["429"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")


def test_counting_jobs_in_flight_follows_every_page() -> None:
    class Paged:
        def __init__(self) -> None:
            self.pages = {None: {"Count": 3, "LastEvaluatedKey": {"k": "1"}}, "1": {"Count": 2}}

        def query(self, **kwargs: Any) -> dict[str, Any]:
            return self.pages[kwargs.get("ExclusiveStartKey", {}).get("k")]

    assert JobStore("jobs", table=Paged()).count_in_flight() == 10  # 3 + 2 for each of pending and running


# ---------------------------------------------------------------- GET /status/{process_id}


def test_status_of_a_new_job(
    with_machines: Cloud, call: Any, load_event: Callable[[str], dict[str, Any]]
) -> None:
    _, created = call(load_event("post_train"))
    process_id = created["process_id"]

    status, body = call(status_event(load_event, process_id))

    assert status == 200
    assert body["process_id"] == process_id
    assert body["status"] == "pending"
    assert body["machine_name"] == MACHINE
    assert body["metrics"] is None
    assert body["execution_arn"] == with_machines.executions()[process_id]["executionArn"]


def test_status_of_a_completed_job_shows_its_headline_metrics(
    with_machines: Cloud, call: Any, load_event: Callable[[str], dict[str, Any]]
) -> None:
    _, created = call(load_event("post_train"))
    process_id = created["process_id"]
    version = "20250601T120000Z-" + process_id[:8]
    ModelRegistry(with_machines.stack.tables["ModelsTable"].name).put_version(
        ModelVersion(
            model_name=ModelName(MACHINE, Indicator.STATUS),
            version=version,
            machine_name=MACHINE,
            indicator=Indicator.STATUS,
            artifact_uri="s3://models/model/xgb_model.ubj",
            artifact_sha256="0" * 64,
            process_id=process_id,
            metrics={
                "recall": 0.75,
                "precision": 0.5,
                "roc_auc": 0.91,
                "confusion_matrix": [[9, 1], [1, 3]],
            },
        )
    )
    # What the state machine's MarkJobRunning and MarkJobCompleted write.
    with_machines.jobs_table.update_item(
        Key=with_machines.jobs_key(process_id),
        UpdateExpression="SET #status = :completed, model_id = :model, bucket_address = :address, "
        "finished_at = :now, updated_at = :now",
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues={
            ":completed": "completed",
            ":model": version,
            ":now": "2025-06-01T12:30:00Z",
            ":address": "s3://models/model/xgb_model.ubj",
        },
    )

    status, body = call(status_event(load_event, process_id))

    assert status == 200
    assert body["status"] == "completed"
    assert body["model_id"] == version
    assert body["bucket_address"] == "s3://models/model/xgb_model.ubj"
    assert body["metrics"] == {"recall": 0.75, "precision": 0.5, "roc_auc": 0.91}


def test_status_of_an_unknown_job_is_404(
    cloud: Cloud, call: Any, load_event: Callable[[str], dict[str, Any]]
) -> None:
    status, body = call(status_event(load_event, UNKNOWN_ID))

    assert status == 404
    assert UNKNOWN_ID in body["detail"]


@pytest.mark.parametrize("process_id", ["not-a-uuid", "3F2B8C1E-9A4D-4E6F-8B7A-1C2D3E4F5A6B", "..%2F..%2Fx"])
def test_status_of_a_malformed_id_is_422(
    cloud: Cloud, call: Any, load_event: Callable[[str], dict[str, Any]], process_id: str
) -> None:
    status, body = call(status_event(load_event, process_id))

    assert status == 422
    assert locs(body) == [["path", "process_id"]]


# ---------------------------------------------------------------- GET /jobs


def submit_jobs(call: Any, load_event: Callable[[str], dict[str, Any]], machines: list[str]) -> list[str]:
    ids = []
    for name in machines:
        status, body = call(train_event(load_event, indicator="status", machine_name=name))
        assert status == 200
        ids.append(body["process_id"])
    return ids


def all_pages(call: Any, load_event: Callable[[str], dict[str, Any]], **query: Any) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = []
    token = None
    for _ in range(50):
        status, body = call(jobs_event(load_event, **query, next_token=token))
        assert status == 200
        jobs.extend(body["jobs"])
        token = body["next_token"]
        if token is None:
            return jobs
    raise AssertionError("pagination did not end")


def test_jobs_lists_newest_first_in_pages(
    with_machines: Cloud,
    call: Any,
    use_clock: Any,
    distinct_instants: Any,
    load_event: Callable[[str], dict[str, Any]],
) -> None:
    use_clock(distinct_instants(5))
    ids = submit_jobs(call, load_event, [MACHINE, OTHER, MACHINE, OTHER, MACHINE])
    newest_first = list(reversed(ids))

    status, first = call(jobs_event(load_event, limit=2))
    assert status == 200
    assert [j["process_id"] for j in first["jobs"]] == newest_first[:2]
    assert first["next_token"]

    _, second = call(jobs_event(load_event, limit=2, next_token=first["next_token"]))
    assert [j["process_id"] for j in second["jobs"]] == newest_first[2:4]

    paged = all_pages(call, load_event, limit=2)
    assert [j["process_id"] for j in paged] == newest_first
    assert all(set(j) >= {"process_id", "indicator", "machine_name", "status", "created_at"} for j in paged)


def test_jobs_filters_by_machine_and_by_status(
    with_machines: Cloud,
    call: Any,
    use_clock: Any,
    distinct_instants: Any,
    load_event: Callable[[str], dict[str, Any]],
) -> None:
    use_clock(distinct_instants(5))
    ids = submit_jobs(call, load_event, [MACHINE, OTHER, MACHINE, OTHER, MACHINE])
    store = JobStore(with_machines.stack.tables["JobsTable"].name)
    for failed in (ids[1], ids[2]):
        store.mark_failed(failed, "boom", datetime(2025, 6, 2, tzinfo=UTC))

    by_machine = all_pages(call, load_event, machine_name=MACHINE, limit=2)
    assert [j["process_id"] for j in by_machine] == [ids[4], ids[2], ids[0]]

    failed = all_pages(call, load_event, status="failed", limit=1)
    assert [j["process_id"] for j in failed] == [ids[2], ids[1]]
    assert all(j["error_message"] == "boom" for j in failed)

    pending = all_pages(call, load_event, status="pending")
    assert [j["process_id"] for j in pending] == [ids[4], ids[3], ids[0]]

    both = all_pages(call, load_event, machine_name=OTHER, status="failed", limit=1)
    assert [j["process_id"] for j in both] == [ids[1]]


def test_jobs_is_empty_without_jobs(
    cloud: Cloud, call: Any, load_event: Callable[[str], dict[str, Any]]
) -> None:
    status, body = call(load_event("get_jobs"))

    assert status == 200
    assert body == {"jobs": [], "next_token": None}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"status": "exploded"}, "status"),
        ({"limit": "0"}, "limit"),
        ({"limit": "1000"}, "limit"),
        ({"machine_name": "../x"}, "machine_name"),
        ({"next_token": "!!not base64!!"}, "next_token"),
        ({"next_token": base64.urlsafe_b64encode(b"[1, 2]").decode()}, "next_token"),
    ],
)
def test_jobs_rejects_bad_query_parameters(
    cloud: Cloud, call: Any, load_event: Callable[[str], dict[str, Any]], query: dict[str, str], field: str
) -> None:
    status, body = call(jobs_event(load_event, **query))

    assert status == 422
    assert locs(body) == [["query", field]]


@pytest.mark.parametrize("key", [{}, {"process_id": UNKNOWN_ID}])
def test_jobs_rejects_a_forged_next_token(
    cloud: Cloud, call: Any, load_event: Callable[[str], dict[str, Any]], key: dict[str, str]
) -> None:
    token = base64.urlsafe_b64encode(json.dumps(key).encode()).decode()

    status, body = call(jobs_event(load_event, next_token=token))

    assert status == 422
    assert locs(body) == [["query", "next_token"]]


def test_jobs_created_within_one_second_are_listed_newest_first(
    with_machines: Cloud, call: Any, use_clock: Any, load_event: Callable[[str], dict[str, Any]]
) -> None:
    whole_second = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
    use_clock([whole_second, whole_second.replace(microsecond=500_000)])
    older, newer = submit_jobs(call, load_event, [MACHINE, MACHINE])

    _, body = call(load_event("get_jobs"))

    assert [j["process_id"] for j in body["jobs"]] == [newer, older]


def test_job_store_round_trips_a_job(cloud: Cloud) -> None:
    store = JobStore(cloud.stack.tables["JobsTable"].name)
    job = Job(
        process_id=UNKNOWN_ID,
        indicator=Indicator.HEALTH,
        machine_name=MACHINE,
        status=JobStatus.PENDING,
        created_at=datetime(2025, 6, 1, 12, 0, 0, 1, tzinfo=UTC),
        updated_at=datetime(2025, 6, 1, 12, 0, 0, 1, tzinfo=UTC),
    )
    store.create(job)

    assert store.get(UNKNOWN_ID) == job


# ---------------------------------------------------------------- POST /models/{machine}/{indicator}/promote

CALLER = "arn:aws:sts::123456789012:assumed-role/modelforge-client/ci-session"  # the canonical event's userArn
CHAMPION_VERSION, REJECTED_VERSION = "20250601T120000Z-0000000a", "20250602T120000Z-0000000b"


def promote_event(load_event: Callable[[str], dict[str, Any]], **body: Any) -> dict[str, Any]:
    event = train_event(load_event, **body)
    path = f"/models/{MACHINE}/status/promote"
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["routeKey"] = event["requestContext"]["routeKey"] = "POST /models/{machine_name}/{indicator}/promote"
    event["pathParameters"] = {"machine_name": MACHINE, "indicator": "status"}
    return event


@pytest.fixture
def rejected_challenger(cloud: Cloud) -> ModelRegistry:
    """A champion, and a challenger the gate rejected; both artifacts stored with their sha256."""
    registry = ModelRegistry(cloud.stack.tables["ModelsTable"].name)
    name = ModelName(MACHINE, Indicator.STATUS)
    bucket = cloud.environment["MODELS_BUCKET_NAME"]
    for version in (CHAMPION_VERSION, REJECTED_VERSION):
        body = f"model {version}".encode()
        cloud.s3.put_object(Bucket=bucket, Key=f"model/{version}.ubj", Body=body)
        registry.put_version(ModelVersion(
            model_name=name, version=version, machine_name=MACHINE, indicator=Indicator.STATUS,
            artifact_uri=f"s3://{bucket}/model/{version}.ubj", artifact_sha256=hashlib.sha256(body).hexdigest()))
    now = datetime(2025, 6, 2, tzinfo=UTC)
    registry.promote(name, CHAMPION_VERSION, reason="first model", by="gate:p-1", now=now)
    registry.reject(name, REJECTED_VERSION, reason="recall 0.41 below the floor 0.5", by="gate:p-2", now=now)
    return registry


def test_promoting_a_rejected_version_without_override_is_409_saying_how(
    rejected_challenger: ModelRegistry, call: Any, load_event: Callable[[str], dict[str, Any]]
) -> None:
    status, body = call(promote_event(load_event, version=REJECTED_VERSION, reason="bring it back"))

    assert status == 409
    assert "rejected" in body["detail"] and '"override": true' in body["detail"]
    pointer = rejected_challenger.champion_pointer(ModelName(MACHINE, Indicator.STATUS))
    assert pointer is not None and pointer.champion_version == CHAMPION_VERSION


def test_an_override_without_a_real_reason_is_422_naming_the_reason(
    rejected_challenger: ModelRegistry, call: Any, load_event: Callable[[str], dict[str, Any]]
) -> None:
    status, body = call(promote_event(load_event, version=REJECTED_VERSION, reason="because", override=True))

    assert status == 422
    assert locs(body) == [["body", "reason"]]


def test_an_override_promotes_and_is_shown_with_who_and_why(
    rejected_challenger: ModelRegistry, call: Any, load_event: Callable[[str], dict[str, Any]]
) -> None:
    reason = "floors too strict for this pump, approved by the reliability team"
    status, body = call(promote_event(load_event, version=REJECTED_VERSION, reason=reason, override=True))
    assert status == 200, body
    assert (body["champion_version"], body["previous_version"]) == (REJECTED_VERSION, CHAMPION_VERSION)

    event = status_event(load_event, UNKNOWN_ID)
    event["rawPath"] = event["requestContext"]["http"]["path"] = f"/models/{MACHINE}/status"
    event["routeKey"] = event["requestContext"]["routeKey"] = "GET /models/{machine_name}/{indicator}"
    event["pathParameters"] = {"machine_name": MACHINE, "indicator": "status"}
    status, shown = call(event)

    assert status == 200
    champion = shown["champion"]
    assert (champion["version"], champion["override"], champion["decided_by"], champion["status_reason"]) == (
        REJECTED_VERSION, True, CALLER, reason)
    assert {k: shown["history"][0][k] for k in ("to_version", "promoted_by", "reason", "override",
                                                 "overridden_status")} == {
        "to_version": REJECTED_VERSION, "promoted_by": CALLER, "reason": reason, "override": True,
        "overridden_status": "rejected"}

    # Back to the former champion: a rollback, no override needed.
    status, body = call(promote_event(load_event, version=CHAMPION_VERSION, reason="rollback: false alarms"))
    assert status == 200, body
    assert body["champion_version"] == CHAMPION_VERSION


# ---------------------------------------------------------------- GET /machines, /health, unknown routes


def test_machines_lists_the_machines_with_a_manifest(
    cloud: Cloud, call: Any, load_event: Callable[[str], dict[str, Any]]
) -> None:
    second = cloud.write_manifest(
        "PUMP-B", datetime(2025, 2, 1, tzinfo=UTC), datetime(2025, 2, 28, tzinfo=UTC)
    )
    first = cloud.write_manifest(
        "PUMP-A", datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 1, 31, tzinfo=UTC)
    )
    prefix = cloud.processed_prefix
    bucket = cloud.environment["DATA_BUCKET_NAME"]
    # A machine folder without a manifest (a load in progress) and a stray object are not machines.
    cloud.s3.put_object(
        Bucket=bucket, Key=f"{prefix}/machine_name=PUMP-C/month=2025-01/part.parquet", Body=b"x"
    )
    cloud.s3.put_object(Bucket=bucket, Key=f"{prefix}/README.txt", Body=b"x")

    status, body = call(load_event("get_machines"))

    assert status == 200
    assert [m["machine_name"] for m in body["machines"]] == ["PUMP-A", "PUMP-B"]
    assert [MachineSummary.model_validate(m) for m in body["machines"]] == [first, second]


def test_machines_is_empty_without_data(
    cloud: Cloud, call: Any, load_event: Callable[[str], dict[str, Any]]
) -> None:
    assert call(load_event("get_machines")) == (200, {"machines": []})


def test_health(cloud: Cloud, call: Any, load_event: Callable[[str], dict[str, Any]]) -> None:
    assert call(load_event("get_health")) == (200, {"status": "ok", "version": modelforge.__version__})


def test_an_unknown_route_is_404(
    cloud: Cloud, call: Any, load_event: Callable[[str], dict[str, Any]]
) -> None:
    event = load_event("get_health")
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/admin"
    event["routeKey"] = event["requestContext"]["routeKey"] = "GET /admin"

    status, _ = call(event)

    assert status == 404


def test_a_missing_setting_fails_loudly_with_its_name(
    cloud: Cloud, call: Any, monkeypatch: pytest.MonkeyPatch, load_event: Callable[[str], dict[str, Any]]
) -> None:
    from modelforge.errors import SettingsError

    monkeypatch.delenv("STATE_MACHINE_ARN")
    with pytest.raises(SettingsError, match="STATE_MACHINE_ARN"):
        call(load_event("get_health"))


# ---------------------------------------------------------------- the OpenAPI document


def test_openapi_document_lists_the_routes_and_the_train_request(
    cloud: Cloud, call: Any, load_event: Callable[[str], dict[str, Any]]
) -> None:
    openapi_spec_validator = pytest.importorskip("openapi_spec_validator")
    event = load_event("get_health")
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/openapi.json"
    event["routeKey"] = event["requestContext"]["routeKey"] = "GET /openapi.json"

    status, document = call(event)

    assert status == 200
    openapi_spec_validator.validate(document)
    assert document["openapi"].startswith("3.")
    documented = {
        (method.upper(), path) for path, operations in document["paths"].items() for method in operations
    }
    routes = set(cloud.stack.functions["ApiFunction"].http_routes)
    assert documented == {(m, p) for m, p in routes if p not in ("/openapi.json", "/swagger")}
    train_body = document["paths"]["/train"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert train_body["$ref"].endswith("/TrainRequest")
    schema = document["components"]["schemas"]["TrainRequest"]
    assert set(schema["properties"]) == {"indicator", "machine_name", "start_date", "end_date", "machine_names",
                                         "failure_events", "options", "compute"}
    assert set(schema["required"]) == {"indicator", "machine_name"}


def test_swagger_ui_is_served(
    cloud: Cloud, lambda_context: Any, load_event: Callable[[str], dict[str, Any]]
) -> None:
    event = load_event("get_health")
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/swagger"
    event["routeKey"] = event["requestContext"]["routeKey"] = "GET /swagger"

    response = api.lambda_handler(event, lambda_context)

    assert int(response["statusCode"]) == 200
    assert "swagger" in response["body"].lower()
