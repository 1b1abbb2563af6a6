import numpy as np
import pytest

from twin.calibrate import ZipfFit, dispersion_curve, fit_zipf, index_of_dispersion
from twin.calibrate.popularity import _power_sums
from twin.sim.workload import zipf_keys


@pytest.mark.parametrize("exponent", [0.6, 0.9, 1.2])
def test_zipf_exponent_recovered(exponent):
    keys = zipf_keys(10_000, exponent, 200_000, np.random.default_rng(int(exponent * 10)))
    fit = fit_zipf(keys, key_space=10_000)
    assert isinstance(fit, ZipfFit)
    assert abs(fit.exponent - exponent) < 0.03, fit.describe()
    assert fit.n_keys == 10_000 and fit.n_requests == 200_000 and fit.n_seen <= 10_000
    assert fit.top_share_error < 0.025  # sorting noisy counts inflates the top shares of flat laws
    assert fit.warnings == ()


def test_zipf_counts_mapping_equals_keys_and_default_key_space():
    keys = zipf_keys(500, 1.0, 20_000, np.random.default_rng(1))
    labels = np.array([f"k{k}" for k in keys])
    values, counts = np.unique(keys, return_counts=True)
    by_keys = fit_zipf(labels)
    by_counts = fit_zipf(dict(zip(values.tolist(), counts.tolist())))
    assert by_keys == by_counts
    assert by_keys.n_keys == by_keys.n_seen == len(values)
    assert by_keys.to_dict()["exponent"] == by_keys.exponent


def test_zipf_sparse_sample_is_flagged():
    keys = zipf_keys(10_000, 0.6, 20_000, np.random.default_rng(2))
    fit = fit_zipf(keys, key_space=10_000)
    assert fit.warnings and "seen at most twice" in fit.warnings[0]


def test_zipf_uniform_keys_give_zero():
    keys = np.tile(np.arange(100), 50)
    assert fit_zipf(keys).exponent == pytest.approx(0, abs=1e-6)


def test_zipf_bad_input():
    with pytest.raises(ValueError, match="2 distinct"):
        fit_zipf([7, 7, 7])
    with pytest.raises(ValueError, match="smaller than"):
        fit_zipf([1, 2, 3, 3], key_space=2)
    with pytest.raises(ValueError, match="whole"):
        fit_zipf({"a": 1.5, "b": 2})


def test_power_sums_beyond_exact_ranks():
    n = 1_000_000
    lk = np.log(np.arange(1, n + 1, dtype=float))
    for s in (0.5, 1.0, 1.3):
        w = np.exp(-s * lk)
        exact = (w.sum(), w @ lk, w @ (lk * lk))
        assert _power_sums(n, s) == pytest.approx(exact, rel=1e-8)


def test_index_of_dispersion_poisson_is_one():
    rng = np.random.default_rng(3)
    t = np.sort(rng.uniform(0, 1000, rng.poisson(100 * 1000)))
    # 1,000 windows of 1 s: the index has standard error about sqrt(2 / 999) = 0.045
    assert index_of_dispersion(t, window_s=1.0) == pytest.approx(1, abs=0.2)
    curve = dispersion_curve(t, [0.1, 1.0, 10.0])
    assert curve.shape == (3,) and curve[1] == index_of_dispersion(t, window_s=1.0)
    assert np.all(np.abs(curve - 1) < 0.5)


def test_index_of_dispersion_bursty_is_large():
    # On/off modulated Poisson: 180/s and 20/s in alternating 10 s periods.
    rng = np.random.default_rng(4)
    parts = [np.sort(rng.uniform(p * 10, p * 10 + 10, rng.poisson(10 * (180 if p % 2 else 20)))) for p in range(100)]
    t = np.concatenate(parts)
    assert index_of_dispersion(t, window_s=1.0) > 20
    small, medium, large = dispersion_curve(t, [0.1, 1.0, 5.0])
    assert small < medium < large  # bursts show at the scale of the periods


def test_index_of_dispersion_bad_input():
    with pytest.raises(ValueError, match="window"):
        index_of_dispersion([0.0, 1.0, 2.0], window_s=0)
    with pytest.raises(ValueError, match="2 whole windows"):
        index_of_dispersion([0.0, 1.0], window_s=1.0)
    assert index_of_dispersion([0.5, 1.5, 1.7], window_s=1.0, start_s=0.0, end_s=3.0) == pytest.approx(1.0)
