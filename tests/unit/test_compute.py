"""Where a job runs: the size estimate from manifests and auto's choice, on crafted manifests."""

from __future__ import annotations

import pytest

from modelforge.domain.compute import (
    Compute,
    ComputeConfig,
    choose_compute,
    estimate_size,
    features_per_sensor,
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
