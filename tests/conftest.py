"""Helpers shared by every tier."""

from __future__ import annotations

import socket
import time
from typing import Any

import requests

TERMINAL = ("completed", "failed")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_job(api_url: str, process_id: str, *, timeout: float = 180, session: Any = requests,
                 seen: list[str] | None = None) -> dict[str, Any]:
    """Polls GET /status until the job is terminal; records every status seen in ``seen``."""
    deadline = time.monotonic() + timeout
    while True:
        body = session.get(f"{api_url}/status/{process_id}", timeout=30).json()
        if seen is not None and (not seen or seen[-1] != body["status"]):
            seen.append(body["status"])
        if body["status"] in TERMINAL:
            return dict(body)
        if time.monotonic() > deadline:
            raise AssertionError(f"job {process_id} still {body['status']} after {timeout} s")
        time.sleep(0.2)
