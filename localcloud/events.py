"""What EventBridge does for Step Functions in AWS: when an execution changes status, an "Step Functions
Execution Status Change" event goes to every rule whose pattern matches. moto emits no such events, so the
local cloud watches the executions and delivers them to the functions whose template rules match."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from localcloud.template import FunctionSpec

POLL_SECONDS = 0.5


def matches(pattern: Any, event: Any) -> bool:
    """The subset of EventBridge pattern matching the template uses: lists of allowed values, nested objects."""
    if isinstance(pattern, dict):
        return isinstance(event, dict) and all(k in event and matches(v, event[k]) for k, v in pattern.items())
    if isinstance(pattern, list):
        return event in pattern
    return bool(pattern == event)


class ExecutionStatusEvents:
    def __init__(self, sfn: Any, state_machine_arns: list[str], functions: list[FunctionSpec],
                 deliver: Callable[[str, bytes], object], account_id: str, region: str) -> None:
        self._sfn = sfn
        self._arns = state_machine_arns
        self._targets = [(spec, pattern) for spec in functions for pattern in spec.event_patterns]
        self._deliver = deliver
        self._account_id, self._region = account_id, region
        self._seen: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="eventbridge")

    def start(self) -> None:
        if self._targets:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            try:
                self.poll_once()
            except Exception:  # the server may be stopping; the next poll tries again
                continue

    def poll_once(self) -> None:
        for arn in self._arns:
            paginator = self._sfn.get_paginator("list_executions")
            for page in paginator.paginate(stateMachineArn=arn):
                for execution in page["executions"]:
                    status = execution["status"]
                    if self._seen.get(execution["executionArn"]) == status:
                        continue
                    self._seen[execution["executionArn"]] = status
                    self._publish(execution["executionArn"], arn)

    def _publish(self, execution_arn: str, state_machine_arn: str) -> None:
        described = self._sfn.describe_execution(executionArn=execution_arn)
        detail = {
            "executionArn": execution_arn, "stateMachineArn": state_machine_arn, "name": described["name"],
            "status": described["status"], "startDate": _millis(described.get("startDate")),
            "stopDate": _millis(described.get("stopDate")), "input": described.get("input"),
            "output": described.get("output"), "error": described.get("error"), "cause": described.get("cause"),
        }
        event = {
            "version": "0", "id": str(uuid.uuid4()), "detail-type": "Step Functions Execution Status Change",
            "source": "aws.states", "account": self._account_id, "region": self._region,
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "resources": [execution_arn],
            "detail": detail,
        }
        for spec, pattern in self._targets:
            if matches(pattern, event):
                # EventBridge invokes its targets asynchronously.
                threading.Thread(target=self._deliver, args=(spec.name, json.dumps(event).encode()),
                                 daemon=True).start()


def _millis(value: Any) -> int | None:
    return int(value.timestamp() * 1000) if isinstance(value, datetime) else None
