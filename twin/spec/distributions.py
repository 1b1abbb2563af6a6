"""Distributions of service times, sizes and delays, as validated model fields.

Each distribution knows its moments (the validation oracle needs them) and how to draw
a block of samples from a ``numpy.random.Generator``.  The unit lives in the name of the
field that holds the distribution (``service_time_s``, ``payload_bytes``), not here.

A bare number is shorthand for a deterministic value::

    service_time_s: {dist: lognormal, mean: 0.02, cv: 1.5}
    network_delay_s: 0.0005
"""

from __future__ import annotations

import math
from typing import Annotated, Literal, Union

import numpy as np
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PositiveFloat, model_validator

def _no_bool(value):
    """YAML's true/false are not numbers (pydantic would read them as 1 and 0)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {str(value).lower()}")
    return value


NoBool = BeforeValidator(_no_bool)
NonNegFloat = Annotated[float, Field(ge=0, allow_inf_nan=False), NoBool]
PosFloat = Annotated[PositiveFloat, Field(allow_inf_nan=False), NoBool]
# Bounds that keep every moment and sample finite in float64 (and every run finite in time).
# Values far below TINY underflow to 0 when squared (a scv, a second moment of a heavy law): a value
# is 0 or at least TINY; a coefficient of variation below MIN_CV is a fixed value.
TINY = 1e-100
MIN_CV = 1e-6


def _zero_or_not_tiny(value: float) -> float:
    if 0 < value < TINY:
        raise ValueError(f"expected 0 or at least {TINY:g}, got {value:g}")
    return value


def _cv_not_tiny(value: float) -> float:
    if value < MIN_CV:
        raise ValueError(f"expected a coefficient of variation of at least {MIN_CV:g} (for a fixed value, "
                         f"dist: deterministic), got {value:g}")
    return value


Magnitude = Annotated[float, Field(ge=0, le=1e15, allow_inf_nan=False), NoBool, AfterValidator(_zero_or_not_tiny)]
PosMagnitude = Annotated[float, Field(ge=TINY, le=1e15, allow_inf_nan=False), NoBool]
CV = Annotated[float, Field(gt=0, le=100, allow_inf_nan=False), NoBool, AfterValidator(_cv_not_tiny)]


class _Dist(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def mean(self) -> float:
        raise NotImplementedError

    def second_moment(self) -> float:
        raise NotImplementedError

    def scv(self) -> float:
        """Squared coefficient of variation, Var/mean^2 (0 for a zero-mean deterministic)."""
        m = self.mean()
        return 0.0 if m == 0 else self.second_moment() / m**2 - 1.0

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        raise NotImplementedError

    @model_validator(mode="after")
    def _finite_moments(self):
        """Parameters inside their bounds can still combine into a law with no finite mean."""
        try:
            mean, scv = self.mean(), self.scv()
        except (ArithmeticError, ValueError):
            mean = scv = math.nan
        # (an infinite mean is the pareto law's own check to explain)
        if math.isnan(mean) or (math.isfinite(mean) and math.isnan(scv)):
            raise ValueError(f"these parameters give no finite mean and variance (mean {mean:g}); expected a "
                             f"law whose moments fit in floating point")
        return self


class Exponential(_Dist):
    dist: Literal["exponential"]
    mean_: PosMagnitude = Field(alias="mean")

    def mean(self):
        return self.mean_

    def second_moment(self):
        return 2.0 * self.mean_**2

    def sample(self, rng, n):
        return rng.exponential(self.mean_, n)


class Deterministic(_Dist):
    dist: Literal["deterministic"]
    value: Magnitude

    def mean(self):
        return self.value

    def second_moment(self):
        return self.value**2

    def sample(self, rng, n):
        return np.full(n, self.value)


class Uniform(_Dist):
    dist: Literal["uniform"]
    low: Magnitude
    high: Magnitude

    @model_validator(mode="after")
    def _ordered(self):
        if self.high < self.low:
            raise ValueError(f"expected low <= high, got low={self.low}, high={self.high}")
        return self

    def mean(self):
        return (self.low + self.high) / 2

    def second_moment(self):
        return (self.low**2 + self.low * self.high + self.high**2) / 3

    def sample(self, rng, n):
        return rng.uniform(self.low, self.high, n)


class Lognormal(_Dist):
    """Parameterised by its own mean and coefficient of variation (sd/mean)."""

    dist: Literal["lognormal"]
    mean_: PosMagnitude = Field(alias="mean")
    cv: CV

    def _params(self):
        sigma2 = math.log1p(self.cv**2)
        return math.log(self.mean_) - sigma2 / 2, math.sqrt(sigma2)

    def mean(self):
        return self.mean_

    def second_moment(self):
        return self.mean_**2 * (1 + self.cv**2)

    def sample(self, rng, n):
        mu, sigma = self._params()
        return rng.lognormal(mu, sigma, n)


class Gamma(_Dist):
    """Parameterised by mean and coefficient of variation: shape = 1/cv^2 (cv=1 is exponential)."""

    dist: Literal["gamma"]
    mean_: PosMagnitude = Field(alias="mean")
    cv: CV

    def mean(self):
        return self.mean_

    def second_moment(self):
        return self.mean_**2 * (1 + self.cv**2)

    @model_validator(mode="after")
    def _draws_do_not_underflow(self):
        if self.cv > 10:
            raise ValueError(f"cv: expected at most 10 for a gamma law (shape 1/cv^2 >= 0.01; below, most draws "
                             f"underflow to 0); got {self.cv:g}: a lognormal or pareto law has heavier tails")
        return self

    def sample(self, rng, n):
        shape = 1.0 / self.cv**2
        return rng.gamma(shape, self.mean_ / shape, n)


class Weibull(_Dist):
    dist: Literal["weibull"]
    shape: Annotated[float, Field(ge=0.05, le=100, allow_inf_nan=False), NoBool]
    scale: PosMagnitude

    def mean(self):
        return self.scale * math.gamma(1 + 1 / self.shape)

    def second_moment(self):
        return self.scale**2 * math.gamma(1 + 2 / self.shape)

    def sample(self, rng, n):
        return self.scale * rng.weibull(self.shape, n)


class Pareto(_Dist):
    """A power-law tail: P(X > x) = (scale / x)^alpha for x >= scale, cut at ``high`` when given
    (then the law is renormalised on [scale, high]).  Without ``high``, alpha must exceed 1, or
    the mean is infinite and no finite load or queue follows from it; with alpha <= 2 the
    variance is infinite (``second_moment`` says so)."""

    dist: Literal["pareto"]
    scale: PosMagnitude
    alpha: Annotated[float, Field(gt=0, le=100, allow_inf_nan=False), NoBool]
    high: PosMagnitude | None = None

    @model_validator(mode="after")
    def _finite_mean(self):
        if self.high is None and self.alpha <= 1:
            raise ValueError(f"alpha: expected alpha > 1 (a finite mean) or a cut-off 'high'; got alpha={self.alpha:g}, "
                             f"whose mean is infinite")
        if self.high is not None and self.high <= self.scale:
            raise ValueError(f"high: expected a cut-off above scale ({self.scale:g}), got {self.high:g}")
        return self

    def _moment(self, k):
        a, xm = self.alpha, self.scale
        if self.high is None:
            return a * xm**k / (a - k) if a > k else math.inf
        # E[X^k] = a xm^k (1 - r^(a-k)) / ((a-k) (1 - r^a)), r = xm/high, in a form that neither
        # underflows (xm^a) nor cancels (alpha near k, or tiny)
        log_r = math.log(xm / self.high)
        tail = -log_r if a == k else -math.expm1((a - k) * log_r) / (a - k)
        return a / -math.expm1(a * log_r) * tail * xm**k

    def mean(self):
        return self._moment(1)

    def second_moment(self):
        return self._moment(2)

    def sample(self, rng, n):
        kept = 1.0 if self.high is None else -math.expm1(self.alpha * math.log(self.scale / self.high))
        # inversion in logs: 1 - u*kept would round to 1 when alpha (so kept) is tiny
        return self.scale * np.exp(-np.log1p(-rng.random(n) * kept) / self.alpha)


class Empirical(_Dist):
    """Resamples the given observations (with replacement)."""

    dist: Literal["empirical"]
    samples: Annotated[list[Magnitude], Field(min_length=1)]

    def mean(self):
        return float(np.mean(self.samples))

    def second_moment(self):
        return float(np.mean(np.square(self.samples)))

    def sample(self, rng, n):
        return np.asarray(self.samples, dtype=float)[rng.integers(0, len(self.samples), n)]


def _number_is_deterministic(value):
    if isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as text
        try:
            value = float(value)
        except ValueError:
            return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return {"dist": "deterministic", "value": value}
    return value


Distribution = Annotated[
    Union[Exponential, Deterministic, Uniform, Lognormal, Gamma, Weibull, Pareto, Empirical],
    Field(discriminator="dist"),
    BeforeValidator(_number_is_deterministic),
]

DISTRIBUTION_NAMES = ("exponential", "deterministic", "uniform", "lognormal", "gamma", "weibull", "pareto",
                      "empirical")
