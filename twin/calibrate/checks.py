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
