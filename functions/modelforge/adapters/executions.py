"""Starting training executions. The execution name is the job's process_id, so a retried start can never
run the same job twice (Step Functions refuses a second execution with the same name)."""

from __future__ import annotations

import json
from typing import Any

from modelforge.adapters.aws import client


def execution_arn(state_machine_arn: str, name: str) -> str:
    # arn:<partition>:states:<region>:<account>:stateMachine:<sm> -> ...:execution:<sm>:<name>
    return state_machine_arn.replace(":stateMachine:", ":execution:", 1) + f":{name}"


class ExecutionStarter:
    def __init__(self, state_machine_arn: str, sfn: Any | None = None) -> None:
        self._state_machine_arn = state_machine_arn
        self._sfn = sfn if sfn is not None else client("stepfunctions")

    def start(self, name: str, payload: dict[str, Any]) -> str:
        response = self._sfn.start_execution(stateMachineArn=self._state_machine_arn, name=name,
                                             input=json.dumps(payload))
        return str(response["executionArn"])

    def arn_for(self, name: str) -> str:
        return execution_arn(self._state_machine_arn, name)
