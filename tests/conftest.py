"""Helpers shared by every tier."""

from __future__ import annotations

import collections
import contextlib
import functools
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

TERMINAL = ("completed", "failed")

# The search the tests' trainings run (the integration tier's clouds and the e2e tier's): what each job does end
# to end is the same as with the template's defaults (search, refit, gate, registry), at a fraction of the cost
# (one candidate, fewer rounds). No test asserts a model's quality beyond what these settings give.
TEST_TRAINING_SETTINGS = {"SEARCH_BUDGET": "1", "MAX_BOOST_ROUNDS": "100"}

# XGBoost's OpenMP threads spin while they wait by default: on a machine whose cores are busy (CI, a shared
# box) that made in-process training several times slower; the local cloud's workers wait passively too
# (localcloud/cloud.py). Set before anything loads libgomp.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def isolate_from_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, region: str = "us-east-1") -> None:
    """moto in-process only: no endpoint, profile or config another tier left in the environment, and fake
    credentials, so no call can reach a real account or a running local cloud."""
    for name in list(os.environ):
        if name.startswith(("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_DEFAULT_PROFILE")):
            monkeypatch.delenv(name)
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": region, "AWS_REGION": region,
                        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
                        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials")}.items():
        monkeypatch.setenv(name, value)


@contextlib.contextmanager
def one_boto3_session() -> Iterator[None]:
    """awswrangler makes every client from boto3.DEFAULT_SESSION, or else from a new Session, which loads
    botocore's endpoint and service data again (~0.2 s a client, three clients per telemetry write: most of a
    write's time). While a test writes its data, one session serves all those clients; the process's default
    session, whatever it was, is back afterwards."""
    import boto3

    saved = boto3.DEFAULT_SESSION
    boto3.DEFAULT_SESSION = boto3.session.Session()
    try:
        yield
    finally:
        boto3.DEFAULT_SESSION = saved


def poll_pauses(first: float = 0.2, longest: float = 1.0) -> Iterator[float]:
    """The pauses between two polls of a local cloud's API: 0.2 s, then half as long again each time, up to 1 s.
    A poll is not free: one GET /status cost the API function's worker and moto some 80 ms of CPU on a busy
    2-core machine (measured: 50 polls, 1.6 s in the test's process and 2.2-2.7 s in the workers), CPU taken
    from the job being waited for. A job that ends within its first second is still seen within 0.5 s."""
    pause = first
    while True:
        yield pause
        pause = min(longest, pause * 1.5)


def wait_for_job(api_url: str, process_id: str, *, timeout: float = 180, session: Any = requests,
                 seen: list[str] | None = None) -> dict[str, Any]:
    """Polls GET /status until the job is terminal; records every status seen in ``seen``."""
    deadline = time.monotonic() + timeout
    pauses = poll_pauses()
    while True:
        body = session.get(f"{api_url}/status/{process_id}", timeout=30).json()
        if seen is not None and (not seen or seen[-1] != body["status"]):
            seen.append(body["status"])
        if body["status"] in TERMINAL:
            return dict(body)
        if time.monotonic() > deadline:
            raise AssertionError(f"job {process_id} still {body['status']} after {timeout} s")
        time.sleep(next(pauses))


# ------------------------------------------------------------------ moto as installed, at every module's start

def _moto_state() -> dict[str, Any]:
    """What a local cloud patches in moto, process-wide, while it runs (see LocalCloud.stop)."""
    import copy

    from moto.awslambda_simple.models import LambdaSimpleBackend
    from moto.core.config import default_user_config
    from moto.dynamodb.models import DynamoDBBackend

    writes = ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item")
    return {
        "LambdaSimpleBackend.invoke": LambdaSimpleBackend.__dict__.get("invoke"),
        **{f"DynamoDBBackend.{name}": DynamoDBBackend.__dict__.get(name) for name in writes},
        "config": copy.deepcopy(dict(default_user_config)),
    }


_MOTO_AS_INSTALLED = _moto_state()


@pytest.fixture(scope="module", autouse=True)
def _moto_unpatched() -> None:
    """No module may inherit a patched moto from another (tests run in random order, tiers interleaved): a
    fixture that patches moto process-wide undoes it when it ends."""
    leaked = {name for name, value in _moto_state().items() if value != _MOTO_AS_INSTALLED[name]}
    assert not leaked, f"moto is still patched by an earlier module: {sorted(leaked)}"


# ------------------------------------------------------------------ tiers

_TIER_MARKS = {"integration": pytest.mark.integration, "e2e": pytest.mark.e2e}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test is marked with its tier's marker (``-m integration``, ``-m "not e2e"``): a ``pytestmark``
    in a conftest.py marks nothing, so the tier's folder decides."""
    for item in items:
        parts = item.path.parts
        for tier, mark in _TIER_MARKS.items():
            if "tests" in parts and tier in parts[parts.index("tests"):]:
                item.add_marker(mark)
    _fail_on_shared_nodeids(items)


def _fail_on_shared_nodeids(items: list[pytest.Item]) -> None:
    """pytest-xdist hands tests to its workers by nodeid: items that share one (a plugin that names them
    itself, as schemathesis's parametrize did) collapse into one and the others never run, silently."""
    counts = collections.Counter(item.nodeid for item in items)
    shared = sorted(nodeid for nodeid, count in counts.items() if count > 1)
    if shared:
        raise pytest.UsageError(f"these nodeids are shared by more than one collected test: {shared}")


# ------------------------------------------------------------------ random order

def _order(config: pytest.Config) -> str:
    seed = config.getoption("randomly_seed", default=None) if config.pluginmanager.has_plugin("randomly") else None
    if not isinstance(seed, int):
        return "test order: file order (pytest-randomly is off)"
    return (f"test order: random, --randomly-seed={seed} (pass it to reproduce this order; "
            "-p no:randomly for file order)")


def pytest_sessionstart(session: pytest.Session) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:  # shown with -q too, unlike the plugin's own header line
        reporter.write_line(_order(session.config))


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    terminalreporter.write_line(_order(config))


# ------------------------------------------------------------------ on two cores (pytest-xdist)

_TIER_WEIGHT = {"e2e": 0, "integration": 1, "package": 2}  # the slowest first; everything else (unit) after


def _tier(scope: str) -> str:
    """tests/<tier>/...: the tier's folder name."""
    parts = scope.split("/")
    return parts[1].split(" ")[0] if len(parts) > 2 or " " in scope else ""


@functools.cache
def _uses_the_session_stack(path: str) -> bool:
    """An e2e module that drives the session's ``stack`` fixture (the local cloud in its own process)."""
    source = Path(__file__).resolve().parents[1] / path  # nodeids are relative to the rootdir, the repo's root
    return Path(path).parts[:2] == ("tests", "e2e") and source.is_file() and "stack: Stack" in source.read_text()


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``-n 2 --dist loadfile`` (``make test``), refined: a module's tests all run on one worker, so a
    module-scoped local cloud is started once, not once a worker; the e2e modules that share the session's
    local cloud go to one worker together, so it is started once too; and the heaviest modules (by tier, then
    by number of tests) are handed out first, so no worker is left with a long module at the end."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class ModulesHeaviestFirst(LoadFileScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return "tests/e2e (the session's local cloud)" if _uses_the_session_stack(path) else path

        def _assign_work_unit(self, node: Any) -> None:
            heaviest = min(self.workqueue, key=lambda scope: (_TIER_WEIGHT.get(_tier(scope), 9),
                                                               -len(self.workqueue[scope])))
            self.workqueue.move_to_end(heaviest, last=False)
            super()._assign_work_unit(node)

    return ModulesHeaviestFirst(config, log)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """The controller's COLUMNS (usually none), for its workers: see pytest_configure."""
    node.workerinput["controller_columns"] = os.environ.get("COLUMNS")


def pytest_configure(config: pytest.Config) -> None:
    """An xdist worker starts with COLUMNS=80 whatever the controller had, which made the CLI's tables
    (modelforge_cli/output.py: a terminal's width only where COLUMNS says so) fold as in an 80-column
    terminal; a worker's environment says what the controller's said, before anything imports the CLI."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and "controller_columns" in workerinput:
        columns = workerinput["controller_columns"]
        if columns is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = columns
