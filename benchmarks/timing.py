"""Timing shared by the benchmarks that compare calls side by side."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any


def alternated_ms(calls: Sequence[Callable[..., Any]], repeats: int) -> list[tuple[float, float]]:
    """Runs the calls in turn, ``repeats`` times, so all of them see the same machine state; the median and
    the mean of each in milliseconds (the mean carries costs paid now and then, such as a buffer's flush)."""
    times: list[list[float]] = [[] for _ in calls]
    for _ in range(repeats):
        for call, samples in zip(calls, times, strict=True):
            started = time.perf_counter()
            call()
            samples.append((time.perf_counter() - started) * 1000)
    return [(statistics.median(samples), statistics.fmean(samples)) for samples in times]
