"""Where a training job runs: the Lambda, a Batch CPU job (Fargate, or EC2 when it is large) or a Batch GPU job.

A job's size is estimated from what ``POST /train`` already reads (the machines' manifests: rows and columns,
and the job's recipe: how many features each sensor becomes), never from the data itself. ``auto`` picks the
Lambda when the estimate fits its memory and time with a margin, Batch CPU above that, and the GPU queue only
when asked, or when the deployment prefers it above a size (``gpu_preferred_above_cells``). A job on Batch CPU
(``auto`` or asked) gets a size class (:class:`BatchClass`): the Fargate job definition when the estimated peak
memory fits its memory with a margin, the large EC2 one above (:func:`choose_batch_class`).

The per-cell costs are measured (see docs/benchmarks.md, "Where auto switches to Batch"): peak resident memory
and training seconds per (row x feature) cell of the training matrix on a 2-core machine, at a size the
Lambda handles, so they are upper bounds for the Lambda's 6 vCPUs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

# Columns of a processed telemetry manifest that are not sensors (the rest each become features).
NON_SENSOR_COLUMNS = frozenset({"timestamp", "machine_name"})


class Compute(StrEnum):
    AUTO = "auto"
    LAMBDA = "lambda"
    BATCH = "batch"
    GPU = "gpu"


class BatchClass(StrEnum):
    """Which Batch CPU job definition a ``batch`` job runs on (the state machine's ChooseCompute routes on it)."""

    STANDARD = "standard"  # BatchCpuJobDefinition: Fargate, up to 16 vCPU / 120 GiB
    LARGE = "large"  # BatchLargeJobDefinition: EC2 (memory-rich r6i/r7i/m6i), above Fargate's memory


@dataclass(frozen=True)
class ComputeConfig:
    lambda_memory_mb: float = 10_240.0  # the training function's MemorySize (template.yaml)
    lambda_timeout_s: float = 900.0  # its Timeout
    # Only this fraction of the Lambda's memory and time is planned for: the estimate is linear, the data
    # is not (uneven failure windows, the search's folds), and a job that dies at 899 s wastes 15 minutes.
    lambda_margin: float = 0.5
    # Measured on a 2-core machine (docs/benchmarks.md): 29.3 B and 15.2 us per cell at 1.8 M cells, 18.5 B and
    # 11.8 us at 7.2 M cells (default pipeline, one machine, 42 features). Memory is taken at twice the worst
    # measurement, time at the worst (the Lambda's 6 vCPUs make it an upper bound).
    bytes_per_cell: float = 60.0  # peak RSS per training cell above the loaded interpreter
    base_memory_mb: float = 300.0  # the interpreter with pandas and xgboost loaded (measured 223-259 MB)
    seconds_per_cell: float = 1.5e-5  # wall time per training cell (features, search, evaluation, report)
    base_seconds: float = 10.0  # what a tiny job costs (imports, S3 round trips)
    gpu_preferred_above_cells: float | None = None  # None: the GPU queue only when asked
    # The Batch CPU job definitions' memory, MiB (template parameters BatchCpuMemoryMiB, BatchLargeMemoryMiB,
    # wired to the functions that submit jobs; these mirror the template's defaults, as lambda_memory_mb its
    # MemorySize, and tests/unit/test_template.py keeps them equal). Like the Lambda, a job is planned into only
    # ``batch_margin`` of a definition's memory: the estimate is linear, the data is not.
    batch_cpu_memory_mib: float = 30_720.0
    batch_large_memory_mib: float = 245_760.0
    batch_margin: float = 0.5
    batch_available: bool = False  # the stack has Batch (template parameter BatchEnabled)
    gpu_available: bool = False  # the stack has a GPU job queue (BatchGpuEnabled)

    def __post_init__(self) -> None:
        if not 0 < self.lambda_margin <= 1:
            raise ValueError("lambda_margin must be in (0, 1]")
        if not 0 < self.batch_margin <= 1:
            raise ValueError("batch_margin must be in (0, 1]")
        if self.batch_cpu_memory_mib <= 0 or self.batch_large_memory_mib <= 0:
            raise ValueError("batch_cpu_memory_mib and batch_large_memory_mib must be positive")
        if self.bytes_per_cell <= 0 or self.seconds_per_cell <= 0:
            raise ValueError("bytes_per_cell and seconds_per_cell must be positive")


@dataclass(frozen=True)
class SizeEstimate:
    machines: int
    rows: int
    features: int
    cells: int  # rows x features: the training matrix
    peak_memory_mb: float
    seconds: float

    def summary(self) -> dict[str, float | int]:
        return {"machines": self.machines, "rows": self.rows, "features": self.features, "cells": self.cells,
                "peak_memory_mb": round(self.peak_memory_mb, 1), "seconds": round(self.seconds, 1)}


@dataclass(frozen=True)
class ComputeChoice:
    compute: Compute  # never AUTO
    reason: str
    estimate: SizeEstimate
    # Batch CPU only (None on the Lambda and the GPU queue): which job definition, and why.
    batch_class: BatchClass | None = None
    batch_class_reason: str | None = None


def features_per_sensor(windows: int, statistics: int, trend: bool) -> int:
    """The raw reading, one feature per (window, statistic), and the trend: ``features.feature_names``."""
    return 1 + windows * statistics + (1 if trend else 0)


def estimate_size(manifests: Sequence[tuple[int, Sequence[str]]], per_sensor: int,
                  config: ComputeConfig) -> SizeEstimate:
    """``manifests``: each machine's (rows, columns). Rows are the manifests' totals, not the requested range:
    an upper bound, which is the safe side for a Lambda that cannot be given more."""
    rows = sum(count for count, _ in manifests)
    sensors = max((len([c for c in columns if c not in NON_SENSOR_COLUMNS]) for _, columns in manifests),
                  default=0)
    features = sensors * per_sensor
    cells = rows * features
    return SizeEstimate(machines=len(manifests), rows=rows, features=features, cells=cells,
                        peak_memory_mb=config.base_memory_mb + cells * config.bytes_per_cell / 2**20,
                        seconds=config.base_seconds + cells * config.seconds_per_cell)


def choose_compute(requested: Compute, estimate: SizeEstimate, config: ComputeConfig) -> ComputeChoice:
    """Where the job runs and why, with its size class on Batch CPU. ``batch``/``gpu`` requested without their
    queue is the caller's to refuse (:func:`unavailable`)."""
    choice = _choose_host(requested, estimate, config)
    if choice.compute is not Compute.BATCH:
        return choice
    batch_class, why = choose_batch_class(estimate, config)
    return replace(choice, batch_class=batch_class, batch_class_reason=why)


def choose_batch_class(estimate: SizeEstimate, config: ComputeConfig) -> tuple[BatchClass, str]:
    """The Fargate job definition when the estimated peak memory fits ``batch_margin`` of its memory, the large
    EC2 one above. Above the large one's room too, still the large one, said so in the reason, rather than a
    refusal: the estimate is an upper bound by construction (every manifest row, twice the worst measured
    bytes per cell, and the pipeline samples its training rows to ``memory_budget_mb``), so a refusal would
    turn away jobs that fit; one that truly outgrows it fails readable (OutOfMemoryError in its
    error_message), and BatchLargeMemoryMiB is the operator's lever."""
    wanted = f"estimated {estimate.peak_memory_mb:.0f} MB"
    standard_room = config.batch_cpu_memory_mib * config.batch_margin
    large_room = config.batch_large_memory_mib * config.batch_margin
    if estimate.peak_memory_mb <= standard_room:
        return BatchClass.STANDARD, (f"{wanted} fit the Fargate job's {standard_room:.0f} MB (BatchCpuMemoryMiB "
                                     f"{config.batch_cpu_memory_mib:.0f} x {config.batch_margin})")
    if estimate.peak_memory_mb <= large_room:
        return BatchClass.LARGE, (f"{wanted} exceed the Fargate job's {standard_room:.0f} MB and fit the large "
                                  f"EC2 job's {large_room:.0f} MB (BatchLargeMemoryMiB "
                                  f"{config.batch_large_memory_mib:.0f} x {config.batch_margin})")
    return BatchClass.LARGE, (f"{wanted} exceed even the large EC2 job's {large_room:.0f} MB (BatchLargeMemoryMiB "
                              f"{config.batch_large_memory_mib:.0f} x {config.batch_margin}): run there, the "
                              "largest there is (the estimate is an upper bound); raise BatchLargeMemoryMiB "
                              "if it runs out of memory")


def _choose_host(requested: Compute, estimate: SizeEstimate, config: ComputeConfig) -> ComputeChoice:
    if requested is not Compute.AUTO:
        return ComputeChoice(requested, f"requested '{requested.value}'", estimate)
    memory_room = config.lambda_memory_mb * config.lambda_margin
    time_room = config.lambda_timeout_s * config.lambda_margin
    wanted = f"estimated {estimate.peak_memory_mb:.0f} MB and {estimate.seconds:.0f} s for {estimate.cells} cells"
    if config.gpu_available and config.gpu_preferred_above_cells is not None \
            and estimate.cells > config.gpu_preferred_above_cells:
        return ComputeChoice(Compute.GPU, f"auto: {wanted}, above the GPU preference of "
                             f"{config.gpu_preferred_above_cells:.0f} cells", estimate)
    if not config.batch_available:
        return ComputeChoice(Compute.LAMBDA, f"auto: {wanted}; this stack has no Batch, so the Lambda", estimate)
    if estimate.peak_memory_mb <= memory_room and estimate.seconds <= time_room:
        return ComputeChoice(Compute.LAMBDA, f"auto: {wanted} fit the Lambda's {memory_room:.0f} MB and "
                             f"{time_room:.0f} s (limits x {config.lambda_margin})", estimate)
    return ComputeChoice(Compute.BATCH, f"auto: {wanted} exceed the Lambda's {memory_room:.0f} MB or "
                         f"{time_room:.0f} s (limits x {config.lambda_margin})", estimate)


def switch_cells(config: ComputeConfig) -> int:
    """The training-matrix size above which ``auto`` leaves the Lambda: what docs/benchmarks.md quotes."""
    by_memory = (config.lambda_memory_mb * config.lambda_margin - config.base_memory_mb) * 2**20 \
        / config.bytes_per_cell
    by_time = (config.lambda_timeout_s * config.lambda_margin - config.base_seconds) / config.seconds_per_cell
    return int(min(by_memory, by_time))


def large_class_cells(config: ComputeConfig) -> int:
    """The training-matrix size above which a Batch CPU job leaves the Fargate job definition for the large
    EC2 one (by memory alone): what docs/benchmarks.md quotes."""
    return int((config.batch_cpu_memory_mib * config.batch_margin - config.base_memory_mb) * 2**20
               / config.bytes_per_cell)


def unavailable(requested: Compute, config: ComputeConfig) -> str | None:
    """Why this stack cannot run ``requested`` (None: it can)."""
    if requested is Compute.GPU and not config.gpu_available:
        return "'gpu' needs a GPU job queue, and this stack has none (template parameter BatchGpuEnabled)"
    if requested is Compute.BATCH and not config.batch_available:
        return "'batch' needs AWS Batch, and this stack has none (template parameter BatchEnabled)"
    return None
