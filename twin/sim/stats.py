"""Confidence intervals over independent replications.

``estimate``: the mean of one value per replication, with its t-interval.  ``sectioned`` and
``pooled_mean``: a point estimate from all replications' samples pooled, with the interval of
*sectioning* (Asmussen & Glynn, Stochastic Simulation, III.5a): the pooled value +- t_{n-1} *
sd(per-replication values) / sqrt(n).  ``pooled_quantile``: the pooled quantile, with sectioning
applied to the distribution function there and inverted (see its docstring).  The pooled value
is what a quantile needs: a quantile of each short replication is biased (towards the bulk: on
an M/M/1 with 60 s windows a replication's own p99 reads 20% low) and averaging them keeps the
bias, while the pooled quantile's bias shrinks with all the samples together.  Measured coverage
of these intervals: benchmarks/RESULTS.md, "Coverage of the reported intervals".
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np


#: samples beyond a tail quantile (above a p99) from which its interval holds its 95% coverage on
#: M/M/4 at rho 0.8: 94% with about 1000, 88% with 200 (benchmarks/RESULTS.md).  ``summarize``
#: says so when a tail quantile rests on fewer.
TAIL_SAMPLES = 1000


@dataclass(frozen=True)
class Estimate:
    """A point estimate (``mean``: the mean over replications, or a pooled value) with its Student-t
    confidence interval over ``n`` replications (half-width NaN if n < 2)."""

    mean: float
    half_width: float  # of a skewed interval (a quantile's): half its length
    n: int
    level: float = 0.95
    #: the ends of an interval that is not symmetric about ``mean`` (None: mean -+ half_width)
    lower: float | None = None
    upper: float | None = None

    @property
    def low(self) -> float:
        return self.mean - self.half_width if self.lower is None else self.lower

    @property
    def high(self) -> float:
        return self.mean + self.half_width if self.upper is None else self.upper

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    def to_dict(self) -> dict:
        def num(x):
            return None if x is None or not math.isfinite(x) else float(x)

        return {"mean": num(self.mean), "ci_low": num(self.low), "ci_high": num(self.high),
                "half_width": num(self.half_width), "n": self.n, "level": self.level}

    def __str__(self) -> str:
        if not math.isfinite(self.half_width):
            return f"{self.mean:.6g}"
        if self.lower is not None or self.upper is not None:
            return f"{self.mean:.6g} (+{self.high - self.mean:.2g}/-{self.mean - self.low:.2g})"
        return f"{self.mean:.6g} ± {self.half_width:.2g}"


def estimate(values: Iterable[float], level: float = 0.95) -> Estimate:
    """Mean and t-interval of the finite values (replications where a metric is undefined drop out)."""
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    n = len(x)
    if n == 0:
        return Estimate(math.nan, math.nan, 0, level)
    if n == 1:
        return Estimate(float(x[0]), math.nan, 1, level)
    from scipy import stats  # here, not at import: a worker process starts a second sooner

    sd = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
    return Estimate(float(x.mean()), half, n, level)


def _t_half_width(x: np.ndarray, level: float, kurtosis: bool = False) -> float:
    """t_{df} sd(x) / sqrt(n): df = n - 1, or with ``kurtosis`` the degrees of freedom of a chi-square
    with the variance the sample variance really has, Var(s^2) = sigma^4 (2 / (n - 1) + kappa / n)
    (kappa: the excess kurtosis, estimated, floored at 0): df = 2 / (2 / (n - 1) + kappa / n)."""
    from scipy import stats  # here, not at import: a worker process starts a second sooner

    n, sd = len(x), float(x.std(ddof=1))
    df = n - 1
    if kurtosis and n >= 4 and sd > 0:
        kappa = max(float(stats.kurtosis(x, bias=False)), 0.0)
        df = 2 / (2 / (n - 1) + kappa / n)
    return float(stats.t.ppf(0.5 + level / 2, df)) * sd / math.sqrt(n)


def sectioned(pooled: float, per_replication: Iterable[float], level: float = 0.95) -> Estimate:
    """``pooled`` (a value computed from every replication's samples together) with the sectioning
    interval from the same statistic computed on each replication alone (non-finite ones drop out)."""
    x = np.asarray([v for v in per_replication if v is not None and math.isfinite(v)], dtype=float)
    if not math.isfinite(pooled) or len(x) == 0:
        return Estimate(float(pooled) if len(x) else math.nan, math.nan, len(x), level)
    half = _t_half_width(x, level) if len(x) > 1 else math.nan
    return Estimate(float(pooled), half, len(x), level)


def pooled_quantile(samples: Sequence[np.ndarray], q: float, level: float = 0.95, *,
                    kurtosis: bool = True) -> Estimate:
    """The ``q`` quantile (0..1) of all replications' ``samples`` pooled, with an interval by
    sectioning the pooled distribution function and inverting it (a replication without samples
    drops out).

    At the pooled quantile x, each replication's share of samples <= x is a mean, so sectioning
    holds for it where it fails for a replication's own quantile (biased and, from clustered
    samples, too tight: a 95% interval of p99 from 48 s M/M/1 windows covered about 65%).  With d_i =
    (count_i(<= x) - q m_i) / mean(m) and h = t_{n-1} sd(d) / sqrt(n), the interval is the pooled
    quantiles at q - h and q + h (skewed, as a tail quantile's error is).

    A tail quantile's d_i are heavy-tailed: the requests beyond a p99 come in rare, long congestion
    episodes, so a few windows hold most of them (on M/M/4 at rho 0.8, 60 s windows: excess
    kurtosis in the tens).  Their sample variance then varies far more than a chi-square with
    n - 1 degrees of freedom says, and the plain t-interval covered 85% instead of 95%; with
    ``kurtosis`` the t takes the degrees of freedom that match the sample variance's real spread
    (``_t_half_width``), which brings the coverage back where the tail holds enough samples
    (``TAIL_SAMPLES``; benchmarks/RESULTS.md, "Coverage of the reported intervals")."""
    parts = [np.asarray(s, dtype=float) for s in samples]
    parts = [p for p in parts if len(p)]
    if not parts:
        return Estimate(math.nan, math.nan, 0, level)
    pooled = np.sort(np.concatenate(parts))
    x = float(np.quantile(pooled, q))
    n = len(parts)
    if n < 2:
        return Estimate(x, math.nan, n, level)
    m = np.array([len(p) for p in parts], dtype=float)
    d = (np.array([np.count_nonzero(p <= x) for p in parts]) - q * m) / m.mean()
    h = _t_half_width(d, level, kurtosis)
    lo, hi = (float(np.quantile(pooled, min(max(v, 0.0), 1.0))) for v in (q - h, q + h))
    return Estimate(x, (hi - lo) / 2, n, level, lower=lo, upper=hi)


def pooled_mean(samples: Sequence[np.ndarray], level: float = 0.95) -> Estimate:
    """The mean of all replications' ``samples`` pooled, with the sectioning interval of their own means."""
    parts = [np.asarray(s, dtype=float) for s in samples]
    parts = [p for p in parts if len(p)]
    if not parts:
        return Estimate(math.nan, math.nan, 0, level)
    return sectioned(float(np.concatenate(parts).mean()), [float(p.mean()) for p in parts], level)


def welch_difference(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> Estimate:
    """Confidence interval of mean(a) - mean(b) for independent samples (Welch-Satterthwaite)."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    dof = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1)) if se > 0 else len(a) + len(b) - 2
    from scipy import stats

    half = float(stats.t.ppf(0.5 + level / 2, dof)) * se
    return Estimate(float(a.mean() - b.mean()), half, len(a) + len(b), level)
