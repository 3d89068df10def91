"""The real training handler, killed with SIGKILL right after one of its writes: what an out-of-memory kill or
a timeout does to a Lambda process between its first S3 write and its registry item. Test-only, swapped in
for TrainingFunction by tests/integration/test_kill_points.py; production code knows nothing of it.

``MODELFORGE_TEST_KILL_AFTER_WRITES=PATH`` (the function's environment): a file holding N, read at each
invocation (so one local cloud serves every kill point: the test writes N before each job); the process dies
as soon as its Nth write has returned, counting the artifact puts (model, report, profile, holdout: 1-4) and
then the registry item (5). Nothing after the write runs: no ``except``, no ``finally``, no cleanup, as with a
real kill.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from modelforge.adapters.model_registry import ModelRegistry
from modelforge.adapters.model_store import ModelArtifactStore
from modelforge.handlers.training import lambda_handler as training_handler

KILL_AFTER = "MODELFORGE_TEST_KILL_AFTER_WRITES"
_writes = {"done": 0, "kill_after": 0}


def _killed_after(write: Callable[..., Any]) -> Callable[..., Any]:
    def counted(*args: Any, **kwargs: Any) -> Any:
        result = write(*args, **kwargs)
        _writes["done"] += 1
        if _writes["done"] == _writes["kill_after"]:
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    return counted


def _install() -> None:
    """Wraps the writes once, in the worker process that runs this handler: importing this module (the test
    imports KILL_AFTER) patches nothing, so no other test in the pytest process meets the wrappers."""
    if not _writes.get("installed"):
        ModelArtifactStore.put = _killed_after(ModelArtifactStore.put)  # type: ignore[method-assign]
        ModelRegistry.put_version = _killed_after(ModelRegistry.put_version)  # type: ignore[method-assign]
        _writes["installed"] = 1


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    _install()
    _writes["done"] = 0
    _writes["kill_after"] = int(Path(os.environ[KILL_AFTER]).read_text())
    return training_handler(event, context)
