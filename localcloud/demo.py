"""Loads the demo fleet's processed telemetry into the local cloud's data bucket, through the same
TelemetryStore the training function reads with."""

from __future__ import annotations

from localcloud.demo_data import demo_machine_names, generate_fleet
from localcloud.template import LocalStack
from modelforge.adapters.telemetry import TelemetryStore
from modelforge.schemas import MachineSummary
from modelforge.settings import ApiSettings


def data_location(stack: LocalStack) -> tuple[str, str]:
    """The data bucket and the processed-telemetry prefix, as the API function's settings read them (the
    template may leave the prefix empty: the code's default)."""
    api = ApiSettings.from_env(stack.functions["ApiFunction"].environment)
    return api.data_bucket_name, api.processed_data_prefix


def load_demo_data(
    stack: LocalStack, *, machines: int = 10, days: float = 60, seed: int = 7, start: str = "2025-01-01"
) -> list[MachineSummary]:
    bucket, prefix = data_location(stack)
    store = TelemetryStore(bucket, prefix)
    fleet = generate_fleet(demo_machine_names(machines), start=start, days=days, seed=seed)
    return [store.write(machine.machine_name, machine.telemetry) for machine in fleet]
