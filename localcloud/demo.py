"""Loads the demo fleet's processed telemetry into the local cloud's data bucket, through the same
TelemetryStore the training function reads with."""

from __future__ import annotations

from localcloud.demo_data import demo_machine_names, generate_fleet
from localcloud.template import LocalStack
from modelforge.adapters.telemetry import TelemetryStore
from modelforge.schemas import MachineSummary


def data_location(stack: LocalStack) -> tuple[str, str]:
    api = stack.functions["ApiFunction"].environment
    return api["DATA_BUCKET_NAME"], api["PROCESSED_DATA_PREFIX"]


def load_demo_data(
    stack: LocalStack, *, machines: int = 10, days: float = 60, seed: int = 7, start: str = "2025-01-01"
) -> list[MachineSummary]:
    bucket, prefix = data_location(stack)
    store = TelemetryStore(bucket, prefix)
    fleet = generate_fleet(demo_machine_names(machines), start=start, days=days, seed=seed)
    return [store.write(machine.machine_name, machine.telemetry) for machine in fleet]
