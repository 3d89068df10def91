"""The integration tier: moto executes the real state machine from template.yaml, Lambda invocations run the
real handlers in worker processes, requests go through the local HTTP API. One cloud at a time per process
(moto's state is process-wide), so each module starts its own and stops it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from localcloud.cloud import LocalCloud
from localcloud.demo import data_location
from localcloud.demo_data import generate_machine_telemetry
from modelforge.adapters.telemetry import TelemetryStore
from tests.conftest import free_port

pytestmark = pytest.mark.integration

TRAINABLE_MACHINE = "MOTOBOMBA-001"
QUIET_MACHINE = "QUIET-001"  # runs fine for the whole range: no failure event to learn from


def start_cloud(tmp_path: Path, **overrides: object) -> LocalCloud:
    cloud = LocalCloud(aws_port=free_port(), api_port=free_port(), state_dir=tmp_path, **overrides)  # type: ignore[arg-type]
    return cloud.start()


def load_machines(cloud: LocalCloud) -> None:
    bucket, prefix = data_location(cloud.stack)
    store = TelemetryStore(bucket, prefix)
    store.write(TRAINABLE_MACHINE, generate_machine_telemetry(TRAINABLE_MACHINE, days=60, seed=7).telemetry)
    quiet = generate_machine_telemetry(QUIET_MACHINE, days=20, seed=3, failures_per_30_days=0)
    store.write(QUIET_MACHINE, quiet.telemetry)


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    local = start_cloud(tmp_path_factory.mktemp("cloud"))
    try:
        load_machines(local)
        yield local
    finally:
        local.stop()
