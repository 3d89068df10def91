"""Chronological splits: a model is always tested on data from after everything it trained on.

Targets look ahead (a row is pre-failure because of an onset up to ``window`` minutes later; its time to
failure looks up to the health horizon ahead), so a training row just before a test period can carry
information about a test event. Every split here *purges* the training rows within ``purge_minutes`` before
the first test row: no model ever trains on a row inside the window of an event it is tested on.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from modelforge.domain.units import MINUTE_NS
from modelforge.errors import InsufficientDataError, NotEnoughEventsError


@dataclass(frozen=True)
class TimeSplit:
    train: np.ndarray  # row positions, in time order
    test: np.ndarray
    split_ns: int  # timestamp of the first test row
    purged_rows: int


def chronological_split(t: np.ndarray, *, test_fraction: float, purge_minutes: float) -> TimeSplit:
    """``t`` sorted epoch ns of the usable rows. The last ``test_fraction`` of them is the test set; training
    rows less than ``purge_minutes`` before the first test row are dropped."""
    if not 0 < test_fraction < 1:
        raise ValueError("test_fraction must be between 0 and 1")
    n = len(t)
    cut = min(max(round(n * (1 - test_fraction)), 1), n - 1)
    split_ns = int(t[cut])
    train_end = int(np.searchsorted(t, split_ns - purge_minutes * MINUTE_NS, side="left"))
    return TimeSplit(train=np.arange(train_end), test=np.arange(cut, n), split_ns=split_ns,
                     purged_rows=cut - train_end)


def validation_split(t: np.ndarray, y: np.ndarray | None, *, fraction: float,
                     purge_minutes: float) -> tuple[np.ndarray, np.ndarray]:
    """Splits training rows into a *fit* part and a later *validation* part (purged between them).

    With a classification target ``y`` the cut moves earlier when needed so that both parts hold positives
    (a validation slice without a failure cannot choose a threshold). Raises ``NotEnoughEventsError`` when
    impossible.
    """
    n = len(t)
    cut = min(max(round(n * (1 - fraction)), 1), n - 1)
    if y is not None:
        positive_rows = np.flatnonzero(y > 0)
        if len(positive_rows) == 0:
            raise NotEnoughEventsError("no positive rows")
        if positive_rows[-1] < cut:
            # Move the cut to the start of the last run of positives (the last event's window).
            run_starts = positive_rows[np.r_[True, np.diff(positive_rows) > 1]]
            cut = int(run_starts[-1])
    split_ns = int(t[cut])
    fit_end = int(np.searchsorted(t, split_ns - purge_minutes * MINUTE_NS, side="left"))
    fit, val = np.arange(fit_end), np.arange(cut, n)
    if y is not None and (len(fit) == 0 or y[fit].sum() == 0 or y[val].sum() == 0):
        raise NotEnoughEventsError("positives needed on both sides of the validation cut")
    return fit, val


class PurgedTimeSeriesSplit:
    """Expanding-window time-series cross-validation with a gap in *time* (``sklearn``'s ``TimeSeriesSplit``
    gaps in rows, which means nothing with irregular sampling). Usable as ``cv=`` in any sklearn search.

    The rows (in time order) are cut into ``n_splits + 1`` equal blocks; fold ``k`` tests on block ``k + 1``
    and trains on every earlier row more than ``purge_minutes`` before the block's first row.
    """

    def __init__(self, t: np.ndarray, *, n_splits: int = 3, purge_minutes: float = 30) -> None:
        if n_splits < 2:
            raise ValueError("n_splits must be at least 2")
        self.t = np.asarray(t)
        self.n_splits = n_splits
        self.purge_ns = int(purge_minutes * MINUTE_NS)

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        return self.n_splits

    def split(self, X: Any = None, y: Any = None, groups: Any = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        n = len(self.t)
        if X is not None and len(X) != n:
            raise ValueError(f"X has {len(X)} rows, the splitter was built for {n}")
        bounds = np.linspace(0, n, self.n_splits + 2).astype(int)
        for start, stop in itertools.pairwise(bounds[1:]):
            train_end = int(np.searchsorted(self.t, self.t[start] - self.purge_ns, side="left"))
            yield np.arange(train_end), np.arange(start, stop)


def group_validation_split(groups: np.ndarray, events: np.ndarray | None, *, fraction: float,
                           seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Splits a fleet's training rows into *fit* machines and *validation* machines (whole machines, so no
    machine's rows sit on both sides). About ``fraction`` of the machines with an event (``events`` > 0 on
    some row), and of those without, validate; each side keeps at least one machine with an event. Raises
    ``NotEnoughEventsError`` with fewer than two such machines."""
    machines = np.unique(groups)
    if len(machines) < 2:
        raise NotEnoughEventsError("a validation by machines needs at least two machines")
    eventful = machines if events is None else np.unique(groups[events > 0])
    if len(eventful) < 2:
        raise NotEnoughEventsError(f"failures on at least two training machines are needed, found {len(eventful)}")
    quiet = np.setdiff1d(machines, eventful)
    rng = np.random.default_rng(seed + 1)  # not the holdout's draw
    n_eventful = min(max(1, round(len(eventful) * fraction)), len(eventful) - 1)
    chosen = np.concatenate([rng.permutation(eventful)[:n_eventful],
                             rng.permutation(quiet)[:round(len(quiet) * fraction)]])
    in_val = np.isin(groups, chosen)
    return np.flatnonzero(~in_val), np.flatnonzero(in_val)


def machine_split(group: np.ndarray, has_event: np.ndarray, *, test_fraction: float, seed: int,
                  t: np.ndarray) -> TimeSplit:
    """Whole machines held out: about ``test_fraction`` of the machines with a failure, and of those without,
    drawn at random (seeded). Both sides keep at least one machine with a failure."""
    machines = np.unique(group)
    eventful = np.unique(group[has_event])
    quiet = np.setdiff1d(machines, eventful)
    if len(eventful) < 2:
        raise InsufficientDataError(
            f"holding out whole machines needs failures on at least two machines, found {len(eventful)}")
    rng = np.random.default_rng(seed)
    n_eventful = min(max(1, round(len(eventful) * test_fraction)), len(eventful) - 1)
    test_machines = np.concatenate([rng.permutation(eventful)[:n_eventful],
                                    rng.permutation(quiet)[:round(len(quiet) * test_fraction)]])
    is_test = np.isin(group, test_machines)
    test = np.flatnonzero(is_test)
    return TimeSplit(train=np.flatnonzero(~is_test), test=test, split_ns=int(t[test].min()) if len(test) else 0,
                     purged_rows=0)
