"""The data checks of training without the training (``POST /validate``, the runbook's "validate the data only").

It runs the pipeline's own stages up to the search (:mod:`modelforge.domain.pipeline`: resolve the plan,
prepare each machine, pool, split), so it fails exactly where and as a job on the same data would fail before
its search, and reports what it found on the way: rows read and kept, invalid rows by reason, failure events.
The search can still refuse data this passes (too few events in a cross-validation fold); the answer says so.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from modelforge.domain import pipeline
from modelforge.domain.labeling import label_failures
from modelforge.domain.telemetry import CleanTelemetry, clean_telemetry
from modelforge.errors import TrainingDataError


@dataclass(frozen=True)
class MachineFindings:
    machine_name: str
    rows_read: int
    rows_valid: int
    invalid_rows: dict[str, int]
    impossible_by_column: dict[str, int] = field(default_factory=dict)
    failure_events: int | None = None  # None: the machine's data did not get as far as labeling
    error: str | None = None  # "<ErrorName>: message" when this machine alone cannot be used


@dataclass(frozen=True)
class DataCheck:
    would_succeed: bool
    error_type: str | None
    error_message: str | None
    rows_usable: int | None
    machines: list[MachineFindings]


def check_training_data(frame: pd.DataFrame | Mapping[str, pd.DataFrame], *, machine_name: str, indicator: str,
                        config: pipeline.PipelineConfig,
                        events: Mapping[str, np.ndarray] | None = None) -> DataCheck:
    """What a training job on this data would find before its search, and whether it would get that far.

    Arguments as :func:`modelforge.domain.pipeline.train_model`'s."""
    plan, frames = pipeline._resolve_plan(frame, machine_name=machine_name, indicator=indicator, config=config,
                                          events=events)
    findings = [_machine_findings(name, machine_frame, plan, events) for name, machine_frame in frames.items()]
    try:
        prepared = pipeline._prepare_machines(frames, plan, events)
        pool, features = pipeline._pool(prepared, plan)
        pipeline._split(pool, features, plan)
    except TrainingDataError as error:
        return DataCheck(would_succeed=False, error_type=type(error).__name__, error_message=str(error),
                         rows_usable=None, machines=findings)
    return DataCheck(would_succeed=True, error_type=None, error_message=None, rows_usable=len(pool.y),
                     machines=findings)


def _machine_findings(name: str, frame: pd.DataFrame, plan: pipeline._Plan,
                      events: Mapping[str, np.ndarray] | None) -> MachineFindings:
    """One machine's counts. Cleaned with no minimum row count, so a machine with too few valid rows still
    says how many it has and why the others were dropped; the error is the one its own check raises."""
    require_variation = events is None
    rows_read = 0 if frame is None else len(frame)
    error = None
    try:
        clean_telemetry(frame, machine_name=name, config=plan.machine_validation(),
                        require_rpm_variation=require_variation)
    except TrainingDataError as refused:
        error = f"{type(refused).__name__}: {refused}"
    try:
        clean = clean_telemetry(frame, machine_name=name,
                                config=dataclasses.replace(plan.machine_validation(), min_rows=0),
                                require_rpm_variation=require_variation)
    except TrainingDataError:
        return MachineFindings(machine_name=name, rows_read=rows_read, rows_valid=0, invalid_rows={}, error=error)
    recorded = None if events is None else np.asarray(events.get(name, np.array([], dtype=np.int64)))
    episodes = len(label_failures(clean.frame, plan.config.labeling, recorded).episodes) if len(clean.frame) else 0
    return MachineFindings(machine_name=name, rows_read=clean.rows_in, rows_valid=len(clean.frame),
                           invalid_rows=_invalid_rows(clean), impossible_by_column=dict(clean.impossible_by_column),
                           failure_events=episodes, error=error)


def _invalid_rows(clean: CleanTelemetry) -> dict[str, int]:
    return {"missing_timestamp_or_rpm_variation": clean.rows_dropped_missing_key,
            "impossible_values": clean.rows_dropped_impossible,
            "duplicate_timestamps": clean.rows_dropped_duplicate}
