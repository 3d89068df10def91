"""Starting training executions. The execution name is the job's process_id, so a retried start can never
run the same job twice (Step Functions refuses a second execution with the same name)."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from modelforge.adapters.aws import client
from modelforge.observability import logger

# The history events that say an execution entered a state (Step Functions' HistoryEvent types).
STATE_ENTERED = "StateEntered"


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


class ExecutionHistory:
    """Which states an execution entered, in order, from GetExecutionHistory: a job's progress for GET /status.
    A training execution has a few dozen events, so one page (the newest first, up to 1000) holds them all."""

    def __init__(self, sfn: Any | None = None) -> None:
        self._sfn = sfn if sfn is not None else client("stepfunctions")

    def steps(self, execution_arn: str) -> list[str] | None:
        """None when the history cannot be read (the execution does not exist yet, or access is denied): the
        job's status is still answered without it."""
        try:
            events = self._sfn.get_execution_history(executionArn=execution_arn, maxResults=1000,
                                                     reverseOrder=True, includeExecutionData=False)["events"]
        except ClientError as error:
            logger.info("execution history not read", extra={"execution_arn": execution_arn,
                                                              "error_code": error.response["Error"]["Code"]})
            return None
        entered = [event for event in events if str(event.get("type", "")).endswith(STATE_ENTERED)]
        entered.sort(key=lambda event: int(event.get("id", 0)))
        return [str(event["stateEnteredEventDetails"]["name"]) for event in entered
                if "stateEnteredEventDetails" in event]
