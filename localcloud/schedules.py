"""What EventBridge (a ``Schedule`` event's rule) and EventBridge Scheduler (``ScheduleV2``) do for a scheduled
function in AWS. Nothing fires them locally (moto stores rules and schedules but never runs them), so the
local cloud does: on demand (``python -m localcloud fire-schedule``, ``POST /_local/schedules/<name>/fire``)
and, when asked (``--run-schedules``), by the clock: each ``rate(...)`` schedule on its own period, each
``cron(...)`` one at the minutes it names (in its ``ScheduleExpressionTimezone``; the fields EventBridge
documents, without ``L``, ``W`` and ``#``). An ``AWS::Scheduler::Schedule`` resource aimed at a state machine
(the retraining's, ``RetrainSchedule``) starts an execution with its target's ``Input``, as Scheduler does.

A delivery is what the service would send the function: the target's constant ``Input`` when the template
sets one (the drift schedule's ``{"source": "schedule"}``), else the service's scheduled event (``source``
``aws.events`` or ``aws.scheduler``, ``detail-type`` ``Scheduled Event``, ``resources`` the rule's or the
schedule's ARN). It goes through the same local Lambda runtime as every other invocation. Not emulated:
retries, the function's EventInvokeConfig and the dead-letter queue (an invocation runs once; a failure is
reported to the caller, or logged for the ticker), and Scheduler's flexible time window (a firing is at once).
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
from zoneinfo import ZoneInfo

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
            "function_logical_id": spec.function_logical_id, "target_kind": spec.target_kind,
            "timezone": spec.timezone}


class LocalSchedules:
    def __init__(self, schedules: Mapping[str, ScheduleSpec], invoke: Callable[[str, bytes], InvocationResult],
                 account_id: str, region: str, *, run: bool = False,
                 clock: Callable[[], float] = time.monotonic,
                 start_execution: Callable[[str, bytes], str] | None = None,
                 wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._schedules = dict(schedules)
        self._invoke = invoke
        self._start_execution = start_execution
        self._wall_clock = wall_clock
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
        if spec.target_kind == "state_machine":
            return Firing(spec, event, self._start(spec, event))
        if not wait:
            # EventBridge and Scheduler invoke their Lambda targets asynchronously.
            threading.Thread(target=self._deliver, args=(spec, event), daemon=True).start()
            return Firing(spec, event, None)
        return Firing(spec, event, self._invoke(spec.function_name, event))

    def _start(self, spec: ScheduleSpec, event: bytes) -> InvocationResult:
        """Starts the state machine target's execution (quick, so always waited for)."""
        if self._start_execution is None or spec.target_arn is None:
            raise RuntimeError(f"{spec.logical_id}: no way to start state machine executions was given")
        try:
            arn = self._start_execution(spec.target_arn, event)
        except Exception as error:  # the answer says why, as a failed delivery would go to the DLQ
            return InvocationResult(json.dumps({"errorType": type(error).__name__, "errorMessage": str(error)})
                                    .encode(), function_error="Unhandled")
        return InvocationResult(json.dumps({"executionArn": arn}).encode())

    def start(self) -> None:
        if self._run and self._schedules:
            for spec in self._schedules.values():
                if rate_seconds(spec.expression) is None:
                    cron_matches(spec.expression, datetime.now(UTC))  # one it cannot run fails now, by name
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
        crons = [spec for spec in self._schedules.values() if spec.enabled and rate_seconds(spec.expression) is None]
        minute = _minute(self._wall_clock())  # a cron schedule fires at the start of a minute it names, once
        while (due or crons) and not self._stop.wait(
                min([1.0, *(max(0.0, at - self._clock()) for at in due.values())])):
            now = self._clock()
            for logical_id, at in list(due.items()):
                if now >= at:
                    spec = self._schedules[logical_id]
                    due[logical_id] = at + float(rate_seconds(spec.expression) or 0)
                    self._fire_safely(logical_id)
            if crons and (current := _minute(self._wall_clock())) != minute:
                minute = current
                for spec in crons:
                    if cron_matches(spec.expression, current.astimezone(ZoneInfo(spec.timezone))):
                        self._fire_safely(spec.logical_id)

    def _fire_safely(self, logical_id: str) -> None:
        try:
            firing = self.fire(logical_id, wait=False)
        except Exception:  # the cloud may be stopping
            logger.exception("%s: the firing failed", logical_id)
            return
        if firing.result is not None and firing.result.function_error:
            logger.error("%s: %s", logical_id, firing.result.payload.decode()[:4000])


def _json_or_text(payload: bytes) -> Any:
    try:
        return json.loads(payload)
    except ValueError:
        return payload.decode(errors="replace")


def _minute(when: datetime) -> datetime:
    return when.astimezone(UTC).replace(second=0, microsecond=0)


_CRON = re.compile(r"^cron\((.+)\)$")
_NAMES = {"month": {m: i for i, m in enumerate(
              ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], start=1)},
          "weekday": {d: i for i, d in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"], start=1)}}
# EventBridge's cron fields: minutes, hours, day of month, month, day of week (1 = Sunday), year.
_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day", 1, 31), ("month", 1, 12), ("weekday", 1, 7),
           ("year", 1970, 2199))


def cron_matches(expression: str, when: datetime) -> bool:
    """Whether ``when`` (in the schedule's time zone) is a minute ``expression`` names. ValueError for what the
    local cloud cannot run (``L``, ``W``, ``#``) or a malformed expression."""
    found = _CRON.match(expression.strip())
    parts = found.group(1).split() if found else []
    if len(parts) != len(_FIELDS):
        raise ValueError(f"not a cron expression of six fields: {expression!r}")
    values = {"minute": when.minute, "hour": when.hour, "day": when.day, "month": when.month,
              "weekday": when.isoweekday() % 7 + 1, "year": when.year}
    return all(_field_matches(part, values[name], name, low, high)
               for part, (name, low, high) in zip(parts, _FIELDS, strict=True))


def _field_matches(part: str, value: int, name: str, low: int, high: int) -> bool:
    if part in ("*", "?"):
        return True
    for piece in part.split(","):
        base, _, step = piece.partition("/")
        if base == "*":
            start, end = low, high
        elif "-" in base:
            start, end = (_cron_number(b, name) for b in base.split("-", 1))
        else:
            start = _cron_number(base, name)
            end = high if step else start
        if start <= value <= end and (value - start) % int(step or 1) == 0:
            return True
    return False


def _cron_number(text: str, name: str) -> int:
    names = _NAMES.get(name, {})
    if text.upper() in names:
        return names[text.upper()]
    if any(mark in text.upper() for mark in ("L", "W", "#")):
        raise ValueError(f"cron {name} {text!r}: L, W and # are not run locally (fire the schedule by hand)")
    return int(text)
