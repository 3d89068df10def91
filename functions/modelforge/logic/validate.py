"""POST /validate: the data checks of a training job, run without training (the runbook's "validate the data
only"). The request is a training request; the answer says what the data holds and whether a job would pass
the checks training makes before its search, reusing the pipeline's own stages (``domain.data_check``)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from typing import TYPE_CHECKING

from modelforge.jobs import FailureEventSource
from modelforge.logic import jobs_api
from modelforge.logic.training_job import FailureEventReader, TelemetryReader, apply_options, events_in_range
from modelforge.observability import logger
from modelforge.schemas import MachineDataCheck, ValidateRequest, ValidateResponse

if TYPE_CHECKING:
    from modelforge.domain.pipeline import PipelineConfig


def validate_training_data(request: ValidateRequest, *, catalog: jobs_api.Catalog, telemetry: TelemetryReader,
                           failure_events: FailureEventReader, config: PipelineConfig) -> ValidateResponse:
    """Unknown machines and ranges outside the data are refused as POST /train refuses them (422); data that
    cannot train is a 200 whose ``would_succeed`` is false, with the error a job would fail with."""
    from modelforge.domain.data_check import check_training_data  # pandas only where the data is checked

    jobs_api.check_machines(request, catalog)
    machines = request.machine_names or [request.machine_name]
    frames = {name: telemetry.read(name, request.start_date, request.end_date) for name in machines}
    events = (events_in_range(failure_events, machines, request.start_date, request.end_date)
              if request.failure_events is FailureEventSource.RECORDS else None)
    check = check_training_data(frames if request.machine_names else frames[request.machine_name],
                                machine_name=request.machine_name, indicator=request.indicator.value,
                                config=apply_options(config, request.options), events=events)
    logger.info("training data validated", extra={"machine_name": request.machine_name,
                                                  "would_succeed": check.would_succeed,
                                                  "error_type": check.error_type, "range": _range(request)})
    return ValidateResponse(
        machine_name=request.machine_name, indicator=request.indicator, failure_events_source=request.failure_events,
        would_succeed=check.would_succeed, error_type=check.error_type, error_message=check.error_message,
        rows_usable=check.rows_usable, machines=[MachineDataCheck(**asdict(m)) for m in check.machines])


def _range(request: ValidateRequest) -> list[str | None]:
    return [_iso(request.start_date), _iso(request.end_date)]


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None
