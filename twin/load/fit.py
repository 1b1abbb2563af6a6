"""Burst processes fitted from traces: what ``twin synth`` replays when the load is bursty.

``fit_mmpp`` fits a Markov-modulated Poisson process to counts per bin (a hidden Markov model
with Poisson emissions, by expectation-maximisation).  ``fit_hawkes`` finds the Hawkes process (baseline ``mu``, branching ratio ``alpha``, decay
``beta``) of highest likelihood for a sequence of arrival times, with the O(n) likelihood of
``_kernels.hawkes_loglik`` and a bounded quasi-Newton search over transformed parameters.
``dispersion`` is the index of dispersion of counts (1 for Poisson) at a window size: the
figure that says whether a fit reproduces the burstiness it was fitted to.

>>> import numpy as np
>>> from twin.load.arrivals import hawkes
>>> t = hawkes(2.0, 0.5, 1.0, 20_000.0, np.random.default_rng(0))
>>> f = fit_hawkes(t, 20_000.0)
>>> round(f.mu, 1), round(f.alpha, 2), round(f.beta, 1)
(2.0, 0.5, 1.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import _kernels
from .arrivals import LoadError


@dataclass(frozen=True)
class HawkesFit:
    mu: float
    alpha: float
    beta: float
    loglik: float
    n: int
    duration_s: float

    @property
    def rate_per_s(self) -> float:
        """The stationary arrival rate, mu / (1 - alpha)."""
        return self.mu / (1 - self.alpha)


def fit_hawkes(times, duration_s: float | None = None) -> HawkesFit:
    """The maximum-likelihood Hawkes process for arrival ``times`` (seconds, any order) on
    [0, ``duration_s``) (default: just past the last arrival)."""
    from scipy import optimize

    t = np.sort(np.asarray(times, dtype=np.float64))
    if len(t) < 10:
        raise LoadError(f"times: a burst process needs at least 10 arrivals to fit, got {len(t)}")
    if not np.isfinite(t).all() or t[0] < 0:
        raise LoadError("times: expected finite arrival times >= 0")
    duration = float(duration_s) if duration_s is not None else float(t[-1]) * (1 + 1e-9) + 1e-9
    if duration <= t[-1]:
        raise LoadError(f"duration_s: expected more than the last arrival ({t[-1]:g} s), got {duration:g}")
    rate = len(t) / duration
    gaps = np.diff(t)
    scale = 1.0 / max(np.median(gaps[gaps > 0]) if (gaps > 0).any() else 1.0 / rate, 1e-9)

    def unpack(x):
        return math.exp(x[0]), 1.0 / (1.0 + math.exp(-x[1])), math.exp(x[2])

    def objective(x):
        mu, alpha, beta = unpack(x)
        return -_kernels.hawkes_loglik(t, duration, mu, alpha, beta) / len(t)

    best = None
    for a0, b0 in ((0.3, 0.1 * scale), (0.6, 0.01 * scale), (0.3, scale)):  # a few starts: the surface is not convex
        x0 = np.array([math.log(rate * (1 - a0)), math.log(a0 / (1 - a0)), math.log(b0)])
        r = optimize.minimize(objective, x0, method="L-BFGS-B",
                              bounds=[(None, None), (-12.0, 12.0), (math.log(1e-6 * scale), math.log(1e4 * scale))])
        if best is None or r.fun < best.fun:
            best = r
    mu, alpha, beta = unpack(best.x)
    return HawkesFit(mu, alpha, beta, -best.fun * len(t), len(t), duration)


@dataclass(frozen=True)
class MMPPFit:
    """A Markov-modulated Poisson process (``arrivals.mmpp``'s parameters) fitted to binned counts."""

    rates: np.ndarray  # per s, in each state
    leave: np.ndarray  # per s: the rate of leaving each state
    jump: np.ndarray  # where it goes when it leaves
    bin_s: float
    loglik: float

    @property
    def rate_per_s(self) -> float:
        from .arrivals import stationary

        return float(stationary(self.leave, self.jump) @ self.rates)


def fit_mmpp(times, duration_s: float, *, states: int = 2, bin_s: float | None = None, iterations: int = 200,
             tol: float = 1e-7) -> MMPPFit:
    """An MMPP for arrival ``times``: a hidden Markov model with Poisson counts per ``bin_s`` bin,
    fitted by expectation-maximisation (scaled forward-backward, a numba kernel), its per-bin transition matrix
    turned into rates (a state is left at -ln(p_stay) / bin_s per s).  Bins must be short against
    the states' stays, or a state's rate is diluted by its neighbours: by default about one
    arrival per bin (at most 1 s, at least 1/100,000 of the duration).  States come out sorted
    by rate."""
    from scipy.special import gammaln

    t = np.asarray(times, dtype=np.float64)
    if bin_s is None:
        bin_s = float(np.clip(duration_s / max(len(t), 1), duration_s / 100_000, 1.0))
    n_bins = int(duration_s // bin_s)
    if n_bins < 10 * states:
        raise LoadError(f"bin_s: {bin_s:g} s leaves {n_bins} bins in {duration_s:g} s; at least {10 * states} are "
                        f"needed to fit {states} states")
    y = np.bincount((t[(t >= 0) & (t < n_bins * bin_s)] // bin_s).astype(np.int64), minlength=n_bins).astype(float)
    lam = np.quantile(y, np.linspace(0.25, 0.95, states)) + 1e-3 * (1 + np.arange(states))
    a = np.full((states, states), 0.05 / max(states - 1, 1))
    np.fill_diagonal(a, 0.95)
    pi = np.full(states, 1.0 / states)
    logfact = gammaln(y + 1)
    previous = -np.inf
    for _ in range(iterations):
        emit = np.exp(y[:, None] * np.log(lam[None, :]) - lam[None, :] - logfact[:, None])
        emit = np.maximum(emit, 1e-300)
        alpha, beta, c = _kernels.hmm_forward_backward(emit, a, pi)
        gamma = alpha * beta
        xi = (alpha[:-1, :, None] * a[None] * (emit[1:] * beta[1:])[:, None, :]) / c[1:, None, None]
        pi = gamma[0]
        a = xi.sum(axis=0) / np.maximum(gamma[:-1].sum(axis=0)[:, None], 1e-300)
        a /= a.sum(axis=1, keepdims=True)
        lam = np.maximum((gamma * y[:, None]).sum(axis=0) / np.maximum(gamma.sum(axis=0), 1e-300), 1e-9)
        ll = float(np.log(c).sum())
        if ll - previous < tol * abs(ll):
            break
        previous = ll
    order = np.argsort(lam)
    lam, a = lam[order], a[np.ix_(order, order)]
    stay = np.clip(np.diag(a), 1e-12, 1 - 1e-12)
    leave = -np.log(stay) / bin_s
    jump = a.copy()
    np.fill_diagonal(jump, 0.0)
    sums = jump.sum(axis=1, keepdims=True)
    jump = np.where(sums > 0, jump / np.where(sums > 0, sums, 1), 1.0 / max(states - 1, 1))
    np.fill_diagonal(jump, 0.0)
    return MMPPFit(lam / bin_s, leave, jump, bin_s, ll)


def mmpp_for_dispersion(rate_per_s: float, index: float, *, window_s: float = 1.0, stay_s: float = 10.0) -> MMPPFit | None:
    """A two-state MMPP of mean ``rate_per_s`` whose index of dispersion over ``window_s`` is
    about ``index`` (None at or below 1: Poisson already).  Its levels are 1 - a and 1 + a, each
    held ``stay_s`` on average; with stays long against the window, the index is
    1 + rate * window * a^2, so a = sqrt((index - 1) / (rate * window)), at most 0.95.

    >>> f = mmpp_for_dispersion(10.0, 3.0)
    >>> [round(float(r), 2) for r in f.rates], round(f.rate_per_s, 6)
    ([5.53, 14.47], 10.0)
    """
    if not (index > 1 and rate_per_s > 0):
        return None
    a = min(0.95, math.sqrt((index - 1) / (rate_per_s * window_s)))
    return MMPPFit(np.array([rate_per_s * (1 - a), rate_per_s * (1 + a)]), np.full(2, 1 / stay_s),
                   np.array([[0.0, 1.0], [1.0, 0.0]]), window_s, math.nan)


def dispersion(times, window_s: float, duration_s: float | None = None) -> float:
    """Variance over mean of the counts in consecutive windows of ``window_s`` (1 for Poisson)."""
    t = np.asarray(times, dtype=np.float64)
    duration = duration_s if duration_s is not None else float(t.max())
    n = int(duration // window_s)
    if n < 2:
        raise LoadError(f"window_s: {window_s:g} s leaves fewer than two windows in {duration:g} s")
    counts = np.bincount((t[t < n * window_s] // window_s).astype(np.int64), minlength=n)
    return float(counts.var() / counts.mean()) if counts.mean() > 0 else math.nan


__all__ = ["HawkesFit", "MMPPFit", "dispersion", "fit_hawkes", "fit_mmpp", "mmpp_for_dispersion"]
