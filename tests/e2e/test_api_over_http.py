"""A user's session: discover machines, train, poll, fetch the model, inspect the execution with the AWS CLI."""

from __future__ import annotations

import hashlib
import json

from tests.conftest import wait_for_job
from tests.e2e.conftest import Stack


def test_train_a_model_through_the_api(stack: Stack) -> None:
    http = stack.session
    assert http.get(f"{stack.api_url}/health", timeout=30).json()["status"] == "ok"

    machines = http.get(f"{stack.api_url}/machines", timeout=30).json()["machines"]
    assert machines, "the stack has no machine with processed data"
    machine = machines[0]["machine_name"]

    submitted = http.post(f"{stack.api_url}/train", json={"indicator": "status", "machine_name": machine},
                          timeout=30)
    assert submitted.status_code == 200, submitted.text
    process_id = submitted.json()["process_id"]

    job = wait_for_job(stack.api_url, process_id, session=http, timeout=300)
    assert job["status"] == "completed", job["error_message"]
    assert job["machine_name"] == machine

    # The model is where the job says, and it is the object the registry vouches for.
    bucket, key = job["bucket_address"].removeprefix("s3://").split("/", 1)
    target = f"/tmp/{process_id}.ubj"
    stack.aws_cli("s3api", "get-object", "--bucket", bucket, "--key", key, target)
    with open(target, "rb") as model:
        digest = hashlib.sha256(model.read()).hexdigest()
    item = json.loads(stack.aws_cli(
        "dynamodb", "get-item", "--table-name", stack.outputs["ModelsTableName"],
        "--key", json.dumps({"model_name": {"S": f"{machine}#status"}, "version": {"S": job["model_id"]}})))
    assert item["Item"]["artifact_sha256"]["S"] == digest

    execution = json.loads(stack.aws_cli("stepfunctions", "describe-execution", "--execution-arn",
                                         job["execution_arn"]))
    assert execution["status"] == "SUCCEEDED"
    history = json.loads(stack.aws_cli("stepfunctions", "get-execution-history", "--execution-arn",
                                       job["execution_arn"]))
    entered = [e["stateEnteredEventDetails"]["name"] for e in history["events"] if "stateEnteredEventDetails" in e]
    assert entered[:5] == ["MarkJobRunning", "ChooseCompute", "TrainModel", "GateChallenger", "MarkJobCompleted"]
    assert job["gate_decision"] in ("promoted", "rejected") and job["gate_reason"]


def test_openapi_document_describes_the_api(stack: Stack) -> None:
    document = stack.session.get(f"{stack.api_url}/openapi.json", timeout=30).json()
    assert document["openapi"].startswith("3.")
    assert {"/train", "/status/{process_id}", "/jobs", "/machines", "/health"} <= document["paths"].keys()
    assert "TrainRequest" in document["components"]["schemas"]


def test_unknown_route_is_404(stack: Stack) -> None:
    assert stack.session.get(f"{stack.api_url}/no-such-route", timeout=30).status_code in (403, 404)
