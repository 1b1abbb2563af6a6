"""The fidelity verdict: what the held-out sample can and cannot tell."""

import numpy as np

from twin.calibrate.fidelity import _judge, quantile_noise


def test_a_clear_miss_fails_whatever_the_noise():
    assert _judge(0.186, 0.05, True, noise=0.03) == (0.05, False)
    assert _judge(0.04, 0.05, True, noise=0.03) == (0.05, None)  # inside limit + noise, noise too big
    assert _judge(0.04, 0.05, True, noise=0.02) == (0.05, True)
    assert _judge(0.06, 0.05, True, noise=0.02) == (0.05, False)
    assert _judge(0.5, 0.05, False, noise=0.0, n=10) == (0.05, None)  # a handful: not judged
    assert _judge(0.5, 0.05, False, noise=0.1, n=190) == (0.05, False)  # a small class, clearly off
    assert _judge(0.5, None, True) == (None, None)


def test_quantile_noise_shrinks_with_the_sample():
    rng = np.random.default_rng(0)
    small = quantile_noise(np.sort(rng.exponential(1.0, 1000)), 0.95)
    large = quantile_noise(np.sort(rng.exponential(1.0, 100_000)), 0.95)
    assert 0.05 < small < 0.2 and large < small / 5


def test_drift_and_rate_warnings():
    import pandas as pd

    from twin.calibrate.checks import drift_warnings, rate_warnings, sample_warnings

    rng = np.random.default_rng(1)
    times = pd.Series(pd.date_range("2026-01-01", periods=3000, freq="s", tz="UTC"))
    steady = rng.exponential(0.01, 3000)
    assert drift_warnings(times, steady, "x") == []
    changed = np.concatenate([rng.exponential(0.01, 1500), rng.exponential(0.02, 1500)])
    [w] = drift_warnings(times, changed, "api's service time")
    assert "api's service time changed" in w and "not stationary" in w
    bursty = pd.Series(pd.to_datetime(np.concatenate([np.linspace(0, 100, 2000), np.linspace(100, 1000, 500)]),
                                      unit="s", utc=True))
    assert "arrival rate moves" in rate_warnings(bursty)[0]
    assert sample_warnings({"service db": 50, "service api": 5000}) == [
        "service db: only 50 samples; its fitted distribution is rough"]
