import numpy as np
import pytest

from twin.sim import estimate, welch_difference


def test_t_interval_known_values():
    e = estimate([1.0, 2.0, 3.0, 4.0])
    # mean 2.5, sd 1.29099, t(0.975, 3) = 3.18245
    assert e.mean == 2.5
    assert e.half_width == pytest.approx(3.18245 * 1.290994 / 2, rel=1e-5)
    assert e.contains(2.5) and not e.contains(5.0)


def test_interval_covers_at_its_level():
    rng = np.random.default_rng(0)
    hits = sum(estimate(rng.normal(10, 3, 8)).contains(10.0) for _ in range(4000))
    assert abs(hits / 4000 - 0.95) < 0.015


def test_degenerate_cases():
    assert np.isnan(estimate([]).mean)
    one = estimate([3.0, float("nan")])
    assert one.mean == 3.0 and np.isnan(one.half_width) and one.n == 1


def test_welch_difference():
    rng = np.random.default_rng(1)
    hits = sum(welch_difference(rng.normal(0, 1, 10), rng.normal(0, 4, 6)).contains(0.0) for _ in range(3000))
    assert abs(hits / 3000 - 0.95) < 0.02
