"""What EventBridge (a ``Schedule`` event's rule) and EventBridge Scheduler (``ScheduleV2``) do for a scheduled
function in AWS. Nothing fires them locally (moto stores rules and schedules but never runs them), so the
local cloud does: on demand (``python -m localcloud fire-schedule``, ``POST /_local/schedules/<name>/fire``)
and, when asked (``--run-schedules``), on each ``rate(...)`` schedule's own period.

A delivery is what the service would send the function: the target's constant ``Input`` when the template
sets one (the drift schedule's ``{"source": "schedule"}``), else the service's scheduled event (``source``
``aws.events`` or ``aws.scheduler``, ``detail-type`` ``Scheduled Event``, ``resources`` the rule's or the
schedule's ARN). It goes through the same local Lambda runtime as every other invocation. Not emulated:
retries, the function's EventInvokeConfig and the dead-letter queue (an invocation runs once; a failure is
reported to the caller, or logged for the ticker), and ``cron(...)`` timing (fire those by hand).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from localcloud.runtime import InvocationResult
from localcloud.template import ScheduleSpec, find_schedule

logger = logging.getLogger("localcloud.schedules")

_RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def rate_seconds(expression: str) -> float | None:
    """The period of a ``rate(...)`` expression in seconds; None for ``cron(...)``."""
    found = _RATE.match(expression.strip())
    if not found:
        if expression.strip().startswith("cron("):
            return None
        raise ValueError(f"not a schedule expression: {expression!r}")
    value, unit = int(found.group(1)), found.group(2).rstrip("s")
    if value < 1 or (value == 1) != (not found.group(2).endswith("s")):
        raise ValueError(f"{expression!r}: EventBridge wants rate(1 unit) or rate(N units), N > 1")
    return float(value * _UNIT_SECONDS[unit])


def scheduled_event(spec: ScheduleSpec, account_id: str, region: str, now: datetime | None = None) -> bytes:
    """What the service delivers to the function for one firing of ``spec``."""
    if spec.input is not None:
        return spec.input.encode()
    when = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    event = {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event",
        "source": "aws.events" if spec.kind == "Schedule" else "aws.scheduler",
        "account": account_id, "time": when, "region": region, "resources": [spec.arn],
        # EventBridge sends an empty object; Scheduler's default notification sends it as a JSON string.
        "detail": {} if spec.kind == "Schedule" else "{}",
    }
    return json.dumps(event).encode()


@dataclass(frozen=True)
class Firing:
    schedule: ScheduleSpec
    event: bytes
    result: InvocationResult | None  # None: delivered asynchronously, not waited for

    def summary(self) -> dict[str, Any]:
        """The JSON answer of the fire command and route."""
        answer: dict[str, Any] = {**describe(self.schedule), "event": json.loads(self.event)}
        if self.result is None:
            answer["status"] = "accepted"
            return answer
        body = _json_or_text(self.result.payload)
        if self.result.function_error:
            answer |= {"status": "failed", "function_error": self.result.function_error, "error": body}
        else:
            answer |= {"status": "succeeded", "result": body}
        return answer


def describe(spec: ScheduleSpec) -> dict[str, Any]:
    return {"schedule": spec.logical_id, "kind": spec.kind, "name": spec.name, "arn": spec.arn,
            "expression": spec.expression, "enabled": spec.enabled, "function": spec.function_name,
            "function_logical_id": spec.function_logical_id}


class LocalSchedules:
    def __init__(self, schedules: Mapping[str, ScheduleSpec], invoke: Callable[[str, bytes], InvocationResult],
                 account_id: str, region: str, *, run: bool = False,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._schedules = dict(schedules)
        self._invoke = invoke
        self._account_id, self._region = account_id, region
        self._run = run
        self._clock = clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._tick, daemon=True, name="schedules")

    @property
    def running(self) -> bool:
        """Whether the schedules also fire on their own period (``--run-schedules``)."""
        return self._run

    def list(self) -> list[dict[str, Any]]:
        return [{**describe(spec), "period_seconds": rate_seconds(spec.expression)}
                for spec in self._schedules.values()]

    def find(self, name: str) -> ScheduleSpec:
        return find_schedule(self._schedules, name)

    def fire(self, name: str, *, wait: bool = True) -> Firing:
        """Delivers one firing of the schedule now, as its service would (disabled ones too: a manual run)."""
        spec = self.find(name)
        event = scheduled_event(spec, self._account_id, self._region)
        if not wait:
            # EventBridge and Scheduler invoke their Lambda targets asynchronously.
            threading.Thread(target=self._deliver, args=(spec, event), daemon=True).start()
            return Firing(spec, event, None)
        return Firing(spec, event, self._invoke(spec.function_name, event))

    def start(self) -> None:
        if self._run and self._schedules:
            for spec in self._schedules.values():
                if rate_seconds(spec.expression) is None:
                    logger.warning("%s (%s) fires only by hand locally: cron schedules are not run",
                                   spec.logical_id, spec.expression)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _deliver(self, spec: ScheduleSpec, event: bytes) -> None:
        try:
            result = self._invoke(spec.function_name, event)
        except Exception:  # the cloud may be stopping
            logger.exception("%s: the delivery to %s failed", spec.logical_id, spec.function_name)
            return
        if result.function_error:
            logger.error("%s: %s failed: %s", spec.logical_id, spec.function_name, result.payload.decode()[:4000])

    def _tick(self) -> None:
        # As in AWS, a rate schedule first fires one period after it was created.
        started = self._clock()
        due = {spec.logical_id: started + period for spec in self._schedules.values()
               if spec.enabled and (period := rate_seconds(spec.expression)) is not None}
        while due and not self._stop.wait(min(1.0, max(0.0, min(due.values()) - self._clock()))):
            now = self._clock()
            for logical_id, at in list(due.items()):
                if now >= at:
                    spec = self._schedules[logical_id]
                    due[logical_id] = at + float(rate_seconds(spec.expression) or 0)
                    self.fire(logical_id, wait=False)


def _json_or_text(payload: bytes) -> Any:
    try:
        return json.loads(payload)
    except ValueError:
        return payload.decode(errors="replace")
