import json

import numpy as np
import pytest
from pydantic import TypeAdapter
from scipy import stats

from twin.calibrate import Fit, TooFewSamples, fit_distribution
from twin.spec.distributions import Distribution

SPEC = TypeAdapter(Distribution)
TRUTHS = {
    "lognormal": {"dist": "lognormal", "mean": 0.02, "cv": 1.5},
    "gamma": {"dist": "gamma", "mean": 0.01, "cv": 0.5},
    "exponential": {"dist": "exponential", "mean": 0.05},
    "weibull": {"dist": "weibull", "shape": 1.8, "scale": 0.03},
}


def frozen_scipy(spec):
    """The scipy.stats twin of a spec, to compare CDFs."""
    if spec.dist == "exponential":
        return stats.expon(scale=spec.mean())
    if spec.dist == "lognormal":
        mu, sigma = spec._params()
        return stats.lognorm(s=sigma, scale=np.exp(mu))
    if spec.dist == "gamma":
        return stats.gamma(a=1 / spec.cv**2, scale=spec.mean() * spec.cv**2)
    if spec.dist == "weibull":
        return stats.weibull_min(c=spec.shape, scale=spec.scale)
    raise AssertionError(spec.dist)


def cdf_distance(a, b):
    """Largest CDF gap between two specs, on a dense grid of both their quantiles."""
    fa, fb = frozen_scipy(a), frozen_scipy(b)
    p = np.linspace(0.0005, 0.9995, 2000)
    grid = np.concatenate([fa.ppf(p), fb.ppf(p)])
    return float(np.max(np.abs(fa.cdf(grid) - fb.cdf(grid))))


@pytest.mark.parametrize("family", sorted(TRUTHS))
def test_recovers_family_mean_and_shape(family):
    truth = SPEC.validate_python(TRUTHS[family])
    x = truth.sample(np.random.default_rng(11), 5000)
    fit = fit_distribution(x, rng=np.random.default_rng(12))
    if family == "exponential" and fit.family != family:
        # Exponential is gamma and weibull at shape 1: on 5,000 exponential values AIC (with the
        # 2-point parsimony margin) still picks a bigger family about 7% of the time (21 of 300
        # seeds), with a shape close to 1.  This seed is one of those; the CDF checks below hold.
        assert fit.family in ("gamma", "weibull")
        assert abs((fit.dist.shape if fit.family == "weibull" else fit.dist.cv) - 1) < 0.05
    else:
        assert fit.family == family, fit.describe()
    assert fit.fallback_reason is None
    assert abs(fit.dist.mean() / truth.mean() - 1) < 0.03
    assert cdf_distance(fit.dist, truth) < 0.03
    assert set(fit.aic) == set(fit.loglik) == set(TRUTHS)
    for name, ll in fit.loglik.items():  # AIC = 2k - 2 ln L
        assert fit.aic[name] == pytest.approx((2 if name == "exponential" else 4) - 2 * ll)
    assert 0 < fit.ks_statistic < 0.03 and fit.gof_pvalue >= 0.01


def test_exponential_wins_its_nested_families_by_parsimony():
    x = SPEC.validate_python(TRUTHS["exponential"]).sample(np.random.default_rng(2), 5000)
    fit = fit_distribution(x)
    assert fit.family == "exponential"
    # gamma has the lowest AIC here, by less than the 2-point margin
    assert fit.aic["exponential"] - 2 < fit.aic["gamma"] < fit.aic["exponential"]
    assert fit_distribution(x, aic_margin=0).family == "gamma"


def test_maximum_likelihood_matches_scipy():
    x = SPEC.validate_python(TRUTHS["weibull"]).sample(np.random.default_rng(3), 3000)
    fit = fit_distribution(x, families=("weibull", "gamma"))
    c, _, scale = stats.weibull_min.fit(x, floc=0)
    a, _, gscale = stats.gamma.fit(x, floc=0)
    assert fit.loglik["weibull"] == pytest.approx(stats.weibull_min.logpdf(x, c, scale=scale).sum(), abs=1e-3)
    assert fit.loglik["gamma"] == pytest.approx(stats.gamma.logpdf(x, a, scale=gscale).sum(), abs=1e-3)
    assert fit.dist.shape == pytest.approx(c, rel=1e-4) and fit.dist.scale == pytest.approx(scale, rel=1e-4)


def test_bimodal_mixture_falls_back_to_empirical():
    rng = np.random.default_rng(5)
    fast = SPEC.validate_python({"dist": "lognormal", "mean": 0.005, "cv": 0.2}).sample(rng, 2500)
    slow = SPEC.validate_python({"dist": "lognormal", "mean": 0.05, "cv": 0.2}).sample(rng, 2500)
    x = np.concatenate([fast, slow])
    fit = fit_distribution(x)
    assert fit.family == "empirical" and fit.dist.dist == "empirical"
    assert "rejected" in fit.fallback_reason and fit.aic  # the candidates' evidence is kept
    q = np.asarray(fit.dist.samples)
    assert len(q) == 2000 and np.all(np.diff(q) >= 0)
    assert q[0] == x.min() and q[-1] == x.max()
    assert fit.ks_statistic < 0.001  # thinning to 2,000 quantiles keeps the shape
    assert abs(fit.dist.mean() / x.mean() - 1) < 0.01


def test_deterministic_detection():
    fit = fit_distribution(np.full(100, 0.003))
    assert fit.family == "deterministic" and fit.dist.value == pytest.approx(0.003)
    jitter = 0.003 * (1 + 1e-9 * np.random.default_rng(0).standard_normal(100))
    assert fit_distribution(jitter).family == "deterministic"
    assert fit_distribution(np.zeros(50)).dist.value == 0


def test_too_few_samples():
    with pytest.raises(TooFewSamples, match="at least 30 values.*got 10") as info:
        fit_distribution(np.ones(10) + np.arange(10))
    assert info.value.count == 10 and isinstance(info.value, ValueError)
    assert fit_distribution(np.arange(1, 11.0), min_samples=10).n == 10


def test_bad_values_are_clear_errors():
    x = np.linspace(0.1, 1, 100)
    with pytest.raises(ValueError, match="1 negative"):
        fit_distribution(np.append(x, -0.5))
    with pytest.raises(ValueError, match="finite"):
        fit_distribution(np.append(x, np.nan))
    with pytest.raises(ValueError, match="families"):
        fit_distribution(x, families=("pareto",))


def test_a_few_zeros_are_set_aside_many_fall_back():
    x = SPEC.validate_python(TRUTHS["gamma"]).sample(np.random.default_rng(2), 5000)
    x[:100] = 0  # 2%
    fit = fit_distribution(x)
    assert fit.family == "gamma" and fit.n == 5000 and fit.n_fit == 4900
    assert any("100 of 5000 values are zero" in w for w in fit.warnings)
    x[:500] = 0  # 10%
    fit = fit_distribution(x)
    assert fit.family == "empirical" and "zero" in fit.fallback_reason
    assert np.mean(np.asarray(fit.dist.samples) == 0) == pytest.approx(0.1, abs=0.001)


def test_deterministic_for_a_given_rng_and_serialisable():
    x = SPEC.validate_python(TRUTHS["lognormal"]).sample(np.random.default_rng(4), 12_000)
    a = fit_distribution(x, rng=np.random.default_rng(9), max_samples=10_000)
    b = fit_distribution(x, rng=np.random.default_rng(9), max_samples=10_000)
    assert a.to_dict() == b.to_dict()
    assert fit_distribution(x).to_dict() == fit_distribution(x).to_dict()  # default rng is seeded, not global
    assert a.n == 12_000 and a.n_fit == 10_000
    block = json.loads(json.dumps(a.to_dict(), allow_nan=False))
    assert block["family"] == "lognormal" and block["dist"]["dist"] == "lognormal"
    assert a.describe().startswith("lognormal(mean=")
    det = fit_distribution(np.full(40, 2.0)).to_dict()
    assert det["gof_pvalue"] is None and json.dumps(det, allow_nan=False)


def test_fit_is_frozen():
    fit = fit_distribution(np.linspace(0.1, 1, 50))
    assert isinstance(fit, Fit)
    with pytest.raises(AttributeError):
        fit.family = "gamma"


@pytest.mark.parametrize("family", sorted(TRUTHS))
def test_large_samples(family):
    # 200,000 values, all four candidates and the bootstrap: about 0.1-0.2 s per call on the
    # development machine (exponential 0.06, lognormal 0.08, weibull 0.10, gamma 0.18 s).
    truth = SPEC.validate_python(TRUTHS[family])
    x = truth.sample(np.random.default_rng(21), 200_000)
    fit = fit_distribution(x)
    assert fit.family == family and fit.n_fit == 200_000
    assert abs(fit.dist.mean() / truth.mean() - 1) < 0.01
    assert cdf_distance(fit.dist, truth) < 0.01


def test_a_repeated_value_with_a_few_zeros_is_empirical():
    from twin.calibrate import fit_distribution

    x = np.r_[np.zeros(3), np.full(200, 0.25)]
    fit = fit_distribution(x, rng=np.random.default_rng(0))
    assert fit.family == "empirical" and fit.dist.mean() == pytest.approx(x.mean())
