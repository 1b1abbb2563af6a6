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


def test_kurtosis_matched_degrees_of_freedom():
    from scipy import stats

    from twin.sim.stats import _t_half_width

    x = np.array([0.0] * 19 + [1.0])  # one window holds the whole tail: excess kurtosis about 20
    kappa = stats.kurtosis(x, bias=False)
    df = 2 / (2 / 19 + kappa / 20)
    assert df < 2
    assert _t_half_width(x, 0.95, kurtosis=True) == pytest.approx(stats.t.ppf(0.975, df) * x.std(ddof=1) / np.sqrt(20))
    assert _t_half_width(x, 0.95, kurtosis=True) > 2 * _t_half_width(x, 0.95)
    flat = np.array([1.0, 2.0, 3.0, 4.0] * 5)  # negative excess kurtosis: floored at 0, df = n - 1
    assert _t_half_width(flat, 0.95, kurtosis=True) == pytest.approx(_t_half_width(flat, 0.95))


def test_kurtosis_matched_interval_covers_a_heavy_tailed_mean():
    """Means of 20 lognormal(0, 1.5) values (excess kurtosis in the hundreds): the plain t-interval
    covers well under 95%; matching the degrees of freedom to the kurtosis brings it closer."""
    from twin.sim.stats import _t_half_width

    rng = np.random.default_rng(3)
    true = np.exp(1.5**2 / 2)
    plain = matched = 0
    for _ in range(3000):
        x = rng.lognormal(0.0, 1.5, 20)
        plain += abs(x.mean() - true) <= _t_half_width(x, 0.95)
        matched += abs(x.mean() - true) <= _t_half_width(x, 0.95, kurtosis=True)
    assert plain / 3000 < 0.85 and matched / 3000 > plain / 3000 + 0.03
