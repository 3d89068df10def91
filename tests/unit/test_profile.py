"""The training profile and the drift check it enables (modelforge.domain.profile)."""

from __future__ import annotations

import json

import numpy as np

from modelforge.domain.profile import drift_report, population_stability_index, training_profile


def test_profile_summarizes_every_feature_and_is_json() -> None:
    rng = np.random.default_rng(0)
    x = np.column_stack([rng.normal(10, 2, 5000), rng.uniform(0, 1, 5000)]).astype("float32")
    x[:50, 1] = np.nan
    profile = training_profile(x, ["a", "b"], bins=10, extra={"machine_name": "M"})
    json.dumps(profile, allow_nan=False)

    a, b = profile["features"]["a"], profile["features"]["b"]
    assert profile["rows"] == 5000 and profile["machine_name"] == "M"
    assert abs(a["mean"] - 10) < 0.1 and abs(a["std"] - 2) < 0.1
    assert a["quantiles"]["p01"] < a["quantiles"]["p50"] < a["quantiles"]["p99"]
    assert sum(a["histogram"]["counts"]) == 5000
    assert len(a["histogram"]["counts"]) == len(a["histogram"]["edges"]) + 1  # plus the two open ends
    assert b["missing_fraction"] == 0.01 and sum(b["histogram"]["counts"]) == 4950


def test_drift_report_is_near_zero_for_the_same_distribution_and_large_for_a_shift() -> None:
    rng = np.random.default_rng(1)
    train = rng.normal(0, 1, (20000, 1))
    profile = training_profile(train, ["x"])
    same = drift_report(rng.normal(0, 1, (5000, 1)), ["x"], profile)["x"]
    shifted = drift_report(rng.normal(1.5, 1, (5000, 1)), ["x"], profile)["x"]
    assert same < 0.02
    assert shifted > 0.5


def test_constant_feature_and_psi_identity() -> None:
    profile = training_profile(np.ones((100, 1)), ["c"])
    assert sum(profile["features"]["c"]["histogram"]["counts"]) == 100
    counts = np.array([10.0, 20.0, 30.0])
    assert population_stability_index(counts, counts) == 0.0
