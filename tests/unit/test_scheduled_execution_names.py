"""A schedule aimed at a state machine starts executions with fresh names, as EventBridge Scheduler's do.

Scheduler sends StartExecution without a name and Step Functions makes one up; moto 5.2.5 keeps ``None``. The
retraining run's id is its execution's name, so without a name of our own every scheduled run would be
``None`` and the second firing would collide with the first."""

from __future__ import annotations

import json
import uuid
from typing import Any

import boto3
from moto import mock_aws

from localcloud.cloud import LocalCloud

PASS_MACHINE = {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}


def test_two_firings_start_two_executions_with_uuid_names() -> None:
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):  # as the local cloud runs it
        client = boto3.client("stepfunctions", region_name="us-east-1")
        arn = client.create_state_machine(name="retrain", definition=json.dumps(PASS_MACHINE),
                                          roleArn="arn:aws:iam::123456789012:role/sfn")["stateMachineArn"]
        cloud: Any = LocalCloud.__new__(LocalCloud)  # only its Scheduler bridge, no stack
        cloud.client = lambda service: client

        first = cloud._start_scheduled_execution(arn, b'{"all": true}')
        second = cloud._start_scheduled_execution(arn, b'{"all": true}')

        names = [client.describe_execution(executionArn=a)["name"] for a in (first, second)]
        assert first != second and len(set(names)) == 2
        assert all(str(uuid.UUID(name)) == name for name in names)
        assert json.loads(client.describe_execution(executionArn=first)["input"]) == {"all": True}
