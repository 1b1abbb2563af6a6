"""numba kernels of the load synthesizer: arrays and a ``numpy.random.Generator`` in, arrays out.

Each kernel has a pure-Python reference (``*_reference``) that draws the same random numbers in
the same order; the tests check them equal bit for bit, so the fast path is proven by the slow
one.  Kernels are compiled on first call and cached on disk (``cache=True``); ``warm_up`` compiles
them once per process, before timing or forking workers.

Non-homogeneous Poisson arrivals (``nhpp_times``): the rate is piecewise linear between knots
``(t_i, r_i)``.  On each piece the number of arrivals is Poisson with the piece's area as mean,
and given their number the arrivals are independent with density proportional to the rate: their
times are sorted uniforms (from exponential spacings, so no sort is needed) mapped through the
inverse of the piece's cumulative rate, a quadratic solved in a form without cancellation.  This
is exact (no thinning waste) and linear in the number of arrivals.  Large loads are shared out:
the pieces are refined, counted from ``rng``, and filled in parallel by a fixed number of child
generators, each on a contiguous run of pieces, so the result is the same on any number of cores.

>>> import numpy as np
>>> t = nhpp_times(np.array([0.0, 10.0, 20.0]), np.array([1.0, 5.0, 1.0]), np.random.default_rng(0))
>>> bool(np.all(np.diff(t) >= 0) and 0 <= t[0] and t[-1] < 20), len(t)
(True, 48)
"""

from __future__ import annotations

import math
import os
import threading

import numba
import numpy as np
from numba import njit, prange

# Workers are forked; GNU OpenMP, numba's first choice here, aborts a process forked after using
# it.  "forksafe" picks TBB when installed and numba's own work queue otherwise.
if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "forksafe"


@njit(cache=True, error_model="numpy")
def _inverse_cumulative_rate(target, r0, k):
    """The s >= 0 with r0 s + k s^2 / 2 = target (the cumulative rate of a linear piece)."""
    return 2.0 * target / (r0 + math.sqrt(max(r0 * r0 + 2.0 * k * target, 0.0)))


PARALLEL_MIN = 200_000  # expected arrivals from which the pieces are filled by parallel streams
STREAMS = 16  # fixed, so that the arrivals do not depend on the number of cores


@njit(cache=True)
def _nhpp_counts(knots_t, knots_r, rng):
    counts = np.empty(len(knots_t) - 1, np.int64)
    for i in range(len(counts)):
        area = 0.5 * (knots_r[i] + knots_r[i + 1]) * (knots_t[i + 1] - knots_t[i])
        counts[i] = rng.poisson(area) if area > 0 else 0
    return counts


@njit(cache=True, error_model="numpy")  # no zero-division checks (length and s are > 0): the
def _fill_piece(out, j, n, a, b, r0, r1, rng):
    """``n`` sorted arrivals on [a, b) with rate linear from r0 to r1, written to ``out[j:j + n]``."""
    length = b - a
    area = 0.5 * (r0 + r1) * length
    k = (r1 - r0) / length
    s = 0.0
    for m in range(n):
        s += rng.standard_exponential()
        out[j + m] = s
    s += rng.standard_exponential()
    for m in range(n):  # inverse loop vectorises
        x = a + _inverse_cumulative_rate(out[j + m] / s * area, r0, k)
        out[j + m] = min(x, b - 1e-9 * length)  # rounding must not leave the piece


@njit(cache=True)
def _nhpp_serial(knots_t, knots_r, counts, rng):
    out = np.empty(counts.sum(), np.float64)
    j = 0
    for i in range(len(counts)):
        if counts[i] > 0:
            _fill_piece(out, j, counts[i], knots_t[i], knots_t[i + 1], knots_r[i], knots_r[i + 1], rng)
            j += counts[i]
    return out


@njit(cache=True, parallel=True)
def _nhpp_parallel(knots_t, knots_r, counts, bounds, streams):
    offsets = np.zeros(len(counts) + 1, np.int64)
    offsets[1:] = np.cumsum(counts)
    out = np.empty(offsets[-1], np.float64)
    for c in prange(len(streams)):
        for i in range(bounds[c], bounds[c + 1]):
            if counts[i] > 0:
                _fill_piece(out, offsets[i], counts[i], knots_t[i], knots_t[i + 1], knots_r[i], knots_r[i + 1],
                            streams[c])
    return out


def _plan(knots_t, knots_r):
    """Knots refined so that no piece holds more than a 64th of the expected arrivals (the rate
    is unchanged: new knots lie on the lines), or None when the load is too small to share."""
    area = 0.5 * (knots_r[:-1] + knots_r[1:]) * np.diff(knots_t)
    total = float(area.sum())
    if not total >= PARALLEL_MIN:
        return None
    parts = np.maximum(np.ceil(area / (total / (4 * STREAMS))), 1).astype(np.int64)
    if (parts == 1).all():
        return knots_t, knots_r
    frac = np.concatenate([np.arange(p) / p for p in parts])
    piece = np.repeat(np.arange(len(parts)), parts)
    t = np.append(knots_t[piece] + frac * np.diff(knots_t)[piece], knots_t[-1])
    r = np.append(knots_r[piece] + frac * np.diff(knots_r)[piece], knots_r[-1])
    return t, r


def _bounds(counts):
    """Pieces [bounds[c], bounds[c + 1]) for stream c, with about equal arrivals."""
    ends = np.cumsum(counts)
    cuts = np.searchsorted(ends, ends[-1] * np.arange(1, STREAMS) / STREAMS, side="right")
    return np.concatenate([[0], cuts, [len(counts)]]).astype(np.int64)


_launch = threading.Lock()  # numba's fork-safe thread pool must not be entered by two threads at once


def nhpp_times(knots_t, knots_r, rng):
    """Arrival times of a Poisson process whose rate is linear between knots; sorted, in
    [knots_t[0], knots_t[-1]).  Loads of ``PARALLEL_MIN`` expected arrivals or more are filled by
    ``STREAMS`` child generators of ``rng`` (``Generator.spawn``), each on its share of the
    pieces, in parallel."""
    knots_t = np.ascontiguousarray(knots_t, np.float64)
    knots_r = np.ascontiguousarray(knots_r, np.float64)
    plan = _plan(knots_t, knots_r)
    if plan is None:
        return _nhpp_serial(knots_t, knots_r, _nhpp_counts(knots_t, knots_r, rng), rng)
    knots_t, knots_r = plan
    counts = _nhpp_counts(knots_t, knots_r, rng)
    streams = tuple(rng.spawn(STREAMS))
    with _launch:
        return _nhpp_parallel(knots_t, knots_r, counts, _bounds(counts), streams)


def nhpp_times_reference(knots_t, knots_r, rng):
    """``nhpp_times`` in plain Python: the same plan, the same draws in the same order."""
    knots_t = np.asarray(knots_t, np.float64)
    knots_r = np.asarray(knots_r, np.float64)
    plan = _plan(knots_t, knots_r)
    if plan is not None:
        knots_t, knots_r = plan
    counts = []
    for i in range(len(knots_t) - 1):
        area = 0.5 * (knots_r[i] + knots_r[i + 1]) * (knots_t[i + 1] - knots_t[i])
        counts.append(int(rng.poisson(area)) if area > 0 else 0)
    if plan is None:
        stream_of = [rng] * len(counts)
    else:
        streams, bounds = rng.spawn(STREAMS), _bounds(np.array(counts))
        stream_of = [streams[int(np.searchsorted(bounds, i, side="right")) - 1] for i in range(len(counts))]
    out = []
    for i, n in enumerate(counts):
        if n == 0:
            continue
        g = stream_of[i]
        a, b = float(knots_t[i]), float(knots_t[i + 1])
        length = b - a
        r0, r1 = float(knots_r[i]), float(knots_r[i + 1])
        area = 0.5 * (r0 + r1) * length
        k = (r1 - r0) / length
        sums, s = [], 0.0
        for _ in range(n):
            s += g.standard_exponential()
            sums.append(s)
        s += g.standard_exponential()
        for v in sums:
            target = v / s * area
            x = a + 2.0 * target / (r0 + math.sqrt(max(r0 * r0 + 2.0 * k * target, 0.0)))
            out.append(min(x, b - 1e-9 * length))
    return np.array(out, dtype=np.float64)


def nhpp_times_numpy(knots_t, knots_r, rng):
    """The same process vectorised with numpy (the obvious alternative, for the benchmark):
    Poisson counts per piece, uniforms, a sort within pieces, the same inverse."""
    length = np.diff(knots_t)
    r0, r1 = knots_r[:-1], knots_r[1:]
    area = 0.5 * (r0 + r1) * length
    counts = rng.poisson(np.maximum(area, 0))
    piece = np.repeat(np.arange(len(area)), counts)
    u = np.sort(piece + rng.random(len(piece))) - piece  # sorted within each piece
    k = (r1 - r0)[piece] / length[piece]
    target = u * area[piece]
    r = r0[piece]
    x = knots_t[:-1][piece] + 2.0 * target / (r + np.sqrt(np.maximum(r * r + 2.0 * k * target, 0.0)))
    return np.minimum(x, knots_t[1:][piece] - 1e-9 * length[piece])


@njit(cache=True)
def _grow(a, n):
    out = np.empty(max(2 * len(a), n, 16), a.dtype)
    out[:len(a)] = a
    return out


@njit(cache=True)
def mmpp_times(rates, leave, jump, start_state, duration, rng):
    """A Markov-modulated Poisson process on [0, duration): in state s arrivals come at
    ``rates[s]``; the state is left at rate ``leave[s]`` for state j with probability
    ``jump[s, j]`` (rows sum to 1, zero diagonal).  Returns (times, state of each arrival)."""
    times = np.empty(1024, np.float64)
    states = np.empty(1024, np.int64)
    n = 0
    t = 0.0
    s = start_state
    n_states = len(rates)
    while t < duration:
        stay = rng.standard_exponential() / leave[s] if leave[s] > 0 else np.inf
        end = min(t + stay, duration)
        if rates[s] > 0:
            u = t + rng.standard_exponential() / rates[s]
            while u < end:
                if n == len(times):
                    times = _grow(times, n + 1)
                    states = _grow(states, n + 1)
                times[n] = u
                states[n] = s
                n += 1
                u += rng.standard_exponential() / rates[s]
        t = end
        if t < duration:
            x = rng.random()
            acc = 0.0
            nxt = n_states - 1
            for j in range(n_states):
                acc += jump[s, j]
                if x < acc:
                    nxt = j
                    break
            s = nxt
    return times[:n].copy(), states[:n].copy()


def mmpp_times_reference(rates, leave, jump, start_state, duration, rng):
    """``mmpp_times`` in plain Python: the same draws in the same order."""
    times, states = [], []
    t, s = 0.0, int(start_state)
    while t < duration:
        stay = rng.standard_exponential() / leave[s] if leave[s] > 0 else math.inf
        end = min(t + stay, duration)
        if rates[s] > 0:
            u = t + rng.standard_exponential() / rates[s]
            while u < end:
                times.append(u)
                states.append(s)
                u += rng.standard_exponential() / rates[s]
        t = end
        if t < duration:
            x = rng.random()
            acc, nxt = 0.0, len(rates) - 1
            for j in range(len(rates)):
                acc += jump[s, j]
                if x < acc:
                    nxt = j
                    break
            s = nxt
    return np.array(times, np.float64), np.array(states, np.int64)


@njit(cache=True)
def hawkes_times(mu, alpha, beta, duration, rng):
    """A self-exciting (Hawkes) process on [0, duration) with baseline ``mu`` and an exponential
    kernel: each arrival raises the rate by ``alpha * beta`` decaying at ``beta`` (``alpha`` < 1 is
    the branching ratio: the mean number of arrivals each one triggers).  Ogata's thinning: the
    rate only decays between arrivals, so its value just after the last event bounds it."""
    times = np.empty(1024, np.float64)
    n = 0
    t = 0.0
    excite = 0.0  # the self-excited part of the rate, at time t
    while True:
        bound = mu + excite
        w = rng.standard_exponential() / bound
        t_new = t + w
        if t_new >= duration:
            break
        excite *= math.exp(-beta * w)
        t = t_new
        if rng.random() * bound <= mu + excite:
            if n == len(times):
                times = _grow(times, n + 1)
            times[n] = t
            n += 1
            excite += alpha * beta
    return times[:n].copy()


def hawkes_times_reference(mu, alpha, beta, duration, rng):
    """``hawkes_times`` in plain Python: the same draws in the same order."""
    times, t, excite = [], 0.0, 0.0
    while True:
        bound = mu + excite
        w = rng.standard_exponential() / bound
        if t + w >= duration:
            break
        excite *= math.exp(-beta * w)
        t = t + w
        if rng.random() * bound <= mu + excite:
            times.append(t)
            excite += alpha * beta
    return np.array(times, np.float64)


@njit(cache=True)
def hawkes_loglik(times, duration, mu, alpha, beta):
    """Log-likelihood of sorted arrival ``times`` on [0, duration) under a Hawkes process with
    an exponential kernel (``hawkes_times``'s parameters), by the usual O(n) recursion."""
    ll = 0.0
    a = 0.0  # sum of exp(-beta (t_i - t_j)) over earlier arrivals j
    for i in range(len(times)):
        if i > 0:
            a = math.exp(-beta * (times[i] - times[i - 1])) * (1.0 + a)
        ll += math.log(mu + alpha * beta * a)
    tail = 0.0
    for i in range(len(times)):
        tail += 1.0 - math.exp(-beta * (duration - times[i]))
    return ll - mu * duration - alpha * tail


@njit(cache=True)
def _draw(cdf, u):
    """The index where ``u`` falls in the cumulative distribution ``cdf`` (last entry 1)."""
    for j in range(len(cdf)):
        if u < cdf[j]:
            return j
    return len(cdf) - 1


@njit(cache=True)
def session_requests(starts, entry_cdf, next_cdf, think_mean, duration, rng):
    """User sessions as a Markov chain over request classes (a customer behaviour model graph).

    Each session starts at one of ``starts`` with a class drawn from ``entry_cdf``; after each
    request the user thinks for an exponential time of mean ``think_mean[class]`` and moves to
    the next class by row ``next_cdf[class]``, whose last column is leaving.  Requests past
    ``duration`` are cut.  Returns (times, classes, session numbers), in session order."""
    n_classes = len(entry_cdf)
    cap = max(16, 4 * len(starts))
    times = np.empty(cap, np.float64)
    classes = np.empty(cap, np.int64)
    sessions = np.empty(cap, np.int64)
    n = 0
    for s in range(len(starts)):
        t = starts[s]
        c = _draw(entry_cdf, rng.random())
        while t < duration:
            if n == len(times):
                times = _grow(times, n + 1)
                classes = _grow(classes, n + 1)
                sessions = _grow(sessions, n + 1)
            times[n] = t
            classes[n] = c
            sessions[n] = s
            n += 1
            nxt = _draw(next_cdf[c], rng.random())
            if nxt == n_classes:
                break
            t += rng.standard_exponential() * think_mean[c]
            c = nxt
    return times[:n].copy(), classes[:n].copy(), sessions[:n].copy()


def session_requests_reference(starts, entry_cdf, next_cdf, think_mean, duration, rng):
    """``session_requests`` in plain Python: the same draws in the same order."""
    def draw(cdf, u):
        for j, v in enumerate(cdf):
            if u < v:
                return j
        return len(cdf) - 1

    times, classes, sessions = [], [], []
    for s, t in enumerate(starts):
        c = draw(entry_cdf, rng.random())
        while t < duration:
            times.append(t)
            classes.append(c)
            sessions.append(s)
            nxt = draw(next_cdf[c], rng.random())
            if nxt == len(entry_cdf):
                break
            t += rng.standard_exponential() * think_mean[c]
            c = nxt
    return np.array(times, np.float64), np.array(classes, np.int64), np.array(sessions, np.int64)


@njit(cache=True)
def markov_path(leave, jump, start_state, duration, rng):
    """The path of a continuous-time Markov chain on [0, duration): the times it enters a state
    (the first is 0) and those states.  State s is left at rate ``leave[s]`` for j with
    probability ``jump[s, j]``."""
    times = np.empty(64, np.float64)
    states = np.empty(64, np.int64)
    t, s, n = 0.0, start_state, 0
    while t < duration:
        if n == len(times):
            times, states = _grow(times, n + 1), _grow(states, n + 1)
        times[n], states[n] = t, s
        n += 1
        if leave[s] <= 0:
            break
        t += rng.standard_exponential() / leave[s]
        u, acc, nxt = rng.random(), 0.0, 0
        for j in range(len(leave)):
            acc += jump[s, j]
            nxt = j
            if u < acc:
                break
        s = nxt
    return times[:n].copy(), states[:n].copy()


def markov_path_reference(leave, jump, start_state, duration, rng):
    """``markov_path`` in plain Python."""
    times, states, t, s = [], [], 0.0, start_state
    while t < duration:
        times.append(t)
        states.append(s)
        if leave[s] <= 0:
            break
        t += rng.standard_exponential() / leave[s]
        u, acc, nxt = rng.random(), 0.0, 0
        for j in range(len(leave)):
            acc += jump[s, j]
            nxt = j
            if u < acc:
                break
        s = nxt
    return np.array(times, np.float64), np.array(states, np.int64)


@njit(cache=True)
def hmm_forward_backward(emit, a, pi):
    """Scaled forward-backward of a hidden Markov chain: emission likelihoods ``emit`` (bins,
    states), transition matrix ``a``, first-state law ``pi``.  Returns (alpha, beta, c) with the
    state posteriors alpha * beta and the log-likelihood sum(log c)."""
    n, k = emit.shape
    alpha = np.empty((n, k))
    beta = np.ones((n, k))
    c = np.empty(n)
    total = 0.0
    for j in range(k):
        alpha[0, j] = pi[j] * emit[0, j]
        total += alpha[0, j]
    c[0] = total
    alpha[0] /= total
    for i in range(1, n):
        total = 0.0
        for j in range(k):
            v = 0.0
            for h in range(k):
                v += alpha[i - 1, h] * a[h, j]
            alpha[i, j] = v * emit[i, j]
            total += alpha[i, j]
        c[i] = total
        for j in range(k):
            alpha[i, j] /= total
    for i in range(n - 2, -1, -1):
        for h in range(k):
            v = 0.0
            for j in range(k):
                v += a[h, j] * emit[i + 1, j] * beta[i + 1, j]
            beta[i, h] = v / c[i + 1]
    return alpha, beta, c


def hmm_forward_backward_reference(emit, a, pi):
    """``hmm_forward_backward`` in numpy, a bin at a time."""
    n, k = emit.shape
    alpha, beta, c = np.empty((n, k)), np.ones((n, k)), np.empty(n)
    alpha[0] = pi * emit[0]
    c[0] = alpha[0].sum()
    alpha[0] /= c[0]
    for i in range(1, n):
        alpha[i] = (alpha[i - 1] @ a) * emit[i]
        c[i] = alpha[i].sum()
        alpha[i] /= c[i]
    for i in range(n - 2, -1, -1):
        beta[i] = (a @ (emit[i + 1] * beta[i + 1])) / c[i + 1]
    return alpha, beta, c


def warm_up() -> None:
    """Compile (or load from the cache) every kernel, once per process."""
    rng = np.random.default_rng(0)
    nhpp_times(np.array([0.0, 1.0]), np.array([1.0, 1.0]), rng)
    _nhpp_parallel(np.array([0.0, 1.0]), np.array([1.0, 1.0]), np.array([1]), np.array([0] + [1] * STREAMS),
                   tuple(rng.spawn(STREAMS)))
    mmpp_times(np.array([1.0, 2.0]), np.array([1.0, 1.0]), np.array([[0.0, 1.0], [1.0, 0.0]]), 0, 1.0, rng)
    hawkes_times(1.0, 0.5, 1.0, 1.0, rng)
    hawkes_loglik(np.array([0.5]), 1.0, 1.0, 0.5, 1.0)
    markov_path(np.array([1.0, 1.0]), np.array([[0.0, 1.0], [1.0, 0.0]]), 0, 1.0, rng)
    hmm_forward_backward(np.ones((2, 2)), np.full((2, 2), 0.5), np.full(2, 0.5))
    session_requests(np.array([0.0]), np.array([1.0]), np.array([[0.5, 1.0]]), np.array([1.0]), 1.0, rng)


__all__ = ["hawkes_loglik", "hawkes_times", "hawkes_times_reference", "hmm_forward_backward",
           "hmm_forward_backward_reference", "markov_path", "markov_path_reference", "mmpp_times",
           "mmpp_times_reference", "nhpp_times",
           "nhpp_times_numpy", "nhpp_times_reference", "session_requests", "session_requests_reference", "warm_up"]
