"""The two-sample drift statistics against answers known in closed form or by hand, and against scipy (which
computes the same figures; the product does not depend on it)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from modelforge.domain.drift_stats import (
    KS_TEST,
    WASSERSTEIN_TEST,
    kolmogorov_survival,
    ks_p_value,
    ks_statistic,
    normed_wasserstein,
    reference_sample,
    two_sample_test,
    wasserstein_distance,
)


def test_the_ks_statistic_by_hand() -> None:
    # ECDFs of [1, 2, 3, 4] and [3, 4, 5, 6, 7]: at x = 2 they are 2/4 and 0/5, at x = 3 3/4 and 1/5 (0.55),
    # at x = 4 1 and 2/5 (0.6, the largest), then the first sample's is 1 and the second's climbs.
    assert ks_statistic(np.array([1.0, 2, 3, 4]), np.array([3.0, 4, 5, 6, 7])) == pytest.approx(0.6)
    assert ks_statistic(np.array([1.0, 2, 3]), np.array([4.0, 5, 6])) == 1.0
    assert ks_statistic(np.array([1.0, 2, 3]), np.array([3.0, 2, 1])) == 0.0


def test_the_kolmogorov_distribution_at_known_points() -> None:
    # P(K > 1.3581) = 0.05 and P(K > 1.2238) = 0.10: the classic critical values.
    assert kolmogorov_survival(1.3581) == pytest.approx(0.05, abs=1e-4)
    assert kolmogorov_survival(1.2238) == pytest.approx(0.10, abs=1e-4)
    assert kolmogorov_survival(0.0) == 1.0 and kolmogorov_survival(5.0) < 1e-20


@pytest.mark.parametrize(("n", "m", "shift", "tolerance"), [
    (40, 60, 0.4, 0.03), (300, 2000, 0.1, 0.005), (1000, 10000, 0.05, 0.005), (800, 3000, 0.12, 0.005)])
def test_statistic_and_p_value_agree_with_scipy(n: int, m: int, shift: float, tolerance: float) -> None:
    rng = np.random.default_rng(n)
    a, b = rng.normal(0, 1, n), rng.normal(shift, 1, m)
    expected = stats.ks_2samp(a, b)
    statistic = ks_statistic(a, b)
    assert statistic == pytest.approx(expected.statistic, abs=1e-12)
    assert ks_p_value(statistic, n, m) == pytest.approx(expected.pvalue, abs=tolerance)
    assert wasserstein_distance(a, b) == pytest.approx(stats.wasserstein_distance(a, b), rel=1e-9)


def test_wasserstein_in_closed_form() -> None:
    x = np.random.default_rng(3).normal(0, 1, 500)
    # A shifted copy: every unit of mass moves by the shift.
    assert wasserstein_distance(x, x + 0.7) == pytest.approx(0.7)
    assert wasserstein_distance(x, x) == 0.0
    # Point masses: 0 and 3 against 1 and 1 -> each half moves 1 and 2.
    assert wasserstein_distance(np.array([0.0, 3.0]), np.array([1.0, 1.0])) == pytest.approx(1.5)
    # U(0, 1) against U(0, 2): the integral of |u - 2u| over u in [0, 1] is 1/2 (quantile grids stand in).
    u = (np.arange(2000) + 0.5) / 2000
    assert wasserstein_distance(u, 2 * u) == pytest.approx(0.5, abs=1e-3)
    # N(0, 1) against N(1, 1), normed by the reference's std (1): 1.
    z = stats.norm.ppf(u)
    assert normed_wasserstein(z, z + 1) == pytest.approx(1.0, rel=1e-3)


def test_the_reference_sample_is_every_value_or_equal_weight_quantiles() -> None:
    small = np.array([3.0, np.nan, 1.0, 2.0, np.inf])
    assert reference_sample(small, size=10).tolist() == [1.0, 2.0, 3.0]
    assert len(reference_sample(np.arange(1000.0))) == 1000  # up to 1,000 rows: every value, for the K-S test
    big = np.random.default_rng(5).normal(10, 2, 50_000)
    sketch = reference_sample(big)
    assert len(sketch) == 512 and np.all(np.diff(sketch) >= 0)
    # The sketch stands for the sample: its distance to it is a sliver of a standard deviation.
    assert normed_wasserstein(big, sketch) < 0.01
    assert np.std(sketch) == pytest.approx(np.std(big), rel=0.01)


def test_the_test_follows_the_number_of_training_rows_as_evidently_does() -> None:
    rng = np.random.default_rng(11)
    reference = rng.normal(0, 1, 800)
    same, shifted = rng.normal(0, 1, 5000), rng.normal(0.5, 1, 5000)

    small_same = two_sample_test(reference, same, reference_rows=800)
    small_shifted = two_sample_test(reference, shifted, reference_rows=800)
    assert small_same is not None and small_shifted is not None
    assert (small_same.test, small_same.threshold) == (KS_TEST, 0.05)
    assert not small_same.drifted and small_same.score > 0.05
    assert small_shifted.drifted and small_shifted.score < 1e-6

    large_same = two_sample_test(reference_sample(rng.normal(0, 1, 20_000)), same, reference_rows=20_000)
    large_shifted = two_sample_test(reference_sample(rng.normal(0, 1, 20_000)), shifted, reference_rows=20_000)
    assert large_same is not None and large_shifted is not None
    assert (large_same.test, large_same.threshold) == (WASSERSTEIN_TEST, 0.1)
    assert not large_same.drifted and large_same.score < 0.05
    assert large_shifted.drifted and large_shifted.score == pytest.approx(0.5, abs=0.05)


def test_nothing_to_compare_is_no_test() -> None:
    assert two_sample_test(np.array([np.nan]), np.array([1.0]), reference_rows=5) is None
    assert two_sample_test(np.array([1.0, 2.0]), np.array([np.nan, np.inf]), reference_rows=5) is None
