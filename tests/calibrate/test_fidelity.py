"""The fidelity verdict: what the held-out sample can and cannot tell."""

import numpy as np

from twin.calibrate.fidelity import _judge, quantile_noise


def test_a_clear_miss_fails_whatever_the_noise():
    assert _judge(0.186, 0.05, True, noise=0.03) == (0.05, False)
    assert _judge(0.04, 0.05, True, noise=0.03) == (0.05, None)  # inside limit + noise, noise too big
    assert _judge(0.04, 0.05, True, noise=0.02) == (0.05, True)
    assert _judge(0.06, 0.05, True, noise=0.02) == (0.05, False)
    assert _judge(0.5, 0.05, False, noise=0.0) == (0.05, None)  # too few requests: never judged
    assert _judge(0.5, None, True) == (None, None)


def test_quantile_noise_shrinks_with_the_sample():
    rng = np.random.default_rng(0)
    small = quantile_noise(np.sort(rng.exponential(1.0, 1000)), 0.95)
    large = quantile_noise(np.sort(rng.exponential(1.0, 100_000)), 0.95)
    assert 0.05 < small < 0.2 and large < small / 5
