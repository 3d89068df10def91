"""Ready means ready: the local cloud's ``GET /health`` answers 503 ``{"status": "starting"}`` until the stack
exists and the demo data is loaded, then the API function's own answer (``{"status": "ok", ...}``, as
deployed). ``wait_ready`` (``python -m localcloud wait-ready``) polls it, so a script can start the cloud in
the background and train at once. The deployed ``/health`` is the API function's alone and never says
"starting": the local HTTP front answers in its place while the cloud is starting."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from typing import Any


class Readiness:
    def __init__(self, ready: bool = False, stage: str = "starting the stack") -> None:
        self._ready = threading.Event()
        self.stage = stage
        if ready:
            self._ready.set()

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def starting(self, stage: str) -> None:
        """What the cloud is doing meanwhile (``/health`` says so)."""
        self.stage = stage

    def mark_ready(self) -> None:
        self.stage = "ready"
        self._ready.set()

    def answer(self) -> dict[str, Any]:
        return {"status": "starting", "detail": self.stage}


def wait_ready(api_url: str, *, timeout: float = 300, interval: float = 0.5) -> dict[str, Any]:
    """Polls ``GET <api_url>/health`` until it answers 200 ``{"status": "ok"}``; its body. A refused connection
    (the front is not listening yet) and a 503 ``starting`` are polled again; past ``timeout`` seconds,
    TimeoutError says what was last seen."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while True:
        try:
            with urllib.request.urlopen(f"{api_url.rstrip('/')}/health", timeout=min(30.0, timeout)) as response:
                body = json.loads(response.read() or b"null")
                if response.status == 200 and isinstance(body, dict) and body.get("status") == "ok":
                    return body
                last = f"{response.status} {body}"
        except urllib.error.HTTPError as error:
            last = f"{error.code} {error.read().decode(errors='replace')[:500]}"
        except (OSError, ValueError) as error:
            last = f"{type(error).__name__}: {error}"
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{api_url} not ready after {timeout:g} s (last: {last})")
        time.sleep(interval)
