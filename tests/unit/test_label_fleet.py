"""label_fleet (one pooled pass over a fleet) gives, machine by machine, what label_failures gives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from localcloud.demo_data import generate_fleet
from modelforge.domain.labeling import LabelingConfig, Labels, label_failures, label_fleet, timestamps_ns
from modelforge.domain.telemetry import RPM_VARIATION

CONFIG = LabelingConfig()


def _pieces() -> list[pd.DataFrame]:
    """Three demo machines cut into pieces, so that failures fall at pieces' starts, ends and middles."""
    fleet = generate_fleet(["A", "B", "C"], days=3, seed=4, failures_per_30_days=40)
    pieces = []
    for machine in fleet:
        frame = machine.telemetry
        for rows in np.array_split(np.arange(len(frame)), 7):
            pieces.append(frame.iloc[rows].reset_index(drop=True))
    return pieces


def _assert_same(pooled: Labels, one: Labels) -> None:
    for field in ("label", "time_to_failure", "in_failure", "censored_end"):
        np.testing.assert_array_equal(getattr(pooled, field), getattr(one, field), err_msg=field)
    for field in ("onsets_ns", "ends_ns", "left_censored", "lead_observed"):
        np.testing.assert_array_equal(getattr(pooled.episodes, field), getattr(one.episodes, field), err_msg=field)
    assert pooled.counts() == one.counts()


def test_label_fleet_equals_label_failures_on_rpm_drops() -> None:
    pieces = _pieces()
    pooled = label_fleet(pieces, CONFIG)
    assert sum(len(labels.episodes) for labels in pooled) > 5
    for frame, labels in zip(pieces, pooled, strict=True):
        _assert_same(labels, label_failures(frame, CONFIG))


@pytest.mark.parametrize("window", [30, 240])
def test_label_fleet_equals_label_failures_on_recorded_events(window: int) -> None:
    config = LabelingConfig(window_minutes=window)
    pieces = _pieces()
    rng = np.random.default_rng(2)
    events = []
    for i, frame in enumerate(pieces):
        t = timestamps_ns(frame)
        drops = t[frame[RPM_VARIATION].to_numpy() <= -30]
        # Some at readings, some between, one twice, some before or after the piece; none for every 4th.
        chosen = np.r_[drops[:2], t[0], t[len(t) // 2] + 17, t[-1] + 10**12, t[0] - 10**11]
        chosen = np.r_[chosen, chosen[:1]] if i % 4 else np.array([], dtype=np.int64)
        events.append(rng.permutation(chosen).astype(np.int64))
    pooled = label_fleet(pieces, config, events)
    for frame, recorded, labels in zip(pieces, events, pooled, strict=True):
        _assert_same(labels, label_failures(frame, config, recorded))
