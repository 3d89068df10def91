"""Where a job runs: the size estimate from manifests and auto's choice, on crafted manifests."""

from __future__ import annotations

import pytest

from modelforge.domain.compute import (
    BatchClass,
    Compute,
    ComputeConfig,
    SizeEstimate,
    choose_batch_class,
    choose_compute,
    estimate_size,
    features_per_sensor,
    large_class_cells,
    switch_cells,
    unavailable,
)
from modelforge.domain.features import FeatureConfig, feature_names

SENSORS = ["timestamp", "machine_name", "Eng_RPM", "Oil_Temp", "Vibration"]
WITH_BATCH = ComputeConfig(batch_available=True)


def test_features_per_sensor_matches_the_recipe() -> None:
    config = FeatureConfig()
    per_sensor = features_per_sensor(len(config.windows_minutes), len(config.statistics),
                                     config.trend_window_minutes is not None)
    assert per_sensor * 3 == len(feature_names(["a", "b", "c"], config))


def test_estimate_counts_rows_over_the_fleet_and_sensors_only() -> None:
    estimate = estimate_size([(1000, SENSORS), (500, SENSORS)], per_sensor=6, config=WITH_BATCH)
    assert (estimate.machines, estimate.rows, estimate.features) == (2, 1500, 18)
    assert estimate.cells == 1500 * 18
    bigger = estimate_size([(3000, SENSORS)], per_sensor=6, config=WITH_BATCH)
    assert bigger.peak_memory_mb > estimate.peak_memory_mb and bigger.seconds > estimate.seconds


def test_auto_picks_the_lambda_below_the_switch_and_batch_above() -> None:
    cells = switch_cells(WITH_BATCH)
    per_sensor = 6
    rows_below = int(cells * 0.9) // (3 * per_sensor)
    rows_above = int(cells * 1.1) // (3 * per_sensor)
    small = choose_compute(Compute.AUTO, estimate_size([(rows_below, SENSORS)], per_sensor, WITH_BATCH), WITH_BATCH)
    large = choose_compute(Compute.AUTO, estimate_size([(rows_above, SENSORS)], per_sensor, WITH_BATCH), WITH_BATCH)
    assert small.compute is Compute.LAMBDA and "fit the Lambda" in small.reason
    assert large.compute is Compute.BATCH and "exceed the Lambda" in large.reason


def test_a_fleet_that_would_not_fit_the_lambda_goes_to_batch() -> None:
    # 300 machines, a year of 10-minute readings each: far beyond 900 s on the Lambda.
    fleet = [(52_560, SENSORS)] * 300
    choice = choose_compute(Compute.AUTO, estimate_size(fleet, 6, WITH_BATCH), WITH_BATCH)
    assert choice.compute is Compute.BATCH
    assert choice.estimate.seconds > WITH_BATCH.lambda_timeout_s or \
        choice.estimate.peak_memory_mb > WITH_BATCH.lambda_memory_mb


def test_without_batch_auto_stays_on_the_lambda() -> None:
    config = ComputeConfig()
    choice = choose_compute(Compute.AUTO, estimate_size([(10**8, SENSORS)], 6, config), config)
    assert choice.compute is Compute.LAMBDA and "no Batch" in choice.reason


def test_gpu_only_when_asked_or_preferred_above_a_size() -> None:
    config = ComputeConfig(batch_available=True, gpu_available=True, gpu_preferred_above_cells=1e6)
    big = estimate_size([(10**7, SENSORS)], 6, config)
    small = estimate_size([(10, SENSORS)], 6, config)
    assert choose_compute(Compute.AUTO, big, config).compute is Compute.GPU
    assert choose_compute(Compute.AUTO, small, config).compute is Compute.LAMBDA
    assert choose_compute(Compute.AUTO, big, WITH_BATCH).compute is Compute.BATCH
    assert choose_compute(Compute.GPU, small, config).reason == "requested 'gpu'"


def test_unavailable_compute_names_the_parameter() -> None:
    assert "BatchGpuEnabled" in (unavailable(Compute.GPU, WITH_BATCH) or "")
    assert "BatchEnabled" in (unavailable(Compute.BATCH, ComputeConfig()) or "")
    assert unavailable(Compute.LAMBDA, ComputeConfig()) is None
    assert unavailable(Compute.AUTO, ComputeConfig()) is None


def test_bad_margins_are_refused() -> None:
    with pytest.raises(ValueError, match="lambda_margin"):
        ComputeConfig(lambda_margin=0)
    with pytest.raises(ValueError, match="batch_margin"):
        ComputeConfig(batch_margin=1.5)
    with pytest.raises(ValueError, match="batch_large_memory_mib"):
        ComputeConfig(batch_large_memory_mib=0)


# ---------------------------------------------------------------- the Batch CPU size class

PER_SENSOR = 6  # three sensors in SENSORS: 18 features


def _estimate(cells: float, config: ComputeConfig = WITH_BATCH) -> SizeEstimate:
    return estimate_size([(int(cells) // (3 * PER_SENSOR), SENSORS)], PER_SENSOR, config)


def test_batch_cpu_takes_the_fargate_class_below_its_memory_room_and_the_large_one_above() -> None:
    cells = large_class_cells(WITH_BATCH)
    # Derived from bytes_per_cell: (30,720 MiB x 0.5 - 300 MB) x 2**20 / 60 B, as docs/benchmarks.md says.
    assert cells == int((30_720 * 0.5 - 300) * 2**20 / 60)
    below = choose_compute(Compute.AUTO, _estimate(cells * 0.99), WITH_BATCH)
    above = choose_compute(Compute.AUTO, _estimate(cells * 1.01), WITH_BATCH)
    assert below.compute is above.compute is Compute.BATCH
    assert below.batch_class is BatchClass.STANDARD and "fit the Fargate job's 15360 MB" in (
        below.batch_class_reason or "")
    assert above.batch_class is BatchClass.LARGE
    assert "exceed the Fargate job's 15360 MB and fit the large EC2 job's 122880 MB" in (
        above.batch_class_reason or "")
    # The host's reason is what it was: the class is said beside it.
    assert "exceed the Lambda" in above.reason and "Fargate" not in above.reason


def test_the_class_follows_the_job_definitions_memory_the_deployment_gives() -> None:
    estimate = _estimate(large_class_cells(WITH_BATCH) * 1.5)
    assert choose_batch_class(estimate, WITH_BATCH)[0] is BatchClass.LARGE
    roomier = ComputeConfig(batch_available=True, batch_cpu_memory_mib=122_880)  # Fargate's most
    assert choose_batch_class(estimate, roomier)[0] is BatchClass.STANDARD
    stricter = ComputeConfig(batch_available=True, batch_margin=0.25)
    assert choose_batch_class(_estimate(large_class_cells(WITH_BATCH) * 0.6, stricter), stricter)[0] \
        is BatchClass.LARGE


def test_above_the_large_class_too_it_still_runs_there_and_says_so() -> None:
    config = WITH_BATCH
    room_mb = config.batch_large_memory_mib * config.batch_margin
    cells = (room_mb * 1.2 - config.base_memory_mb) * 2**20 / config.bytes_per_cell
    choice = choose_compute(Compute.AUTO, _estimate(cells), config)
    assert choice.estimate.peak_memory_mb > room_mb
    assert choice.compute is Compute.BATCH and choice.batch_class is BatchClass.LARGE
    assert "exceed even the large EC2 job's 122880 MB" in (choice.batch_class_reason or "")
    assert "BatchLargeMemoryMiB" in (choice.batch_class_reason or "")


def test_a_year_of_a_300_machine_fleet_runs_on_the_large_class() -> None:
    # The fleet above: estimated ~38 GB, beyond the Fargate job's 15 GB room, within the large one's 120 GB.
    choice = choose_compute(Compute.AUTO, estimate_size([(52_560, SENSORS)] * 300, 6, WITH_BATCH), WITH_BATCH)
    assert (choice.compute, choice.batch_class) == (Compute.BATCH, BatchClass.LARGE)


def test_requested_batch_gets_a_class_by_its_estimate_and_keeps_its_reason() -> None:
    small = choose_compute(Compute.BATCH, _estimate(1000), WITH_BATCH)
    large = choose_compute(Compute.BATCH, _estimate(large_class_cells(WITH_BATCH) * 2), WITH_BATCH)
    assert small.reason == large.reason == "requested 'batch'"
    assert (small.batch_class, large.batch_class) == (BatchClass.STANDARD, BatchClass.LARGE)


def test_only_batch_cpu_jobs_have_a_class() -> None:
    config = ComputeConfig(batch_available=True, gpu_available=True)
    huge = _estimate(large_class_cells(config) * 10, config)
    for requested in (Compute.LAMBDA, Compute.GPU):
        choice = choose_compute(requested, huge, config)
        assert choice.batch_class is None and choice.batch_class_reason is None
    assert choose_compute(Compute.AUTO, _estimate(1000, config), config).batch_class is None  # the Lambda
