"""Choose a distribution family for a sample of service times or sizes, by a stated criterion.

Method, in order:

1. **Deterministic.** A sample whose coefficient of variation is below 1e-6 becomes
   ``deterministic`` at its mean; nothing else is tried.
2. **Maximum likelihood** for each candidate family on the positive values (at most
   ``max_samples`` of them, a random subsample drawn from ``rng`` beyond that):
   exponential (mean: closed form), lognormal (mean and sd of ln x: closed form), gamma
   (Newton on ln k - digamma(k) = ln mean(x) - mean(ln x)) and weibull (Newton on the shape's
   profile score equation), each a few passes over the data.
3. **Selection by AIC** = 2k - 2 ln L (k free parameters).  Exponential is gamma and weibull
   at shape 1, so on exponential data the bigger families win by chance about one time in six;
   candidates within ``aic_margin`` (2, Burnham and Anderson's "substantial support") of the
   lowest AIC count as tied, and the one with fewest parameters wins the tie.
4. **Goodness of fit** of the winner: the Kolmogorov-Smirnov statistic D against the fitted
   CDF.  Because the parameters were estimated from the same data, the textbook KS p-value is
   far too lenient, and Lilliefors-style tables exist only for some families (none for gamma or
   weibull, whose null distribution of D depends on the shape).  So the p-value comes from a
   parametric bootstrap: on a subsample of at most 5,000 values, D_obs is compared with D of
   ``gof_resamples`` samples drawn from the fitted spec and refitted the same way,
   p = (1 + #{D_b >= D_obs}) / (1 + B).  The subsample caps the test's power on purpose: on
   millions of real values KS rejects every family for differences no twin would notice;
   at 5,000 it rejects misfits of about D >= 0.02 and more.
5. **Empirical fallback** when p < ``gof_alpha``, when more than 5% of the values are zero,
   or when no family fits: ``empirical`` over at most ``max_empirical`` evenly spaced order
   statistics, which keep the sample's shape (including its zeros).

>>> import numpy as np
>>> from twin.spec.distributions import Gamma
>>> x = Gamma(dist="gamma", mean=0.01, cv=0.5).sample(np.random.default_rng(1), 5000)
>>> fit_distribution(x).family
'gamma'
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
from pydantic import TypeAdapter, ValidationError
from scipy import special

from ..spec.distributions import Distribution

FAMILIES = ("exponential", "lognormal", "gamma", "weibull")
MAX_ZERO_FRACTION = 0.05
GOF_SUBSAMPLE = 5_000
_SPEC = TypeAdapter(Distribution)


class TooFewSamples(ValueError):
    """Fewer values than a fit needs; ``count`` says how many there were."""

    def __init__(self, count: int, needed: int):
        super().__init__(f"expected at least {needed} values to fit a distribution, got {count}")
        self.count = count
        self.needed = needed


@dataclass(frozen=True, eq=False)
class Fit:
    """A chosen distribution and the evidence for it.

    ``aic`` and ``loglik`` hold every candidate that could be fitted; ``ks_statistic`` and
    ``gof_pvalue`` describe ``dist`` itself (the p-value is nan where no test applies:
    deterministic, empirical).  ``n`` counts the values given, ``n_fit`` those the families saw.
    """

    dist: Distribution
    family: str
    n: int
    aic: dict[str, float]
    loglik: dict[str, float]
    ks_statistic: float
    gof_pvalue: float
    fallback_reason: str | None = None
    warnings: tuple[str, ...] = ()
    n_fit: int = 0

    def describe(self) -> str:
        d = self.dist.model_dump(by_alias=True)
        params = ", ".join(f"{k}={_short(v)}" for k, v in d.items() if k not in ("dist", "samples"))
        if "samples" in d:
            params = f"{len(d['samples'])} quantiles"
        text = f"{self.family}({params}) from n={self.n}"
        if math.isfinite(self.ks_statistic):
            text += f"; KS {self.ks_statistic:.3g}"
        if math.isfinite(self.gof_pvalue):
            text += f", bootstrap p {self.gof_pvalue:.3g}"
        if self.fallback_reason:
            text += f"; fallback: {self.fallback_reason}"
        if self.warnings:
            text += f"; {len(self.warnings)} warning(s)"
        return text

    def to_dict(self) -> dict:
        """A JSON-serialisable provenance block (nan becomes None)."""
        return {
            "family": self.family,
            "dist": self.dist.model_dump(by_alias=True),
            "n": self.n,
            "n_fit": self.n_fit,
            "aic": {k: _json_float(v) for k, v in self.aic.items()},
            "loglik": {k: _json_float(v) for k, v in self.loglik.items()},
            "ks_statistic": _json_float(self.ks_statistic),
            "gof_pvalue": _json_float(self.gof_pvalue),
            "fallback_reason": self.fallback_reason,
            "warnings": list(self.warnings),
        }


def fit_distribution(x, *, families=FAMILIES, max_samples: int = 200_000, rng: np.random.Generator | None = None,
                     gof_alpha: float = 0.01, min_samples: int = 30, aic_margin: float = 2.0,
                     gof_resamples: int = 199, max_empirical: int = 2_000) -> Fit:
    """Fit each family by maximum likelihood, pick one by AIC, check it by a bootstrap KS test.

    ``x`` holds non-negative finite values.  Every random choice (subsamples, bootstrap draws)
    comes from ``rng``; the default is a fresh ``np.random.default_rng(0)``, so equal inputs
    give equal fits.  Raises ``TooFewSamples`` below ``min_samples`` values and ``ValueError``
    for negative or non-finite values or an unknown family.
    """
    rng = np.random.default_rng(0) if rng is None else rng
    families = tuple(families)
    unknown = [f for f in families if f not in _FAMILY]
    if unknown or not families:
        raise ValueError(f"expected families among {', '.join(FAMILIES)}, got {', '.join(unknown) or 'none'}")
    if gof_resamples < 1 or not 0 <= gof_alpha < 1:
        raise ValueError(f"expected gof_resamples >= 1 and 0 <= gof_alpha < 1, got {gof_resamples}, {gof_alpha}")
    x = np.asarray(x, dtype=float).ravel()
    n = len(x)
    if n < min_samples:
        raise TooFewSamples(n, min_samples)
    if not np.all(np.isfinite(x)):
        raise ValueError(f"expected finite values, got {int(np.sum(~np.isfinite(x)))} nan or infinite of {n}")
    if x.min() < 0:
        raise ValueError(f"expected values >= 0, got {int(np.sum(x < 0))} negative of {n} (smallest {x.min():g})")

    mean = float(x.mean())
    if x.min() == x.max() or (mean > 0 and x.std() / mean < 1e-6):
        return Fit(_spec({"dist": "deterministic", "value": mean}), "deterministic", n, {}, {},
                   math.nan, math.nan, n_fit=n)

    notes = []
    zeros = int(np.sum(x == 0))
    if zeros > MAX_ZERO_FRACTION * n:
        return _empirical(x, max_empirical, {}, {}, 0,
                          f"{zeros} of {n} values are zero ({zeros / n:.1%} > {MAX_ZERO_FRACTION:.0%})", notes)
    pos = x[x > 0]
    if zeros:
        notes.append(f"{zeros} of {n} values are zero ({zeros / n:.2%}); fitted on the positive values")
    if pos.min() == pos.max():  # a few zeros beside one repeated value: no family has a spread to fit
        return _empirical(x, max_empirical, {}, {}, len(pos), "one value repeated besides a few zeros", notes)
    if len(pos) > max_samples:
        pos = pos[np.sort(rng.choice(len(pos), max_samples, replace=False))]
    logx = np.log(pos)

    candidates, aic, loglik = _fit_candidates(pos, logx, families, notes)
    if not candidates:
        return _empirical(x, max_empirical, aic, loglik, len(pos), "no candidate family could be fitted", notes)
    best_aic = min(aic.values())
    tied = [f for f in candidates if aic[f] <= best_aic + aic_margin]
    best = min(tied, key=lambda f: (_FAMILY[f].k, aic[f]))
    params, spec = candidates[best]

    cdf = _FAMILY[best].cdf
    d_full = _ks(np.sort(pos), lambda v: cdf(params, v))
    p = _bootstrap_pvalue(best, pos, spec, gof_resamples, rng)
    if p < gof_alpha:
        reason = f"best family {best} rejected: KS {d_full:.3g}, bootstrap p {p:.3g} < {gof_alpha:g}"
        return _empirical(x, max_empirical, aic, loglik, len(pos), reason, notes)
    return Fit(spec, best, n, aic, loglik, d_full, p, None, tuple(notes), len(pos))


def _fit_candidates(pos, logx, families, notes):
    """Each family's MLE as a spec; a family whose fit leaves the spec's range is left out (noted)."""
    candidates, aic, loglik = {}, {}, {}
    for name in families:
        fam = _FAMILY[name]
        with np.errstate(all="ignore"):  # an overflow shows as a non-finite likelihood, handled below
            params, ll = fam.fit(pos, logx)
        if not (math.isfinite(ll) and all(map(math.isfinite, params))):
            notes.append(f"{name}: the fit did not converge to finite parameters")
            continue
        try:
            spec = _spec(fam.spec(params))
        except ValidationError as e:
            err = e.errors()[0]
            field = err["loc"][-1]
            notes.append(f"{name}: fitted {field}={_short(fam.spec(params).get(field))} is outside the spec's "
                         f"range ({err['msg']}); {name} left out")
            continue
        candidates[name] = (params, spec)
        loglik[name] = ll
        aic[name] = 2 * fam.k - 2 * ll
    return candidates, aic, loglik


@dataclass(frozen=True)
class _Family:
    k: int  # free parameters, for AIC
    fit: Callable  # (x, ln x) -> (params, log-likelihood), x > 0
    cdf: Callable  # (params, x) -> F(x)
    spec: Callable  # params -> spec dict


def _fit_exponential(x, logx):
    m = float(x.mean())
    return (m,), -len(x) * (math.log(m) + 1)


def _fit_lognormal(x, logx):
    mu, sigma = float(logx.mean()), float(logx.std())
    ll = -float(logx.sum()) - len(x) * (math.log(sigma) + 0.5 * math.log(2 * math.pi) + 0.5)
    return (mu, sigma), ll


def _fit_gamma(x, logx):
    """MLE shape k solves ln k - digamma(k) = s; Minka's start and Newton steps in 1/k."""
    n, m, mlog = len(x), float(x.mean()), float(logx.mean())
    s = max(math.log(m) - mlog, 1e-300)
    k = (3 - s + math.sqrt((s - 3) ** 2 + 24 * s)) / (12 * s)
    for _ in range(50):
        g = math.log(k) - special.digamma(k) - s
        k_new = 1 / (1 / k + g / (k * k * (1 / k - special.polygamma(1, k))))
        if k_new <= 0:
            k_new = k / 2
        done = abs(k_new - k) <= 1e-12 * k
        k = k_new
        if done:
            break
    theta = m / k
    ll = (k - 1) * n * mlog - n * k - n * k * math.log(theta) - n * special.gammaln(k)
    return (float(k), theta), float(ll)


def _fit_weibull(x, logx):
    """MLE shape k solves 1/k + mean(ln x) - sum(x^k ln x) / sum(x^k) = 0 (decreasing in k).

    The logs are shifted by their maximum so that x^k never overflows; the shift cancels.
    """
    n = len(x)
    top = float(logx.max())
    z = logx - top
    zbar = float(z.mean())
    k = 1.2825 / max(float(z.std()), 1e-12)  # pi / sqrt(6) / sd(ln x), exact for a Weibull
    lo, hi = 0.0, math.inf
    for _ in range(100):
        w = np.exp(k * z)
        sw = w.sum()
        a = float(w @ z) / sw
        b = float(w @ (z * z)) / sw
        f = 1 / k + zbar - a
        if f > 0:
            lo = k
        else:
            hi = k
        k_new = k + f / (1 / k**2 + b - a * a)
        if not lo < k_new < hi:  # Newton left the bracket: bisect (or double, with no upper end)
            k_new = (lo + hi) / 2 if math.isfinite(hi) else 2 * k
        done = abs(k_new - k) <= 1e-12 * k
        k = k_new
        if done:
            break
    w = np.exp(k * z)
    log_scale = top + math.log(float(w.mean())) / k
    ll = n * math.log(k) - n * k * log_scale + (k - 1) * float(logx.sum()) - float(np.exp(k * (logx - log_scale)).sum())
    return (float(k), math.exp(log_scale)), float(ll)


_FAMILY = {
    "exponential": _Family(1, _fit_exponential, lambda p, v: -np.expm1(-v / p[0]),
                           lambda p: {"dist": "exponential", "mean": p[0]}),
    "lognormal": _Family(2, _fit_lognormal, lambda p, v: special.ndtr((np.log(v) - p[0]) / p[1]),
                         lambda p: {"dist": "lognormal", "mean": math.exp(p[0] + p[1] ** 2 / 2),
                                    "cv": math.sqrt(math.expm1(p[1] ** 2))}),
    "gamma": _Family(2, _fit_gamma, lambda p, v: special.gammainc(p[0], v / p[1]),
                     lambda p: {"dist": "gamma", "mean": p[0] * p[1], "cv": 1 / math.sqrt(p[0])}),
    "weibull": _Family(2, _fit_weibull, lambda p, v: -np.expm1(-((v / p[1]) ** p[0])),
                       lambda p: {"dist": "weibull", "shape": p[0], "scale": p[1]}),
}


def _ks(sorted_x, cdf) -> float:
    """Kolmogorov-Smirnov distance between the sample and a continuous CDF."""
    n = len(sorted_x)
    f = cdf(sorted_x)
    i = np.arange(1, n + 1)
    return float(max(np.max(i / n - f), np.max(f - (i - 1) / n)))


def _bootstrap_pvalue(family, pos, spec, resamples, rng) -> float:
    fam = _FAMILY[family]
    m = min(len(pos), GOF_SUBSAMPLE)
    sub = pos if m == len(pos) else pos[rng.choice(len(pos), m, replace=False)]
    params, _ = fam.fit(sub, np.log(sub))
    d_obs = _ks(np.sort(sub), lambda v: fam.cdf(params, v))
    exceed = 0
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        for _ in range(resamples):
            y = np.sort(spec.sample(rng, m))
            y = y[y > 0]  # a draw may underflow to 0 for extreme shapes
            params_b, _ = fam.fit(y, np.log(y))
            d_b = _ks(y, lambda v: fam.cdf(params_b, v))
            exceed += not d_b < d_obs  # nan (a failed refit) counts against the fit
    return (1 + exceed) / (1 + resamples)


def _empirical(x, max_empirical, aic, loglik, n_fit, reason, notes) -> Fit:
    """Evenly spaced order statistics of ``x`` (quantiles 0, 1/(k-1), ..., 1): they keep its shape."""
    s = np.sort(x)
    k = min(len(s), max_empirical)
    q = s[np.rint(np.linspace(0, len(s) - 1, k)).astype(np.int64)]
    # KS distance between the data and the quantile table: what thinning to k values costs.
    # Both CDFs are step functions, so the largest gap sits at one of their jumps.
    t = np.concatenate([s, q])
    d = float(np.max(np.abs(np.searchsorted(s, t, side="right") / len(s) - np.searchsorted(q, t, side="right") / k)))
    spec = _spec({"dist": "empirical", "samples": q.tolist()})
    return Fit(spec, "empirical", len(x), aic, loglik, d, math.nan, reason, tuple(notes), n_fit)


def _spec(d: dict):
    return _SPEC.validate_python(d)


def _short(v):
    if isinstance(v, tuple):
        return "(" + ", ".join(_short(u) for u in v) + ")"
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _json_float(v: float):
    return float(v) if math.isfinite(v) else None
