"""How often the twin's reported 95% intervals cover the exact value (a check of the estimators).

One *macro-repetition* is what a user does: ``replications`` independent replications of a
window, summarized by ``twin.sim.summarize``.  Repeated ``macro`` times with independent seeds,
the share of intervals that contain the closed-form value is the coverage; a correct interval
covers 95% of the time.  Used by ``tests/sim/test_coverage.py`` (small) and
``benchmarks/coverage.py`` (large, for ``benchmarks/RESULTS.md``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..sim import PoissonArrivals, run_replications, summarize
from ..sim.replicate import process_pool
from ..sim.stats import TAIL_SAMPLES
from ..spec import SystemModel, TwinError
from .theory import mmc, mmc_sojourn_quantile

METRICS = {"latency_mean_s": None, "latency_p50_s": 0.50, "latency_p95_s": 0.95, "latency_p99_s": 0.99}


def exact_sojourn(model: SystemModel) -> dict[str, float]:
    """The exact mean, p50, p95 and p99 of the sojourn time of a lone M/M/c model at its default rate."""
    if len(model.services) != 1 or len(model.classes) != 1:
        raise TwinError(f"{model.name}: expected one service and one class (an M/M/c model)")
    svc = next(iter(model.services.values()))
    dist = svc.service_time_s
    if dist.dist != "exponential" or svc.instances != 1 or svc.queue_capacity is not None or svc.calls:
        raise TwinError(f"{model.name}: expected one instance with exponential service times, no queue limit "
                        f"and no calls (an M/M/c model)")
    lam, mu, c = model.defaults.rate_per_s, 1 / dist.mean(), svc.workers
    out = {"latency_mean_s": mmc(lam, mu, c).sojourn_mean_s}
    for key, q in METRICS.items():
        if q is not None:
            out[key] = mmc_sojourn_quantile(lam, mu, c, q)
    return out


@dataclass(frozen=True)
class Coverage:
    metric: str
    exact: float
    covered: int
    macro: int
    mean_half_width: float  # relative to the exact value

    @property
    def share(self) -> float:
        return self.covered / self.macro

    def acceptance(self, level: float = 0.99, nominal: float = 0.95) -> tuple[int, int]:
        """The central ``level`` binomial acceptance interval of ``covered`` under ``nominal`` coverage."""
        from scipy import stats

        lo, hi = stats.binom.interval(level, self.macro, nominal)
        return int(lo), int(hi)


def _macro(model, window_s, warmup_s, replications, seed) -> dict[str, tuple[float, float]]:
    results = run_replications(model, PoissonArrivals(model.defaults.rate_per_s, warmup_s + window_s),
                               replications=replications, seed=seed, warmup_s=warmup_s)
    s = summarize(results)
    return {k: (s[k].low, s[k].high) for k in METRICS}


def tail_replications(model: SystemModel, window_s: float, q: float = 0.99) -> int:
    """Replications of ``window_s`` at the model's default rate that put ``TAIL_SAMPLES`` samples
    beyond its ``q`` quantile (what ``twin simulate``'s caution asks for)."""
    return max(2, math.ceil(TAIL_SAMPLES / (model.defaults.rate_per_s * window_s * (1 - q))))


def measure(model: SystemModel, *, window_s: float, macro: int, replications: int, warmup_s: float,
            seed: int = 0, jobs: int = 1) -> list[Coverage]:
    """The coverage of each of ``METRICS`` over ``macro`` independent macro-repetitions."""
    exact = exact_sojourn(model)
    seeds = [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(macro)]
    args = [(model, window_s, warmup_s, replications, s) for s in seeds]
    if jobs > 1:
        with process_pool(jobs) as pool:
            intervals = list(pool.map(_macro, *zip(*args)))
    else:
        intervals = [_macro(*a) for a in args]
    out = []
    for k, v in exact.items():
        lo = np.array([iv[k][0] for iv in intervals])
        hi = np.array([iv[k][1] for iv in intervals])
        covered = int(np.sum((lo <= v) & (v <= hi)))
        half = float(np.mean((hi - lo) / 2)) / v if len(lo) else math.nan
        out.append(Coverage(k, v, covered, macro, half))
    return out
