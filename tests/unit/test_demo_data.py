"""Contract tests for the synthetic pump telemetry (localcloud.demo_data)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from localcloud.demo_data import (
    TELEMETRY_SENSOR_COLUMNS,
    DemoMachine,
    demo_machine_names,
    generate_fleet,
    generate_machine_telemetry,
)

VARIATION = "Eng_RPM_variation_percentage"
FAILURE_THRESHOLD = -30.0
DAYS = 60
ONE_MINUTE = pd.Timedelta(minutes=1)


@pytest.fixture(scope="module")
def machine() -> DemoMachine:
    return generate_machine_telemetry("MOTOBOMBA-001", days=DAYS, seed=7)


def _failure_mask(frame: pd.DataFrame) -> pd.Series:
    return frame[VARIATION] <= FAILURE_THRESHOLD


def _run_starts(frame: pd.DataFrame) -> pd.Series:
    """Timestamps of the first row of every run of consecutive rows at or below the failure threshold."""
    failed = _failure_mask(frame)
    starts = failed & ~failed.shift(1, fill_value=False)
    return frame.loc[starts, "timestamp"]


def _minutes_to_nearest_onset(frame: pd.DataFrame, onsets: tuple[pd.Timestamp, ...]) -> pd.Series:
    """Signed minutes from each row to the closest onset (negative = before it)."""
    ts = frame["timestamp"].to_numpy(dtype="datetime64[ns]")
    marks = pd.DatetimeIndex(onsets).tz_convert(None).to_numpy(dtype="datetime64[ns]")
    deltas = (ts[:, None] - marks[None, :]) / np.timedelta64(1, "m")
    closest = np.abs(deltas).argmin(axis=1)
    return pd.Series(deltas[np.arange(len(ts)), closest], index=frame.index)


# --- names, determinism, schema -------------------------------------------------------------------------


def test_demo_machine_names() -> None:
    assert demo_machine_names(3) == ["MOTOBOMBA-001", "MOTOBOMBA-002", "MOTOBOMBA-003"]
    assert demo_machine_names()[-1] == "MOTOBOMBA-010"
    assert len(demo_machine_names()) == 10
    assert demo_machine_names(0) == []


def test_same_seed_gives_identical_output() -> None:
    first = generate_machine_telemetry("MOTOBOMBA-001", days=5, seed=42)
    second = generate_machine_telemetry("MOTOBOMBA-001", days=5, seed=42)
    pd.testing.assert_frame_equal(first.telemetry, second.telemetry)
    assert first.failure_onsets == second.failure_onsets


def test_different_seeds_differ() -> None:
    first = generate_machine_telemetry("MOTOBOMBA-001", days=5, seed=1)
    second = generate_machine_telemetry("MOTOBOMBA-001", days=5, seed=2)
    assert not first.telemetry.equals(second.telemetry)
    assert not np.allclose(first.telemetry["Eng_RPM"].iloc[:100], second.telemetry["Eng_RPM"].iloc[:100])


def test_columns_and_dtypes(machine: DemoMachine) -> None:
    frame = machine.telemetry
    assert machine.machine_name == "MOTOBOMBA-001"
    assert list(frame.columns) == ["timestamp", *TELEMETRY_SENSOR_COLUMNS]
    assert isinstance(frame["timestamp"].dtype, pd.DatetimeTZDtype)
    assert str(frame["timestamp"].dt.tz) == "UTC"
    for column in TELEMETRY_SENSOR_COLUMNS:
        assert frame[column].dtype == np.float64, column


def test_timestamps_strictly_increasing_and_jittered(machine: DemoMachine) -> None:
    ts = machine.telemetry["timestamp"]
    steps = ts.diff().dropna().dt.total_seconds()
    assert (steps > 0).all()
    assert ts.iloc[0] >= pd.Timestamp("2025-01-01", tz="UTC")
    assert ts.iloc[-1] < pd.Timestamp("2025-01-01", tz="UTC") + pd.Timedelta(days=DAYS)
    regular = steps[steps < 100]
    # +/-10 s jitter around a 60 s cadence.
    assert regular.min() >= 40 and regular.max() <= 80
    assert regular.std() > 3
    assert (ts.dt.second != 0).mean() > 0.5


def test_start_accepts_timestamps_in_other_time_zones() -> None:
    start = pd.Timestamp("2025-03-01 12:00", tz="America/Sao_Paulo")
    frame = generate_machine_telemetry("MOTOBOMBA-001", start=start, days=1, seed=0).telemetry
    assert str(frame["timestamp"].dt.tz) == "UTC"
    first = frame["timestamp"].iloc[0]
    assert pd.Timestamp("2025-03-01 15:00", tz="UTC") <= first < pd.Timestamp("2025-03-01 15:00:11", tz="UTC")


def test_dropouts_are_rare_and_never_in_timestamp_or_variation(machine: DemoMachine) -> None:
    frame = machine.telemetry
    assert frame["timestamp"].notna().all()
    assert frame[VARIATION].notna().all()
    nan_fraction = frame[list(TELEMETRY_SENSOR_COLUMNS)].drop(columns=VARIATION).isna().mean()
    assert (nan_fraction > 0).all()
    assert (nan_fraction < 0.002).all()


# --- cadence and gaps -----------------------------------------------------------------------------------


def test_row_count_accounts_for_gaps(machine: DemoMachine) -> None:
    expected = DAYS * 1440 * (1 - 0.01)
    assert abs(len(machine.telemetry) - expected) / expected < 0.02


def test_gaps_exist_in_expected_chunks(machine: DemoMachine) -> None:
    steps_min = machine.telemetry["timestamp"].diff().dropna().dt.total_seconds() / 60
    gaps = steps_min[steps_min > 2]
    assert len(gaps) >= 3
    # A gap of k missing minutes shows up as a step of about k + 1 minutes.
    assert gaps.min() >= 5
    assert gaps.max() <= 181 + 1
    missing_minutes = (gaps - 1).sum()
    assert 0.005 < missing_minutes / (DAYS * 1440) < 0.02


def test_gap_fraction_zero_has_no_gaps() -> None:
    frame = generate_machine_telemetry("MOTOBOMBA-001", days=3, seed=0, gap_fraction=0).telemetry
    assert len(frame) == 3 * 1440
    assert frame["timestamp"].diff().max() < pd.Timedelta(seconds=81)


# --- speed and sensor ranges ----------------------------------------------------------------------------


def test_variation_is_consistent_with_rpm(machine: DemoMachine) -> None:
    frame = machine.telemetry.dropna(subset=["Eng_RPM"])
    nominal = frame["Eng_RPM"] / (1 + frame[VARIATION] / 100)
    assert 1700 <= nominal.iloc[0] <= 1800
    np.testing.assert_allclose(nominal, nominal.iloc[0], rtol=1e-9)
    recomputed = 100 * (frame["Eng_RPM"] - nominal.iloc[0]) / nominal.iloc[0]
    np.testing.assert_allclose(recomputed, frame[VARIATION], atol=1e-8)


def test_nominal_speed_varies_between_machines() -> None:
    fleet = generate_fleet(demo_machine_names(5), days=1, seed=3)
    nominals = [float((m.telemetry["Eng_RPM"] / (1 + m.telemetry[VARIATION] / 100)).median()) for m in fleet]
    assert all(1700 <= value <= 1800 for value in nominals)
    assert max(nominals) - min(nominals) > 5


def test_variation_bounds_outside_failures(machine: DemoMachine) -> None:
    frame = machine.telemetry
    outside = frame.loc[~_failure_mask(frame), VARIATION]
    assert outside.min() > -30  # recovery ramp only; real operation checked below
    assert frame[VARIATION].max() <= 5.0

    to_onset = _minutes_to_nearest_onset(frame, machine.failure_onsets)
    # Far from any failure episode (its build-up, downtime and recovery), nothing goes below -15 %.
    quiet = frame.loc[(to_onset < -250) | (to_onset > 140), VARIATION]
    assert quiet.min() > -15
    assert (quiet.abs() <= 5).mean() > 0.99


def test_normal_sensor_ranges(machine: DemoMachine) -> None:
    frame = machine.telemetry
    to_onset = _minutes_to_nearest_onset(frame, machine.failure_onsets)
    quiet = frame.loc[(to_onset < -250) | (to_onset > 240)]
    expected_medians = {
        "Eng_RPM": (1690, 1810),
        "Motor_Temperature_C": (55, 75),
        "Vibration_RMS_mm_s": (1.5, 3.0),
        "Discharge_Pressure_bar": (6.0, 8.0),
        "Flow_m3_h": (100, 140),
        "Motor_Current_A": (40, 55),
    }
    for column, (low, high) in expected_medians.items():
        assert low <= quiet[column].median() <= high, column
        assert quiet[column].quantile(0.01) > 0.9 * low, column


# --- failures -------------------------------------------------------------------------------------------


def test_failure_count_spacing_and_position(machine: DemoMachine) -> None:
    onsets = pd.DatetimeIndex(machine.failure_onsets)
    assert 8 <= len(onsets) <= 16  # 6 per 30 days on average over 60 days
    assert onsets.is_monotonic_increasing
    assert (onsets.to_series().diff().dropna() >= pd.Timedelta(hours=12) - pd.Timedelta(seconds=20)).all()
    assert onsets[0] >= pd.Timestamp("2025-01-01 06:00", tz="UTC") - pd.Timedelta(seconds=10)


def _assert_clean_ground_truth(machine: DemoMachine) -> None:
    frame = machine.telemetry.reset_index(drop=True)
    for onset in machine.failure_onsets:
        rows = frame.index[frame["timestamp"] == onset]
        assert len(rows) == 1, onset
        row = rows[0]
        assert frame.at[row, VARIATION] <= FAILURE_THRESHOLD
        assert frame.at[row, VARIATION] > -100
        if row > 0 and frame.at[row, "timestamp"] - frame.at[row - 1, "timestamp"] <= pd.Timedelta(minutes=5):
            assert frame.at[row - 1, VARIATION] > FAILURE_THRESHOLD
    # No failure-like run that is not a returned episode (and no returned episode without a run).
    assert list(_run_starts(frame)) == list(machine.failure_onsets)


def test_onsets_are_the_first_failed_row_of_each_episode(machine: DemoMachine) -> None:
    _assert_clean_ground_truth(machine)


def test_dense_failures_and_outages_keep_the_ground_truth_clean() -> None:
    days = 20
    dense = generate_machine_telemetry(
        "MOTOBOMBA-001", days=days, seed=5, failures_per_30_days=45, gap_fraction=0.2
    )
    onsets = pd.DatetimeIndex(dense.failure_onsets)
    assert len(onsets) == 30
    assert (onsets.to_series().diff().dropna() >= pd.Timedelta(hours=12) - pd.Timedelta(seconds=20)).all()
    expected_rows = days * 1440 * (1 - 0.2)
    assert abs(len(dense.telemetry) - expected_rows) / expected_rows < 0.02
    _assert_clean_ground_truth(dense)
    # Outages never hide the hour before an onset: its rows are all there, a minute apart.
    ts = dense.telemetry["timestamp"]
    for onset in onsets:
        lead_up = ts[(ts >= onset - pd.Timedelta(minutes=60)) & (ts <= onset)]
        assert len(lead_up) >= 60, onset
        assert lead_up.diff().max() < pd.Timedelta(seconds=81), onset


def test_failure_count_is_capped_by_minimum_spacing() -> None:
    crowded = generate_machine_telemetry("MOTOBOMBA-001", days=5, seed=0, failures_per_30_days=1000)
    onsets = pd.DatetimeIndex(crowded.failure_onsets)
    # 5 days minus the first 6 hours leave room for at most 10 onsets 12 hours apart.
    assert len(onsets) == 10
    assert (onsets.to_series().diff().dropna() >= pd.Timedelta(hours=12) - pd.Timedelta(seconds=20)).all()
    _assert_clean_ground_truth(crowded)


def test_failure_depth_and_downtime(machine: DemoMachine) -> None:
    frame = machine.telemetry
    failed = _failure_mask(frame)
    run_id = (failed & ~failed.shift(1, fill_value=False)).cumsum()[failed]
    runs = frame.loc[failed].groupby(run_id)
    depth = runs[VARIATION].median()
    assert ((depth >= -99) & (depth <= -38)).all()
    duration_min = runs["timestamp"].agg(lambda ts: (ts.iloc[-1] - ts.iloc[0]) / ONE_MINUTE)
    assert duration_min.min() >= 8
    assert duration_min.max() <= 120 + 8 + 180  # downtime + recovery ramp, plus a possible outage inside


def test_no_failures_when_rate_is_zero() -> None:
    result = generate_machine_telemetry("MOTOBOMBA-001", days=10, seed=0, failures_per_30_days=0)
    assert result.failure_onsets == ()
    assert not _failure_mask(result.telemetry).any()
    assert result.telemetry[VARIATION].min() > -15


def test_buildup_is_detectable_before_onsets(machine: DemoMachine) -> None:
    frame = machine.telemetry
    to_onset = _minutes_to_nearest_onset(frame, machine.failure_onsets)
    last_half_hour = frame[(to_onset >= -30) & (to_onset < 0)]
    quiet = frame[(to_onset < -300) | (to_onset > 240)]
    assert last_half_hour["Vibration_RMS_mm_s"].mean() > 1.5 * frame["Vibration_RMS_mm_s"].median()
    assert last_half_hour["Motor_Temperature_C"].mean() > quiet["Motor_Temperature_C"].median() + 4
    assert last_half_hour["Motor_Current_A"].mean() > 1.03 * quiet["Motor_Current_A"].median()
    # Noisier speed: minute-to-minute jumps, which the slow daily cycle does not inflate.
    jumps = frame[VARIATION].diff().abs()
    assert jumps[last_half_hour.index].mean() > 2 * jumps[quiet.index].mean()
    # Strongest at the end: the half hour before the onset beats the half hour before that.
    earlier = frame[(to_onset >= -60) & (to_onset < -30)]
    assert last_half_hour["Vibration_RMS_mm_s"].mean() > earlier["Vibration_RMS_mm_s"].mean()
    assert last_half_hour[VARIATION].min() > -15


def test_decoys_and_dips_exist_away_from_failures(machine: DemoMachine) -> None:
    frame = machine.telemetry
    to_onset = _minutes_to_nearest_onset(frame, machine.failure_onsets)
    far = frame[(to_onset < -6 * 60) | (to_onset > 3 * 60)]
    vibration_decoys = far["Vibration_RMS_mm_s"] > 1.5 * frame["Vibration_RMS_mm_s"].median()
    temperature_decoys = far["Motor_Temperature_C"] > far["Motor_Temperature_C"].median() + 8
    assert vibration_decoys.sum() >= 10 or temperature_decoys.sum() >= 10
    assert (vibration_decoys | temperature_decoys).sum() >= 30
    dips = far[VARIATION].between(-12.5, -5)
    assert dips.sum() >= 3


# --- validation and fleet -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [{"days": 0}, {"days": -1}, {"failures_per_30_days": -1}, {"gap_fraction": -0.1}, {"gap_fraction": 0.9}],
)
def test_invalid_arguments_are_rejected(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        generate_machine_telemetry("MOTOBOMBA-001", **kwargs)


def test_fleet_is_distinct_and_reproducible() -> None:
    names = demo_machine_names(4)
    fleet = generate_fleet(names, days=2, seed=11)
    again = generate_fleet(names, days=2, seed=11)
    other = generate_fleet(names, days=2, seed=12)
    assert [m.machine_name for m in fleet] == names
    for first, second in zip(fleet, again, strict=True):
        pd.testing.assert_frame_equal(first.telemetry, second.telemetry)
        assert first.failure_onsets == second.failure_onsets
    rpm_heads = [tuple(m.telemetry["Eng_RPM"].iloc[:50].round(6)) for m in fleet]
    assert len(set(rpm_heads)) == len(names)
    assert not fleet[0].telemetry.equals(other[0].telemetry)


def test_fleet_passes_options_through() -> None:
    fleet = generate_fleet(demo_machine_names(2), days=3, seed=0, failures_per_30_days=0, gap_fraction=0)
    for m in fleet:
        assert m.failure_onsets == ()
        assert len(m.telemetry) == 3 * 1440


@pytest.mark.slow
def test_million_row_fleet() -> None:
    days = 1_000_000 / (10 * 1440 * 0.99)
    fleet = generate_fleet(demo_machine_names(10), days=days, seed=0)
    total = sum(len(m.telemetry) for m in fleet)
    assert abs(total - 1_000_000) < 10_000
    assert sum(len(m.failure_onsets) for m in fleet) > 100
