"""Synthetic *processed telemetry* for a fleet of motor pumps, for demos, tests and benchmarks.

The generator stands in for the real data lake so that the training pipeline can be exercised end to end
without customer data. It is pure numpy/pandas (no I/O, no AWS), fully vectorized over time, and uses only
``numpy.random.default_rng`` seeded from the ``seed`` argument: the same arguments always give identical
frames, and nothing touches global random state. The data depend on ``seed`` only; the machine name is a
label, so use :func:`generate_fleet` to get machines that differ from one another.

Data contract of ``DemoMachine.telemetry`` (one row per reading)
------------------------------------------------------------------
``timestamp``
    ``datetime64[ns, UTC]``, strictly increasing. Nominal cadence is one reading per minute starting at
    ``start``, each reading jittered by up to +/-10 s (never before ``start``), so consecutive readings are
    40-80 s apart except across gaps. Gaps (sensor outages, no rows at all) cover about ``gap_fraction`` of
    the period in chunks of 5-180 minutes. Never NaN.
``Eng_RPM`` (rpm)
    Nominal speed 1700-1800 rpm (fixed per machine), slow daily load cycle, slow drift and noise.
``Eng_RPM_variation_percentage`` (%)
    ``100 * (Eng_RPM - nominal) / nominal``, exactly consistent with ``Eng_RPM`` (so the nominal speed can be
    recovered as ``Eng_RPM / (1 + variation / 100)``). Normal operation stays within +/-5 %; outside failure
    downtime it never goes below -15 %. Never NaN, because it is what defines a failure.
``Motor_Temperature_C`` (degC, ~55-75 normal, daily cycle), ``Vibration_RMS_mm_s`` (mm/s, ~1.5-3 normal),
``Discharge_Pressure_bar`` (~6-8), ``Flow_m3_h`` (~100-140), ``Motor_Current_A`` (~40-55)
    Flow and pressure follow the pump affinity laws (flow ~ speed, pressure ~ speed squared), so they
    collapse with the speed during a failure.
All sensor columns are float64; about 0.05 % of individual values (not ``timestamp``, not the variation)
are NaN, to mimic single-reading dropouts that the pipeline must tolerate.

Failures (the ground truth a model must learn to predict)
---------------------------------------------------------
* ``failures_per_30_days`` per machine on average, at random times at least 12 hours apart and none in the
  first 6 hours (so every failure has a full, observable history).
* Each failure is preceded by a build-up of 60-240 minutes: vibration rises to 1.8x-3.5x normal,
  temperature by 5-15 degC, current by 5-12 %, pressure and flow fall a little, and the speed variation gets
  noisier with a slight negative drift (it stays above -15 %). The ramp is convex (quadratic), so it is
  strongest in the last 30 minutes; per-reading noise keeps it from being trivially separable.
* At the onset the variation drops to -40..-95 % and stays down for 10-120 minutes (downtime), then the
  machine recovers within a few minutes and everything returns to normal (the repair removes the build-up).
* ``DemoMachine.failure_onsets`` holds the timestamp of each onset row: the first row of the episode whose
  variation is <= -30 %. Gaps never cover an onset, the hour before it or its downtime, and every run of
  consecutive rows <= -30 % starts at a returned onset, so labels can be derived from the variation alone.
* Decoys keep a model honest: a few episodes per 30 days of raised vibration and/or temperature that are not
  followed by a failure, and brief speed dips to -5..-12 % that are not failures either.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from modelforge.domain.units import MINUTE_NS

__all__ = [
    "TELEMETRY_SENSOR_COLUMNS",
    "DemoMachine",
    "demo_machine_names",
    "generate_fleet",
    "generate_machine_telemetry",
]

TELEMETRY_SENSOR_COLUMNS: tuple[str, ...] = (
    "Eng_RPM",
    "Eng_RPM_variation_percentage",
    "Motor_Temperature_C",
    "Vibration_RMS_mm_s",
    "Discharge_Pressure_bar",
    "Flow_m3_h",
    "Motor_Current_A",
)

_VARIATION = "Eng_RPM_variation_percentage"
_MINUTES_PER_DAY = 1440
_MAX_JITTER_MS = 10_000

# Failure timing.
_FIRST_FAILURE_MINUTE = 6 * 60
_MIN_FAILURE_SPACING_MINUTES = 12 * 60
_BUILDUP_MINUTES = (60, 240)
_DOWNTIME_MINUTES = (10, 120)
_RECOVERY_MINUTES = (2, 8)
_FAILURE_DEPTH_PCT = (-95.0, -40.0)
# Downtime values are kept strictly below the failure threshold so one failure is exactly one run <= -30 %.
_DOWNTIME_CEILING_PCT = -31.0
# Anything that is not a failure stays strictly above this, well clear of the -30 % failure threshold.
_NON_FAILURE_FLOOR_PCT = -14.5
_NORMAL_LIMIT_PCT = 5.0
# Gaps never hide the hour before an onset nor the downtime: the ground truth and its lead-up stay observable.
_PROTECTED_MINUTES_BEFORE_ONSET = 60

# Decoys and dips.
_DECOY_EPISODES_PER_30_DAYS = 4.0
_DECOY_MINUTES = (30, 180)
_RPM_DIPS_PER_30_DAYS = 8.0
_RPM_DIP_MINUTES = (1, 5)
_RPM_DIP_DEPTH_PCT = (-12.0, -5.0)
# Decoys must not sit in a failure's lead-up, or they would be (correctly) labelled pre-failure.
_DECOY_CLEARANCE_BEFORE_FAILURE_MINUTES = 6 * 60

# Outages.
_GAP_MINUTES = (5, 180)
_MAX_GAP_FRACTION = 0.5
_DROPOUT_FRACTION = 0.0005

_PLACEMENT_ATTEMPTS = 1000


@dataclass(frozen=True)
class DemoMachine:
    """One machine's telemetry plus the ground truth it was generated from."""

    machine_name: str
    telemetry: pd.DataFrame
    failure_onsets: tuple[pd.Timestamp, ...]


@dataclass(frozen=True)
class _Profile:
    """Per-machine operating point: machines in a fleet are similar but not identical."""

    nominal_rpm: float
    temperature_c: float
    vibration_mm_s: float
    pressure_bar: float
    flow_m3_h: float
    current_a: float
    load_peak_hour: float


@dataclass(frozen=True)
class _Failure:
    onset: int  # minute index of the first failed reading
    buildup: int
    downtime: int
    recovery: int


@dataclass
class _Effects:
    """Deviations from normal operation, composed onto the baseline at the end."""

    variation: np.ndarray  # absolute speed variation in %, already including normal operation
    vibration_factor: np.ndarray
    temperature_add: np.ndarray
    current_factor: np.ndarray
    pressure_add: np.ndarray
    flow_factor: np.ndarray


def demo_machine_names(count: int = 10) -> list[str]:
    """``["MOTOBOMBA-001", ..., "MOTOBOMBA-<count>"]``."""
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    return [f"MOTOBOMBA-{i:03d}" for i in range(1, count + 1)]


def generate_fleet(
    machine_names: Sequence[str],
    *,
    start: pd.Timestamp | str = "2025-01-01",
    days: float = 60,
    seed: int = 0,
    **kwargs: float,
) -> list[DemoMachine]:
    """Telemetry for several machines over the same period.

    Each machine's seed is derived from ``(seed, index)`` through ``numpy.random.SeedSequence``, so machines
    differ from one another while the whole fleet is reproducible from one seed. ``kwargs`` are passed on to
    :func:`generate_machine_telemetry`.
    """
    return [
        generate_machine_telemetry(name, start=start, days=days, seed=_derive_seed(seed, index), **kwargs)
        for index, name in enumerate(machine_names)
    ]


def generate_machine_telemetry(
    machine_name: str,
    *,
    start: pd.Timestamp | str = "2025-01-01",
    days: float = 60,
    seed: int = 0,
    failures_per_30_days: float = 6.0,
    gap_fraction: float = 0.01,
) -> DemoMachine:
    """Minute-level telemetry for one machine over ``days`` from ``start`` (see the module docstring)."""
    _validate(machine_name, days, failures_per_30_days, gap_fraction)
    start_utc = _as_utc(start)
    n_minutes = max(1, round(days * _MINUTES_PER_DAY))
    rng = np.random.default_rng(seed)

    profile = _draw_profile(rng)
    load = _daily_load(start_utc, n_minutes, profile.load_peak_hour)
    failures = _draw_failures(rng, n_minutes, failures_per_30_days * days / 30.0)

    effects = _normal_operation(rng, n_minutes, load)
    _add_rpm_dips(rng, effects, failures, days)
    _add_decoys(rng, effects, failures, days)
    _add_buildups(rng, effects, failures)
    # Only now can the non-failure floor be enforced: dips and build-ups both push the variation down.
    np.clip(effects.variation, _NON_FAILURE_FLOOR_PCT, _NORMAL_LIMIT_PCT, out=effects.variation)
    _add_downtimes(rng, effects, failures)

    sensors = _compose_sensors(rng, profile, load, effects)
    kept = _kept_minutes(rng, n_minutes, gap_fraction, failures)
    timestamps = _timestamps(rng, start_utc, n_minutes)[kept]
    telemetry = _to_frame(rng, timestamps, {name: values[kept] for name, values in sensors.items()})

    onset_rows = np.searchsorted(kept, [f.onset for f in failures])
    onsets = tuple(telemetry["timestamp"].iloc[row] for row in onset_rows)
    return DemoMachine(machine_name=machine_name, telemetry=telemetry, failure_onsets=onsets)


# --- set-up ---------------------------------------------------------------------------------------------


def _validate(machine_name: str, days: float, failures_per_30_days: float, gap_fraction: float) -> None:
    if not machine_name:
        raise ValueError("machine_name must not be empty")
    if not days > 0:
        raise ValueError(f"days must be > 0, got {days}")
    if not failures_per_30_days >= 0:
        raise ValueError(f"failures_per_30_days must be >= 0, got {failures_per_30_days}")
    if not 0 <= gap_fraction <= _MAX_GAP_FRACTION:
        raise ValueError(f"gap_fraction must be in [0, {_MAX_GAP_FRACTION}], got {gap_fraction}")


def _as_utc(start: pd.Timestamp | str) -> pd.Timestamp:
    ts = pd.Timestamp(start)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _derive_seed(seed: int, index: int) -> int:
    # SeedSequence keeps sibling machines statistically independent, which seed + index would not.
    high, low = np.random.SeedSequence((seed, index)).generate_state(2, dtype=np.uint32)
    return (int(high) << 32) | int(low)


def _stochastic_count(rng: np.random.Generator, expected: float) -> int:
    # Rounding up with probability equal to the fraction keeps the mean exact with far less spread than
    # Poisson, so every demo machine of a reasonable length actually has failures.
    whole = int(np.floor(expected))
    return whole + int(rng.random() < expected - whole)


def _uniform_int(rng: np.random.Generator, bounds: tuple[int, int], size: int | None = None) -> np.ndarray:
    return rng.integers(bounds[0], bounds[1] + 1, size=size)


def _draw_profile(rng: np.random.Generator) -> _Profile:
    return _Profile(
        nominal_rpm=float(rng.uniform(1700.0, 1800.0)),
        temperature_c=float(rng.uniform(61.0, 67.0)),
        vibration_mm_s=float(rng.uniform(1.9, 2.4)),
        pressure_bar=float(rng.uniform(6.7, 7.3)),
        flow_m3_h=float(rng.uniform(112.0, 128.0)),
        current_a=float(rng.uniform(45.0, 49.0)),
        load_peak_hour=float(rng.uniform(13.0, 17.0)),
    )


def _daily_load(start: pd.Timestamp, n_minutes: int, peak_hour: float) -> np.ndarray:
    """Demand in [-1, 1], peaking in the afternoon (UTC clock time), which drives all the daily cycles."""
    start_minute_of_day = start.hour * 60 + start.minute + start.second / 60.0
    hour_of_day = ((start_minute_of_day + np.arange(n_minutes)) % _MINUTES_PER_DAY) / 60.0
    return np.cos(2.0 * np.pi * (hour_of_day - peak_hour) / 24.0)


def _slow_noise(rng: np.random.Generator, n_minutes: int, knot_minutes: int, scale: float) -> np.ndarray:
    """Smooth random drift: Gaussian knots every ``knot_minutes``, linearly interpolated (cheap)."""
    n_knots = n_minutes // knot_minutes + 2
    knots = rng.normal(0.0, scale, n_knots)
    return np.interp(np.arange(n_minutes), np.arange(n_knots) * knot_minutes, knots)


def _draw_failures(rng: np.random.Generator, n_minutes: int, expected: float) -> list[_Failure]:
    last_onset = n_minutes - 1
    if last_onset < _FIRST_FAILURE_MINUTE:
        return []
    span = last_onset - _FIRST_FAILURE_MINUTE
    count = min(_stochastic_count(rng, expected), span // _MIN_FAILURE_SPACING_MINUTES + 1)
    if count == 0:
        return []
    # Uniform positions in the span left after reserving the minimum spacing, then re-inflated by it:
    # this enforces the spacing without rejection sampling.
    slack = span - (count - 1) * _MIN_FAILURE_SPACING_MINUTES
    offsets = np.sort(rng.integers(0, slack + 1, size=count))
    onsets = _FIRST_FAILURE_MINUTE + offsets + np.arange(count) * _MIN_FAILURE_SPACING_MINUTES
    buildups = _uniform_int(rng, _BUILDUP_MINUTES, count)
    downtimes = _uniform_int(rng, _DOWNTIME_MINUTES, count)
    recoveries = _uniform_int(rng, _RECOVERY_MINUTES, count)
    return [
        _Failure(onset=int(o), buildup=int(b), downtime=int(d), recovery=int(r))
        for o, b, d, r in zip(onsets, buildups, downtimes, recoveries, strict=True)
    ]


def _place_windows(
    rng: np.random.Generator, blocked: np.ndarray, lengths: np.ndarray, margin: int
) -> list[tuple[int, int]]:
    """Random non-overlapping ``(start, length)`` windows avoiding ``blocked`` (updated in place).

    ``margin`` free minutes are required on each side so that neighbouring windows never merge. Windows that
    cannot be placed after a bounded number of attempts are dropped rather than looping forever.
    """
    n = blocked.size
    placed: list[tuple[int, int]] = []
    for length in (int(v) for v in lengths):
        if length + 2 * margin > n:
            continue
        for _ in range(_PLACEMENT_ATTEMPTS):
            begin = int(rng.integers(margin, n - length - margin + 1))
            if not blocked[begin - margin : begin + length + margin].any():
                blocked[begin : begin + length] = True
                placed.append((begin, length))
                break
    return placed


def _failure_block(n_minutes: int, failures: list[_Failure], before: int, after: int) -> np.ndarray:
    blocked = np.zeros(n_minutes, dtype=bool)
    for f in failures:
        blocked[max(0, f.onset - before) : f.onset + f.downtime + f.recovery + after] = True
    return blocked


# --- signal effects -------------------------------------------------------------------------------------


def _normal_operation(rng: np.random.Generator, n_minutes: int, load: np.ndarray) -> _Effects:
    variation = 1.2 * load + _slow_noise(rng, n_minutes, 90, 0.5) + rng.normal(0.0, 0.4, n_minutes)
    return _Effects(
        variation=np.clip(variation, -_NORMAL_LIMIT_PCT, _NORMAL_LIMIT_PCT),
        vibration_factor=np.ones(n_minutes),
        temperature_add=np.zeros(n_minutes),
        current_factor=np.ones(n_minutes),
        pressure_add=np.zeros(n_minutes),
        flow_factor=np.ones(n_minutes),
    )


def _add_rpm_dips(rng: np.random.Generator, effects: _Effects, failures: list[_Failure], days: float) -> None:
    """Brief speed sags (grid dips, valve operations): a low speed alone must not mean failure."""
    n_minutes = effects.variation.size
    count = _stochastic_count(rng, _RPM_DIPS_PER_30_DAYS * days / 30.0)
    blocked = _failure_block(n_minutes, failures, before=_BUILDUP_MINUTES[1] + 10, after=10)
    for begin, length in _place_windows(rng, blocked, _uniform_int(rng, _RPM_DIP_MINUTES, count), margin=30):
        depth = rng.uniform(*_RPM_DIP_DEPTH_PCT)
        values = depth + rng.normal(0.0, 0.5, length)
        effects.variation[begin : begin + length] = np.clip(values, *_RPM_DIP_DEPTH_PCT)


def _add_decoys(rng: np.random.Generator, effects: _Effects, failures: list[_Failure], days: float) -> None:
    """Raised vibration and/or temperature that subsides on its own, e.g. cavitation or a hot afternoon."""
    n_minutes = effects.variation.size
    count = _stochastic_count(rng, _DECOY_EPISODES_PER_30_DAYS * days / 30.0)
    blocked = _failure_block(n_minutes, failures, before=_DECOY_CLEARANCE_BEFORE_FAILURE_MINUTES, after=60)
    for begin, length in _place_windows(rng, blocked, _uniform_int(rng, _DECOY_MINUTES, count), margin=60):
        window = slice(begin, begin + length)
        bump = np.sin(np.pi * (np.arange(length) + 0.5) / length)  # rises and subsides, no cliff at the end
        kind = rng.random()
        # Mostly single-sensor episodes; some hit both so that two raised signals are not a giveaway either.
        if kind < 0.6:
            effects.vibration_factor[window] *= 1.0 + rng.uniform(0.5, 1.8) * bump
        if kind >= 0.4:
            effects.temperature_add[window] += rng.uniform(5.0, 12.0) * bump


def _add_buildups(rng: np.random.Generator, effects: _Effects, failures: list[_Failure]) -> None:
    """The degradation a model must pick up: every sensor drifts together, strongest just before the onset."""
    for f in failures:
        window = slice(f.onset - f.buildup, f.onset)
        ramp = (np.arange(1, f.buildup + 1) / f.buildup) ** 2  # convex: weak early, strong in the last 30 min
        effects.vibration_factor[window] *= (1.0 + rng.uniform(0.8, 2.5) * ramp) * np.exp(
            rng.normal(0.0, 0.12, f.buildup) * ramp
        )
        effects.temperature_add[window] += (rng.uniform(5.0, 15.0) + rng.normal(0.0, 0.8, f.buildup)) * ramp
        effects.current_factor[window] *= 1.0 + rng.uniform(0.05, 0.12) * ramp
        effects.pressure_add[window] -= rng.uniform(0.2, 0.6) * ramp
        effects.flow_factor[window] *= 1.0 - rng.uniform(0.03, 0.08) * ramp
        effects.variation[window] += -rng.uniform(1.0, 4.0) * ramp + rng.normal(0.0, 1.5, f.buildup) * ramp


def _add_downtimes(rng: np.random.Generator, effects: _Effects, failures: list[_Failure]) -> None:
    """The failure itself: a sharp speed collapse, a short stall, then a repaired machine ramping back up."""
    n_minutes = effects.variation.size
    for f in failures:
        depth = rng.uniform(*_FAILURE_DEPTH_PCT)
        down = slice(f.onset, min(f.onset + f.downtime, n_minutes))
        down_len = down.stop - down.start
        effects.variation[down] = np.clip(
            depth + rng.normal(0.0, 1.5, down_len), _FAILURE_DEPTH_PCT[0] - 4.0, _DOWNTIME_CEILING_PCT
        )
        # A stalled, damaged pump: erratic high vibration and overload current while it limps along.
        effects.vibration_factor[down] *= rng.uniform(1.8, 3.5) * rng.uniform(0.6, 1.4, down_len)
        effects.current_factor[down] *= rng.uniform(1.15, 1.35)
        effects.temperature_add[down] += rng.uniform(8.0, 15.0)

        recovery = slice(down.stop, min(down.stop + f.recovery, n_minutes))
        weight = np.arange(1, recovery.stop - recovery.start + 1) / (f.recovery + 1)
        ramp = depth * (1.0 - weight) + effects.variation[recovery] * weight
        # Monotone recovery: once the speed is back above -30 % it must not cross again, or one failure would
        # read as two episodes.
        effects.variation[recovery] = np.maximum.accumulate(ramp) if ramp.size else ramp

        # The motor cools down over the next hour or so instead of snapping back to normal.
        cool = slice(recovery.start, min(recovery.start + 120, n_minutes))
        heat = effects.temperature_add[f.onset] if f.onset < n_minutes else 0.0
        effects.temperature_add[cool] += heat * np.exp(-np.arange(cool.stop - cool.start) / 25.0)


def _compose_sensors(
    rng: np.random.Generator, profile: _Profile, load: np.ndarray, effects: _Effects
) -> dict[str, np.ndarray]:
    n = load.size
    speed_ratio = 1.0 + effects.variation / 100.0
    # Temperature lags demand by about two hours (thermal mass).
    lagged_load = np.roll(load, 120)
    temperature = (
        profile.temperature_c
        + 3.0 * lagged_load
        + _slow_noise(rng, n, 240, 1.0)
        + effects.temperature_add
        + rng.normal(0.0, 0.4, n)
    )
    vibration = (
        profile.vibration_mm_s
        * (1.0 + 0.05 * load)
        * effects.vibration_factor
        * np.exp(rng.normal(0.0, 0.07, n))
    )
    pressure = (
        profile.pressure_bar * speed_ratio**2 * (1.0 - 0.02 * load)
        + effects.pressure_add
        + rng.normal(0.0, 0.06, n)
    )
    flow = profile.flow_m3_h * speed_ratio * (1.0 + 0.04 * load) * effects.flow_factor
    flow += rng.normal(0.0, 1.5, n)
    current = profile.current_a * (1.0 + 0.04 * load) * effects.current_factor + rng.normal(0.0, 0.5, n)
    return {
        "Eng_RPM": profile.nominal_rpm * speed_ratio,
        _VARIATION: effects.variation,
        "Motor_Temperature_C": temperature,
        "Vibration_RMS_mm_s": vibration,
        "Discharge_Pressure_bar": np.maximum(pressure, 0.0),
        "Flow_m3_h": np.maximum(flow, 0.0),
        "Motor_Current_A": current,
    }


# --- sampling into rows ---------------------------------------------------------------------------------


def _kept_minutes(
    rng: np.random.Generator, n_minutes: int, gap_fraction: float, failures: list[_Failure]
) -> np.ndarray:
    """Minute indices that have a reading, after carving out sensor outages."""
    target = round(gap_fraction * n_minutes)
    lengths: list[int] = []
    total = 0
    while total < target:
        lengths.append(int(_uniform_int(rng, _GAP_MINUTES)))
        total += lengths[-1]
    if lengths:
        # Trim the last chunk so coverage matches the target, without going under the minimum chunk size.
        lengths[-1] = max(_GAP_MINUTES[0], lengths[-1] - (total - target))
    blocked = np.zeros(n_minutes, dtype=bool)
    for f in failures:
        blocked[max(0, f.onset - _PROTECTED_MINUTES_BEFORE_ONSET) : f.onset + f.downtime] = True
    gap = np.zeros(n_minutes, dtype=bool)
    for begin, length in _place_windows(rng, blocked, np.asarray(lengths, dtype=np.int64), margin=1):
        gap[begin : begin + length] = True
    return np.flatnonzero(~gap)


def _timestamps(rng: np.random.Generator, start: pd.Timestamp, n_minutes: int) -> np.ndarray:
    """Nanosecond epoch times of every nominal minute, jittered by whole milliseconds."""
    jitter_ms = rng.integers(-_MAX_JITTER_MS, _MAX_JITTER_MS + 1, size=n_minutes)
    jitter_ms[0] = abs(jitter_ms[0])  # nothing before ``start``
    # +/-10 s jitter on a 60 s grid keeps consecutive readings >= 40 s apart: strictly increasing by design.
    return start.value + np.arange(n_minutes, dtype=np.int64) * MINUTE_NS + jitter_ms * 1_000_000


def _to_frame(
    rng: np.random.Generator, timestamps_ns: np.ndarray, sensors: dict[str, np.ndarray]
) -> pd.DataFrame:
    n_rows = timestamps_ns.size
    columns: dict[str, object] = {"timestamp": pd.to_datetime(timestamps_ns, unit="ns", utc=True)}
    for name in TELEMETRY_SENSOR_COLUMNS:
        values = np.asarray(sensors[name], dtype=np.float64).copy()
        if name != _VARIATION:
            values[rng.random(n_rows) < _DROPOUT_FRACTION] = np.nan
        columns[name] = values
    return pd.DataFrame(columns)
