"""Confidence intervals over independent replications."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Estimate:
    """A mean over replications with its Student-t confidence interval (half-width NaN if n < 2)."""

    mean: float
    half_width: float
    n: int
    level: float = 0.95

    @property
    def low(self) -> float:
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        return self.mean + self.half_width

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
