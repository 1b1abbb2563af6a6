"""Warm-up detected from a run's output: MSER-5 truncation (White 1997; Franklin and White 2008).

The series (per-request latencies in arrival order, or a time series' bins) is cut into batches
of 5 means; the truncation point d minimises the standard error of the mean of what is left,
``sum_{i>=d} (y_i - mean_d)^2 / (m - d)^2``, over the first half of the batches.  A minimum in
the second half means the run is too short to tell where the transient ends (``settled`` False).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .nodes import OK
from .results import ReplicationResult

BATCH = 5


@dataclass(frozen=True)
class Truncation:
    """Where MSER cuts a series: ``index`` is the first observation kept."""

    index: int
    observations: int
    #: False when the minimum fell at the end of the first half: the transient may run longer than the series
    settled: bool


def mser(values, batch: int = BATCH) -> Truncation:
    """MSER-``batch`` truncation of an ordered series (NaNs dropped)."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    m = len(x) // batch
    if m < 4:  # too short to say anything: keep it all, not settled
        return Truncation(0, len(x), False)
    y = x[: m * batch].reshape(m, batch).mean(axis=1)
    # suffix sums give the mean and sum of squares of y[d:] for every d at once
    s1 = np.cumsum(y[::-1])[::-1]
    s2 = np.cumsum((y * y)[::-1])[::-1]
    k = m - np.arange(m)
    sse = np.maximum(s2 - s1 * s1 / k, 0.0)
    half = m // 2
    stat = sse[: half + 1] / (k[: half + 1] ** 2)
    d = int(np.argmin(stat))
    return Truncation(d * batch, len(x), d < half)


@dataclass(frozen=True)
class Warmup:
    """The warm-up a run's latencies show: the arrival time where MSER-5 cuts them."""

    detected_s: float
    configured_s: float
    settled: bool

    @property
    def longer_than_configured(self) -> bool:
        return not self.settled or self.detected_s > self.configured_s

    def describe(self) -> str:
        if not self.settled:
            return (f"the latencies have not settled within the run (MSER-5 finds no end to the transient in "
                    f"its first half): lengthen sweep.window and sweep.warmup")
        verdict = "longer than" if self.detected_s > self.configured_s else "within"
        return (f"warm-up detected (MSER-5 on the latencies): {self.detected_s:.3g} s, {verdict} the configured "
                f"sweep.warmup of {self.configured_s:.3g} s")


def detect_warmup(result: ReplicationResult, batch: int = BATCH) -> Warmup:
    """MSER-5 on the latencies of the run's successful requests, all of them (warm-up included), in
    arrival order; the detected warm-up is the arrival time of the first request kept."""
    r = result.requests
    ok = np.flatnonzero(r.status == OK)
    order = ok[np.argsort(r.arrival_s[ok], kind="stable")]
    cut = mser(r.latency_s[order], batch)
    kept = order[np.isfinite(r.latency_s[order])]
    at = float(r.arrival_s[kept[cut.index]]) if cut.index < len(kept) else math.nan
    return Warmup(at if cut.index else 0.0, result.warmup_s, cut.settled)


__all__ = ["BATCH", "Truncation", "Warmup", "detect_warmup", "mser"]
