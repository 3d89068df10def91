"""Tiny Lambda handlers that tests/unit/test_runtime.py runs in localcloud.worker processes."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

CHUNK_BYTES = 16 * 1024 * 1024
MAX_CHUNKS = 128  # 2 GiB at most, so a runtime that never enforces its limit cannot take the machine down


def echo(event: Any, context: Any) -> dict[str, Any]:
    print(f"echo handler got {event!r}")  # must reach the function's log, not the runtime's protocol
    return {
        "event": event,
        "pid": os.getpid(),
        "function_name": context.function_name,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "request_id": context.aws_request_id,
        "env": {name: os.environ.get(name) for name in event.get("env", [])}
        if isinstance(event, dict)
        else {},
    }


def raise_value_error(event: Any, context: Any) -> None:
    raise ValueError(f"the handler rejected its input (pid {os.getpid()})")


def exit_hard(event: Any, context: Any) -> None:
    sys.stdout.flush()
    os._exit(3)


def sleep(event: Any, context: Any) -> dict[str, Any]:
    time.sleep(float(event.get("seconds", 0)))
    return {"pid": os.getpid()}


def allocate(event: Any, context: Any) -> dict[str, Any]:
    chunks = []
    for _ in range(MAX_CHUNKS):
        chunks.append(b"\x01" * CHUNK_BYTES)  # filled, so every page is resident
        time.sleep(0.001)
    return {"allocated_mb": len(chunks) * CHUNK_BYTES // (1024 * 1024)}


def rendezvous(event: Any, context: Any) -> dict[str, Any]:
    """Marks itself present in event["dir"], waits (at most event["wait_s"]) until event["expected"] markers
    are there, and returns the most it saw. With event["leave"], removes its marker before returning, so the
    markers count the invocations running at the same time."""
    directory = Path(event["dir"])
    marker = directory / f"{os.getpid()}-{context.aws_request_id}"
    marker.touch()
    deadline = time.monotonic() + float(event["wait_s"])
    most = 0
    while True:
        most = max(most, len(list(directory.iterdir())))
        if most >= event["expected"] or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    if event.get("leave"):
        marker.unlink()
    return {"pid": os.getpid(), "seen": most}
