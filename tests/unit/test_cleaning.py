"""clean_fleet (one pooled pass over a fleet) returns, machine by machine, what clean_telemetry returns."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from modelforge.domain.cleaning import clean_fleet
from modelforge.domain.telemetry import RPM_VARIATION, ValidationConfig, clean_telemetry
from modelforge.errors import InsufficientDataError

CONFIG = ValidationConfig(min_rows=2)


def _machine(seed: int, rows: int = 40) -> pd.DataFrame:
    """Out of order, duplicate timestamps (one reading twice), missing keys, impossible readings."""
    rng = np.random.default_rng(seed)
    stamps = pd.Timestamp("2025-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 30, rows), unit="min")
    frame = pd.DataFrame({"timestamp": stamps, "Eng_RPM": rng.normal(1750, 5, rows),
                          RPM_VARIATION: rng.normal(0, 1, rows), "Motor_Temperature_C": rng.normal(60, 2, rows),
                          "note": "x"})
    frame.loc[1, RPM_VARIATION] = np.nan
    frame.loc[2, RPM_VARIATION] = 250.0
    frame.loc[3, "Motor_Temperature_C"] = 900.0
    frame.loc[4, "Eng_RPM"] = -5.0
    frame.loc[4, "Motor_Temperature_C"] = np.inf
    frame.loc[5, "timestamp"] = pd.NaT
    return frame


@pytest.mark.parametrize("require_rpm_variation", [True, False])
def test_clean_fleet_equals_machine_by_machine(require_rpm_variation: bool) -> None:
    frames = {f"PUMP-{i:03d}": _machine(i) for i in range(1, 6)}
    frames["PUMP-006"] = _machine(6).iloc[6:].reset_index(drop=True)  # no impossible value at all
    # As TelemetryStore reads them: the partition value, a categorical of the machine's own name.
    frames = {name: frame.assign(machine_name=pd.Categorical([name] * len(frame), categories=[name]))
              for name, frame in frames.items()}
    if not require_rpm_variation:
        frames = {name: frame.drop(columns=[RPM_VARIATION]) for name, frame in frames.items()}
    pooled = clean_fleet(frames, config=CONFIG, require_rpm_variation=require_rpm_variation)
    assert pooled is not None and list(pooled) == list(frames)
    for name, frame in frames.items():
        one = clean_telemetry(frame, machine_name=name, config=CONFIG, require_rpm_variation=require_rpm_variation)
        pd.testing.assert_frame_equal(pooled[name].frame, one.frame)
        assert dataclasses.replace(pooled[name], frame=None) == dataclasses.replace(one, frame=None)  # type: ignore[arg-type]
    assert pooled["PUMP-001"].rows_dropped_duplicate > 0 and pooled["PUMP-001"].impossible_by_column


def test_clean_fleet_raises_what_the_loop_raises() -> None:
    frames = {"PUMP-001": _machine(1), "PUMP-002": _machine(2, rows=8), "PUMP-003": _machine(3, rows=8)}
    strict = ValidationConfig(min_rows=20)
    with pytest.raises(InsufficientDataError) as one:
        for name, frame in frames.items():
            clean_telemetry(frame, machine_name=name, config=strict)
    with pytest.raises(InsufficientDataError) as pooled:
        clean_fleet(frames, config=strict)
    assert str(pooled.value) == str(one.value) and "PUMP-002" in str(one.value)


def test_clean_fleet_leaves_mixed_fleets_to_the_loop() -> None:
    uniform = {"A-1": _machine(1), "A-2": _machine(2)}
    assert clean_fleet({"A-1": _machine(1)}, config=CONFIG) is None  # one machine
    assert clean_fleet({**uniform, "A-3": _machine(3).drop(columns=["Eng_RPM"])}, config=CONFIG) is None
    assert clean_fleet({**uniform, "A-3": _machine(3).iloc[0:0]}, config=CONFIG) is None
    text = _machine(3).assign(timestamp=lambda f: f["timestamp"].astype(str))
    assert clean_fleet({**uniform, "A-3": text}, config=CONFIG) is None


def test_fingerprint_all_of_a_fleet_is_the_machine_by_machine_digest() -> None:
    import hashlib

    from modelforge.domain.pipeline import fingerprint_all

    frames = [clean_telemetry(_machine(i), machine_name=f"P-{i}", config=CONFIG).frame for i in range(1, 4)]
    digest = hashlib.sha256()
    for frame in frames:
        digest.update(repr([(str(c), str(d)) for c, d in frame.dtypes.items()]).encode())
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    assert fingerprint_all(frames) == digest.hexdigest()
    assert fingerprint_all(frames[:1]) != fingerprint_all(frames)
