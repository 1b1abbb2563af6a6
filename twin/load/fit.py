"""Burst processes fitted from traces: what ``twin synth`` replays when the load is bursty.

``fit_hawkes`` finds the Hawkes process (baseline ``mu``, branching ratio ``alpha``, decay
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


def dispersion(times, window_s: float, duration_s: float | None = None) -> float:
    """Variance over mean of the counts in consecutive windows of ``window_s`` (1 for Poisson)."""
    t = np.asarray(times, dtype=np.float64)
    duration = duration_s if duration_s is not None else float(t.max())
    n = int(duration // window_s)
    if n < 2:
        raise LoadError(f"window_s: {window_s:g} s leaves fewer than two windows in {duration:g} s")
    counts = np.bincount((t[t < n * window_s] // window_s).astype(np.int64), minlength=n)
    return float(counts.var() / counts.mean()) if counts.mean() > 0 else math.nan


__all__ = ["HawkesFit", "dispersion", "fit_hawkes"]
