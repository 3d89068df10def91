"""Fixtures shared by the unit tests: the canonical events in tests/events, a Lambda context, the local stack
resolved from template.yaml, and a controllable clock for the API's use cases."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from localcloud.template import LocalStack, resolve_stack

EVENTS_DIR = Path(__file__).resolve().parent.parent / "events"


def read_event(name: str) -> dict[str, Any]:
    """A fresh copy of tests/events/<name>.json (the tests mutate their copy)."""
    return copy.deepcopy(json.loads((EVENTS_DIR / f"{name}.json").read_text()))


@pytest.fixture
def load_event() -> Callable[[str], dict[str, Any]]:
    return read_event


@dataclass
class FakeLambdaContext:
    """The attributes of a Lambda context that handlers and Powertools read."""

    function_name: str = "modelforge-local-ApiFunction"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:modelforge-local-ApiFunction"
    aws_request_id: str = "52fdfc07-2182-454f-963f-5f0f9a621d72"
    function_version: str = "$LATEST"
    log_group_name: str = "/aws/lambda/modelforge-local-ApiFunction"
    log_stream_name: str = "2025/06/01/[$LATEST]0123456789abcdef"

    def get_remaining_time_in_millis(self) -> int:
        return 29_000


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


@pytest.fixture(scope="session")
def local_stack() -> LocalStack:
    """template.yaml resolved the way CloudFormation would for one local stack (never mutate it)."""
    return resolve_stack()


class SteppingClock:
    """Replaces ``datetime`` in modelforge.logic.clock: each ``now()`` returns the next planned instant."""

    def __init__(self, instants: list[datetime]) -> None:
        self.instants = list(instants)
        self.calls = 0

    def now(self, tz: Any = None) -> datetime:
        instant = self.instants[min(self.calls, len(self.instants) - 1)]
        self.calls += 1
        return instant.astimezone(tz) if tz is not None else instant


@pytest.fixture
def use_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[list[datetime]], SteppingClock]]:
    """``use_clock([t0, t1, ...])``: modelforge.logic.clock.utc_now() returns t0, t1, ... then the last."""
    import modelforge.logic.clock as clock_module

    def install(instants: list[datetime]) -> SteppingClock:
        clock = SteppingClock(instants)
        monkeypatch.setattr(clock_module, "datetime", clock)
        return clock

    yield install


def _distinct_instants(count: int) -> list[datetime]:
    base = datetime(2025, 6, 1, 12, 0, 0, 250_000, tzinfo=UTC)
    return [base + timedelta(seconds=i) for i in range(count)]


@pytest.fixture
def distinct_instants() -> Callable[[int], list[datetime]]:
    """``distinct_instants(n)``: n increasing instants a second apart, never on a whole second."""
    return _distinct_instants
