"""Training handlers that fail the way real ones can, swapped in for TrainingFunction by the fault tests."""

from __future__ import annotations

import os
import time
from typing import Any


def crash(event: dict[str, Any], context: Any) -> dict[str, Any]:
    os._exit(3)  # a segfaulting native library looks the same from outside: the process is gone


def exhaust_memory(event: dict[str, Any], context: Any) -> dict[str, Any]:
    hoard = []
    while True:
        hoard.append(bytearray(64 * 1024 * 1024))
        time.sleep(0.01)


def hang(event: dict[str, Any], context: Any) -> dict[str, Any]:
    time.sleep(3600)
    return {}


def slow(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Takes a few seconds and then fails: moto honours StopExecution when the running task returns."""
    time.sleep(4)
    raise RuntimeError("slow handler finished")


def chosen(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Fails the way the file at $FAULT_FILE names ("crash", "exhaust_memory" or "hang"), read per invocation:
    one cloud serves every fault (tests/integration/test_faults.py)."""
    with open(os.environ["FAULT_FILE"]) as named:
        fault = named.read().strip()
    handler = {"crash": crash, "exhaust_memory": exhaust_memory, "hang": hang}[fault]
    return handler(event, context)
