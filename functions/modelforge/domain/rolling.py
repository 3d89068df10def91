"""Time-window rolling statistics in NumPy: the numbers of pandas' ``rolling("<N>min", min_periods=1)`` (the
window ``(t - N minutes, t]`` of each row, its own row included, later rows never; missing values skipped),
without a pandas rolling object per window and column.

How each statistic is computed
    windows: the first row of each row's window by ``np.searchsorted`` over the timestamps (``side="right"``
    on ``t - N``: pandas' right-closed window), clipped to the row's group (a machine), so no window crosses a
    machine boundary in a pooled frame;
    ``count``, ``mean``, ``std``: differences of running sums of the values, their squares and the valid
    flags, restarted every block of rows (a block at least as long as the longest window) over values centred
    on the block's mean, a window's two block parts combined about one centre (Chan's parallel formula). One
    running sum over the whole series loses digits of a drifting sensor's small local spread (measured on a
    3,000-row drifting series: 1e-8 relative error in the std even in x87 long double, whose running sums
    also took 21 times as long as float64's); these block sums stayed within 1.3e-11 of a two-pass computation there.
    A window whose values are all equal gets pandas' exact answer (the value, a zero spread), as pandas
    special-cases it;
    ``min``, ``max``: a sparse table (minima over 1, 2, 4, ... rows), each window the ``fmin`` of two
    overlapping power-of-two spans: exact, as pandas' deque is. ``fmin`` skips missing values.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

NUMPY_STATISTICS = ("count", "mean", "std", "min", "max")


@dataclass(frozen=True)
class Windows:
    """Each row's window as a half-open row range ``[starts[i], i + 1)``."""

    starts: np.ndarray  # int64, per row

    @property
    def ends(self) -> np.ndarray:
        return np.arange(1, len(self.starts) + 1)


def group_starts_of(count: int, group_starts: Iterable[int] | None) -> np.ndarray:
    """The first row of each group (0 first), checked; ``None``: the rows are one group."""
    starts = np.asarray([0] if group_starts is None else list(group_starts), dtype=np.int64)
    if count and (len(starts) == 0 or starts[0] != 0 or np.any(np.diff(starts) <= 0) or starts[-1] >= count):
        raise ValueError("group starts must begin at row 0 and increase within the frame")
    return starts


def time_windows(timestamps_ns: np.ndarray, window_ns: int, group_starts: Iterable[int] | None = None) -> Windows:
    """The window of each row over ``timestamps_ns`` (int64, non-decreasing within each group)."""
    ns = np.asarray(timestamps_ns, dtype=np.int64)
    groups = group_starts_of(len(ns), group_starts)
    bounds = np.append(groups, len(ns))
    starts = np.empty(len(ns), dtype=np.int64)
    for first, stop in itertools.pairwise(bounds):  # one searchsorted per machine
        times = ns[first:stop]
        if np.any(times[1:] < times[:-1]):
            raise ValueError("index values must be monotonic")  # what pandas says of an unsorted time index
        starts[first:stop] = first + np.searchsorted(times, times - window_ns, side="right")
    return Windows(starts)


class RollingColumns:
    """Rolling statistics of each series of ``values`` (series x rows, float64, NaN: missing), window by
    window, each returned as series x rows: every gather is then along contiguous memory. What depends only
    on the values (block sums, forward fill) is made once and shared by every window and statistic."""

    def __init__(self, values: np.ndarray, longest: int = 1) -> None:
        """``longest``: the most rows any window will hold, when known (the block sums are made once)."""
        self.values = np.ascontiguousarray(values, dtype=np.float64)
        self._longest = longest
        self.valid = ~np.isnan(self.values)
        self._blocks: _Blocks | None = None
        self._last: tuple[Windows, tuple[np.ndarray, np.ndarray, np.ndarray], np.ndarray] | None = None
        self._filled: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def count(self, windows: Windows) -> np.ndarray:
        return self._moments(windows)[0][0]

    def mean(self, windows: Windows) -> np.ndarray:
        (_, mean, _), constant = self._moments(windows)
        return np.where(constant, self._forward_filled()[0], mean)

    def std(self, windows: Windows) -> np.ndarray:
        (n, _, squares), constant = self._moments(windows)
        with np.errstate(divide="ignore", invalid="ignore"):
            var = np.where(n > 1, np.maximum(squares, 0) / (n - 1), np.nan)
        return np.sqrt(np.where(constant & (n > 1), 0.0, var))

    def min(self, windows: Windows) -> np.ndarray:
        return _sparse_table_query(self.values, windows.starts, np.fmin)

    def max(self, windows: Windows) -> np.ndarray:
        return _sparse_table_query(self.values, windows.starts, np.fmax)

    def _moments(self, windows: Windows) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
        """Per window: the count of valid values, their mean and their sum of squared deviations, and whether
        its valid values are all one value; kept for the next statistic of the same windows."""
        if self._last is not None and self._last[0] is windows:
            return self._last[1], self._last[2]
        rows = self.values.shape[1]
        longest = max(self._longest, int((np.arange(1, rows + 1) - windows.starts).max()) if rows else 1)
        if self._blocks is None or self._blocks.length < longest:
            self._blocks = _Blocks(self.values, self.valid, longest)
        moments = self._blocks.moments(windows.starts)
        constant = self._constant(windows.starts, moments[0])
        self._last = (windows, moments, constant)
        return moments, constant

    def _constant(self, starts: np.ndarray, n: np.ndarray) -> np.ndarray:
        """Where a window's valid values are all one value (pandas answers those exactly: the value, a zero
        spread): no change of the forward-filled series after the window's first valid value."""
        _, changes, next_valid = self._forward_filled()
        late = ~np.take(self.valid, starts, axis=1) & (n > 0)  # a window opening on a missing value
        if late.any():
            first = np.broadcast_to(starts, n.shape).copy()
            columns, rows = np.nonzero(late)
            first[columns, rows] = next_valid[columns, starts[rows]]
            after = np.take_along_axis(changes, first + 1, axis=1)
        else:
            after = np.take(changes, starts + 1, axis=1)
        return (n > 0) & (changes[:, 1:] == after)

    def _forward_filled(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The last valid value at or before each row; prefix counts of "differs from the previous row" in that
        series (both valid); the first valid row at or after each row."""
        if self._filled is None and self.valid.all():
            rows = self.values.shape[1]
            changes = np.zeros((self.values.shape[0], rows + 1), dtype=np.int64)
            np.cumsum(self.values[:, 1:] != self.values[:, :-1], axis=1, out=changes[:, 2:])
            self._filled = (self.values, changes, np.broadcast_to(np.arange(rows), self.values.shape))
        if self._filled is None:
            width, rows = self.values.shape
            index = np.broadcast_to(np.arange(rows), (width, rows))
            last = np.maximum.accumulate(np.where(self.valid, index, -1), axis=1)
            filled = np.where(last >= 0, np.take_along_axis(self.values, np.maximum(last, 0), axis=1), np.nan)
            step = (filled[:, 1:] != filled[:, :-1]) & ~np.isnan(filled[:, :-1]) & ~np.isnan(filled[:, 1:])
            changes = np.zeros((width, rows + 1), dtype=np.int64)
            np.cumsum(step, axis=1, out=changes[:, 2:])
            following = np.where(self.valid, index, rows - 1)
            next_valid = np.minimum.accumulate(following[:, ::-1], axis=1)[:, ::-1]
            self._filled = (filled, changes, next_valid)
        return self._filled


class _Blocks:
    """Sums over runs of rows that restart every ``length`` rows (at least any window's length in rows, so a
    window lies in one block or two neighbours), of the values centred on their block's mean: a window's
    sums are then differences of numbers no larger than one block's, and its two parts combine exactly.
    Without missing values (the usual case) the counts follow from the row numbers and are not summed."""

    def __init__(self, values: np.ndarray, valid: np.ndarray, length: int) -> None:
        width, rows = values.shape
        self.length = max(length, 1)
        self.complete = bool(valid.all())
        blocks = -(-rows // self.length)
        shape = (width, blocks, self.length)
        padded = np.zeros((width, blocks * self.length))
        padded[:, :rows] = values if self.complete else np.where(valid, values, 0.0)
        counted = np.zeros((width, blocks * self.length))
        counted[:, :rows] = valid
        totals = counted.reshape(shape).sum(axis=2)
        with np.errstate(divide="ignore", invalid="ignore"):
            self.center = np.where(totals > 0, padded.reshape(shape).sum(axis=2) / totals, 0.0)
        centred = (padded.reshape(shape) - self.center[:, :, None]) * counted.reshape(shape)
        parts = [centred, centred * centred] + ([] if self.complete else [counted.reshape(shape)])
        # Inclusive running sums within each block, flattened back to rows, with a zero column last (index -1).
        self.sums = [np.concatenate([np.cumsum(part, axis=2).reshape(width, -1), np.zeros((width, 1))], axis=1)
                     for part in parts]

    def moments(self, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Count, mean and sum of squared deviations of each row's window: part A from its start to the end
        of its block, part B (when it reaches into the next block) from that block's start, combined about
        part A's centre."""
        rows = len(starts)
        last = np.arange(rows)  # each window's last row
        first_block, last_block = starts // self.length, last // self.length
        split = first_block != last_block
        block_end = np.where(split, (first_block + 1) * self.length - 1, last)
        before = np.where(starts % self.length == 0, -1, starts - 1)  # -1: the zero column
        parts = [(np.take(sums, block_end, axis=1) - np.take(sums, before, axis=1),
                  np.where(split, sums[:, :rows], 0.0)) for sums in self.sums]
        (s_a, s_b), (q_a, q_b) = parts[:2]
        if self.complete:
            n_b = np.where(split, last - last_block * self.length + 1, 0).astype(np.float64)
            n = (last - starts + 1).astype(np.float64)
        else:
            n_a, n_b = parts[2]
            n = n_a + n_b
        shift = np.take(self.center, last_block, axis=1) - np.take(self.center, first_block, axis=1)
        total = s_a + s_b + n_b * shift  # about part A's centre
        squares = q_a + q_b + shift * (2 * s_b + n_b * shift)
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = np.take(self.center, first_block, axis=1) + total / n
            squares -= total * total / n
        n = np.broadcast_to(n, s_a.shape)
        return n, np.where(n > 0, mean, np.nan), squares


def _sparse_table_query(values: np.ndarray, starts: np.ndarray, reduce: np.ufunc) -> np.ndarray:
    """``reduce`` over rows ``[starts[i], i]`` of each column (``values``: columns x rows): level k holds the
    reduction over ``2**k`` rows from each row; a window of length L is two level-floor(log2 L) spans that
    overlap (exact for min and max)."""
    rows = values.shape[1]
    out = np.empty_like(values)
    if rows == 0:
        return out
    ends = np.arange(1, rows + 1)
    levels = np.floor(np.log2(ends - starts)).astype(np.int64)
    table = values
    for level in range(int(levels.max()) + 1):
        span = 1 << level
        if level:
            half = span >> 1
            table = table.copy()
            table[:, :rows - half] = reduce(table[:, :rows - half], table[:, half:])
        at = np.flatnonzero(levels == level)
        if len(at):
            out[:, at] = reduce(np.take(table, starts[at], axis=1), np.take(table, ends[at] - span, axis=1))
    return out
