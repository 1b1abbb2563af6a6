"""Arrival kernels: equal to their pure-Python references bit for bit, and right in distribution."""

import numpy as np
import pytest
from scipy import stats

from twin.load import _kernels as K
from twin.load.arrivals import LoadError, hawkes, mmpp, nhpp, stationary
from twin.load.fit import dispersion

TWO_STATES = dict(rates=[2.0, 40.0], leave=[0.05, 0.5], jump=[[0.0, 1.0], [1.0, 0.0]])


def test_nhpp_equals_its_reference_and_is_reproducible():
    t = np.array([0.0, 30.0, 45.0, 100.0, 130.0])
    r = np.array([5.0, 50.0, 0.0, 0.0, 20.0])  # rises, falls to zero, stays, rises again
    a = K.nhpp_times(t, r, np.random.default_rng(7))
    b = K.nhpp_times_reference(t, r, np.random.default_rng(7))
    assert len(a) > 500 and np.array_equal(a, b)
    assert np.array_equal(a, nhpp(t, r, np.random.default_rng(7)))
    assert not ((a >= 45) & (a < 100)).any()  # no arrival where the rate is zero


def test_large_loads_are_shared_out_the_same_on_any_number_of_threads():
    """From PARALLEL_MIN expected arrivals the pieces are refined (one long constant piece here)
    and filled by child streams in parallel: still equal to the reference, and to itself on one
    thread, and still a Poisson process of that rate."""
    import numba

    t = np.array([0.0, 4000.0, 5000.0])
    r = np.array([60.0, 60.0, 20.0])  # 280,000 expected arrivals, most in one piece
    assert K._plan(t, r) is not None and len(K._plan(t, r)[0]) > 16
    a = K.nhpp_times(t, r, np.random.default_rng(11))
    assert np.array_equal(a, K.nhpp_times_reference(t, r, np.random.default_rng(11)))
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        assert np.array_equal(a, K.nhpp_times(t, r, np.random.default_rng(11)))
    finally:
        numba.set_num_threads(threads)
    assert np.all(np.diff(a) >= 0) and a[0] >= 0 and a[-1] < 5000
    flat = a[a < 4000]
    assert stats.kstest(np.diff(flat) * 60.0, "expon").pvalue > 0.01
    assert abs(len(flat) - 240_000) < 4 * np.sqrt(240_000)


def test_nhpp_is_a_poisson_process_with_that_rate():
    """Time rescaling: through the cumulative rate, arrivals become a unit-rate Poisson process."""
    t = np.linspace(0, 3600, 13)
    r = 20 + 15 * np.sin(t / 500)
    times = nhpp(t, r, np.random.default_rng(3))
    cum = np.r_[0, np.cumsum(0.5 * (r[1:] + r[:-1]) * np.diff(t))]
    piece = np.searchsorted(t, times, side="right") - 1
    s = times - t[piece]
    k = (r[piece + 1] - r[piece]) / np.diff(t)[piece]
    rescaled = cum[piece] + r[piece] * s + 0.5 * k * s * s
    gaps = np.diff(np.r_[0, rescaled])
    assert stats.kstest(gaps, "expon").pvalue > 0.01
    assert abs(len(times) - cum[-1]) < 4 * np.sqrt(cum[-1])
    # the numpy implementation of the same process agrees in distribution
    other = K.nhpp_times_numpy(t, r, np.random.default_rng(4))
    assert stats.ks_2samp(times, other).pvalue > 0.01


def test_mmpp_equals_its_reference_and_has_its_stationary_rate_and_bursts():
    args = (np.array(TWO_STATES["rates"]), np.array(TWO_STATES["leave"]), np.array(TWO_STATES["jump"]), 0, 20_000.0)
    a = K.mmpp_times(*args, np.random.default_rng(5))
    b = K.mmpp_times_reference(*args, np.random.default_rng(5))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    pi = stationary(TWO_STATES["leave"], TWO_STATES["jump"])
    np.testing.assert_allclose(pi, [20 / 22, 2 / 22])  # mean stays of 20 s and 2 s
    times, _ = mmpp(**TWO_STATES, duration_s=200_000, rng=np.random.default_rng(6))
    expected = 200_000 * pi @ np.array(TWO_STATES["rates"])
    assert abs(len(times) / expected - 1) < 0.05
    counts = np.bincount((times // 10).astype(int))
    assert counts.var() / counts.mean() > 5  # bursty: far above Poisson's 1


def test_hawkes_equals_its_reference_with_the_stationary_rate_and_compensator():
    a = K.hawkes_times(5.0, 0.6, 2.0, 5000.0, np.random.default_rng(8))
    b = K.hawkes_times_reference(5.0, 0.6, 2.0, 5000.0, np.random.default_rng(8))
    assert np.array_equal(a, b)
    times = hawkes(5.0, 0.6, 2.0, 40_000.0, np.random.default_rng(9))
    assert abs(len(times) / (40_000 * 5.0 / (1 - 0.6)) - 1) < 0.05
    # time rescaling with the true compensator gives unit exponential gaps
    comp, excite, last = [], 0.0, 0.0
    total = 0.0
    for t in times:
        dt = t - last
        total += 5.0 * dt + excite * (1 - np.exp(-2.0 * dt)) / 2.0
        excite = excite * np.exp(-2.0 * dt) + 0.6 * 2.0
        last = t
        comp.append(total)
    assert stats.kstest(np.diff(np.r_[0, comp]), "expon").pvalue > 0.01


@pytest.mark.parametrize("call,message", [
    (lambda rng: nhpp([0, 10], [1.0, float("nan")], rng), "knots_r[1]: expected a finite number"),
    (lambda rng: nhpp([0, 10, 5], [1.0, 1.0, 1.0], rng), "knots_t[2]: expected times that increase"),
    (lambda rng: nhpp([0, 10], [1.0, -2.0], rng), "knots_r[1]: expected a rate >= 0"),
    (lambda rng: nhpp([0], [1.0], rng), "two or more knots"),
    (lambda rng: hawkes(1.0, 1.2, 1.0, 10.0, rng), "alpha: expected a branching ratio < 1"),
    (lambda rng: hawkes(-1.0, 0.2, 1.0, 10.0, rng), "mu: expected a number > 0"),
    (lambda rng: mmpp([1.0, 2.0], [1.0, 1.0], [[0.0, 0.5], [1.0, 0.0]], 10.0, rng), "jump[0]: expected probabilities"),
    (lambda rng: mmpp([1.0, -2.0], [1.0, 1.0], [[0.0, 1.0], [1.0, 0.0]], 10.0, rng), "rates[1]: expected a rate"),
])
def test_bad_parameters_name_the_field(call, message):
    with pytest.raises(LoadError, match=message.replace("[", r"\[").replace("]", r"\]")):
        call(np.random.default_rng(0))


FORK_AFTER_PARALLEL = """
import multiprocessing, numba, numpy as np
from twin.load import _kernels as K
def n(seed):
    return len(K.nhpp_times(np.array([0.0, 5000.0]), np.array([50.0, 50.0]), np.random.default_rng(seed)))
expected = n(0)
with multiprocessing.get_context("fork").Pool(2) as pool:
    assert pool.map(n, [0, 0]) == [expected, expected]
print(numba.threading_layer())
"""


def test_a_process_forked_after_a_parallel_fill_can_fill_again():
    """Replications fork workers; GNU OpenMP would abort such a child, so the kernels select a
    fork-safe threading layer.  In a fresh process (this one may hold JAX, which must not fork)."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", FORK_AFTER_PARALLEL], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() in ("workqueue", "tbb")


def test_markov_path_and_forward_backward_match_their_references():
    leave = np.array([0.5, 0.1, 2.0])
    jump = np.array([[0.0, 0.7, 0.3], [0.5, 0.0, 0.5], [0.9, 0.1, 0.0]])
    a = K.markov_path(leave, jump, 1, 5000.0, np.random.default_rng(2))
    b = K.markov_path_reference(leave, jump, 1, 5000.0, np.random.default_rng(2))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[0][0] == 0 and a[1][0] == 1
    # time in each state: the stationary law
    stays = np.diff(np.r_[a[0], 5000.0])
    share = np.bincount(a[1], weights=stays, minlength=3) / 5000.0
    np.testing.assert_allclose(share, stationary(leave, jump), atol=0.05)
    rng = np.random.default_rng(3)
    emit = rng.random((500, 3)) + 1e-3
    trans = rng.random((3, 3))
    trans /= trans.sum(axis=1, keepdims=True)
    for x, y in zip(K.hmm_forward_backward(emit, trans, np.full(3, 1 / 3)),
                    K.hmm_forward_backward_reference(emit, trans, np.full(3, 1 / 3))):
        np.testing.assert_allclose(x, y, rtol=1e-12)  # a matrix product may sum in another order


def test_bursts_modulate_a_profile_and_keep_its_mean():
    import pandas as pd

    from tests.conftest import MODELS
    from twin.load.fit import MMPPFit
    from twin.load.profile_workload import workload
    from twin.spec import load_model

    model = load_model(MODELS / "validation" / "mm1.yaml")
    idx = pd.date_range("2026-01-01", periods=24, freq="5min", tz="UTC")
    profile = pd.DataFrame({"requests_per_s": np.linspace(10, 30, 24)}, index=idx)
    bursts = MMPPFit(np.array([1.0, 9.0]), np.array([0.1, 0.4]), np.array([[0.0, 1.0], [1.0, 0.0]]), 0.1, 0.0)
    counts = [len(workload(profile, model, np.random.default_rng(s), bursts=bursts)) for s in range(6)]
    expected = (profile["requests_per_s"] * 300).sum()
    assert abs(np.mean(counts) / expected - 1) < 0.05
    w = workload(profile, model, np.random.default_rng(0), bursts=bursts)
    plain = workload(profile, model, np.random.default_rng(0))
    assert np.all(np.diff(w.time_s) >= 0)
    assert dispersion(w.time_s, 10.0, 7200.0) > 5 * dispersion(plain.time_s, 10.0, 7200.0)
