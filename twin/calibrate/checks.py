"""Warnings a calibration report owes its reader: too few samples, and a system that changed
while the trace was taken (then one fitted model describes neither half well)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

FEW = 200  # samples below which a fitted distribution is a rough sketch
DRIFT_KS = 0.1  # KS distance between the first and last third that counts as a change
DRIFT_P = 1e-3


def sample_warnings(counts: dict[str, int]) -> list[str]:
    return [f"{name}: only {n} samples; its fitted distribution is rough" for name, n in counts.items() if n < FEW]


def drift_warnings(times: pd.Series, values: np.ndarray, what: str) -> list[str]:
    """Compare the first and last third of ``values`` (ordered by ``times``)."""
    order = np.argsort(times.to_numpy(), kind="stable")
    v = np.asarray(values, dtype=float)[order]
    v = v[np.isfinite(v)]
    third = len(v) // 3
    if third < FEW:
        return []
    test = stats.ks_2samp(v[:third], v[-third:])
    if test.statistic > DRIFT_KS and test.pvalue < DRIFT_P:
        a, b = np.median(v[:third]), np.median(v[-third:])
        return [f"{what} changed during the calibration part: median {a:.4g} in the first third, {b:.4g} in the "
                f"last (KS {test.statistic:.2f}); the system was not stationary, a shorter trace may fit better"]
    return []


def rate_warnings(timestamps: pd.Series, *, windows: int = 20) -> list[str]:
    """Say when the arrival rate moves a lot over the trace (the held-out replay keeps it real)."""
    t = (timestamps - timestamps.iloc[0]).dt.total_seconds().to_numpy()
    span = t[-1] if len(t) else 0.0
    if span <= 0 or len(t) < FEW:
        return []
    counts = np.bincount(np.minimum((t / span * windows).astype(int), windows - 1), minlength=windows)
    rate = counts / (span / windows)
    low, high = rate.min(), rate.max()
    if low == 0 or high / low > 3:
        return [f"the arrival rate moves between {low:.3g} and {high:.3g} req/s over the trace; the model's "
                f"default rate is the mean, and the held-out check replays the real arrivals"]
    return []


def concurrency_profile(start_ns: np.ndarray, end_ns: np.ndarray, *, floor: float = 1e-3) -> tuple[int, float]:
    """Most intervals open at once for at least ``floor`` of the covered time (levels held for
    less are clock rounding at span edges), and the fraction of the covered time at that level."""
    times = np.concatenate([start_ns, end_ns])
    steps = np.concatenate([np.ones(len(start_ns), np.int64), -np.ones(len(end_ns), np.int64)])
    order = np.lexsort((steps, times))  # at a tie, an end before a start
    times, level = times[order], np.cumsum(steps[order])
    dwell = np.diff(times)
    level = level[:-1]
    covered = dwell[level > 0].sum()
    if not covered:
        return 0, 0.0
    per_level = np.bincount(np.maximum(level, 0), weights=dwell) / covered
    held = np.flatnonzero(per_level >= floor)
    top = int(held.max()) if len(held) else 0
    return top, float(per_level[top])


def capacity_warnings(spans: pd.DataFrame, model) -> list[str]:
    """Compare each service's concurrency in the spans with the skeleton's workers.

    More requests in handlers at once than workers: the skeleton is wrong.  A ceiling below the
    workers that the service sits at for a good part of the time: its real capacity is likely that
    ceiling (what the replay cannot show, since the queue in front of an entry is in no span).
    """
    out = []
    for name, svc in model.services.items():
        mine = spans[spans["service"].astype(str) == name]
        if len(mine) < FEW:
            continue
        start = mine["timestamp"].astype("int64").to_numpy()
        held = mine["latency_s"] if svc.calls_hold_worker else mine["exclusive_s"]
        end = start + np.rint(held.fillna(0).to_numpy(dtype=float) * 1e9).astype(np.int64)
        top, share = concurrency_profile(start, end)
        workers = svc.instances * svc.workers
        if top > workers:
            out.append(f"{name}: the spans show {top} requests in its handlers at once, more than the skeleton's "
                       f"{workers} workers ({svc.instances} x {svc.workers}); the skeleton is wrong")
        elif top < workers and share > 0.05:
            out.append(f"{name}: never more than {top} requests in its handlers at once, and {top} for {share:.0%} "
                       f"of its busy time: its real capacity looks like {top}, the skeleton says {workers}")
    return out
