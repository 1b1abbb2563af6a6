"""The load profile of DESIGN.md: what the load will be, step by step, with its shape.

A forecast gives the volume (requests/s, data volume, concurrency) with quantiles.  When the
history comes from a request trace, the profile also carries what the volume alone does not
say: the request-class mix (``mix_<class>``: shares that sum to 1) and the burstiness (the index
of dispersion of requests per second within the step: 1 for Poisson arrivals, above 1 for
bursts).  Both are projected from the history by time of day: each future step gets the average
of the same time-of-day slot over the last ``days`` days of the trace (the whole trace when it
is shorter than a day).

>>> import numpy as np, pandas as pd
>>> t = pd.DataFrame({"timestamp": pd.to_datetime(np.arange(0, 7200, 2.0), unit="s", utc=True),
...                   "class": np.where(np.arange(3600) % 4 == 0, "checkout", "browse")})
>>> shape = shape_profile(t, "1h", pd.date_range("1970-01-02", periods=2, freq="h", tz="UTC"))
>>> shape.round(2).to_dict("list")
{'mix_browse': [0.75, 0.75], 'mix_checkout': [0.25, 0.25], 'burstiness': [0.5, 0.5]}
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .series import SeriesError


def _slots(index: pd.DatetimeIndex, step: pd.Timedelta) -> np.ndarray:
    """The time-of-day slot of each timestamp (0 .. steps per day - 1)."""
    day_ns = pd.Timedelta(days=1).value
    return ((index.asi8 % day_ns) // step.value).astype(np.int64)


def shape_profile(trace: pd.DataFrame, step, future: pd.DatetimeIndex, *, days: int = 28) -> pd.DataFrame:
    """``mix_<class>`` and ``burstiness`` for each step of ``future``, from the entry requests of
    ``trace`` (one row per request: ``timestamp``, optional ``class``)."""
    step = pd.Timedelta(step)
    if trace.empty:
        raise SeriesError("the trace has no requests to take the class mix and burstiness from")
    ts = pd.DatetimeIndex(trace["timestamp"]).tz_convert("UTC")
    keep = ts >= ts.max() - pd.Timedelta(days=days)
    ts = ts[keep]
    classes = (trace["class"].astype(str).to_numpy()[keep] if "class" in trace
               else np.full(len(ts), "all", dtype=object))
    whole_days = ts.max() - ts.min() >= pd.Timedelta(days=1)
    bins = ts.floor(step)
    slot = _slots(bins, step) if whole_days else np.zeros(len(ts), np.int64)
    future_slot = _slots(future, step) if whole_days else np.zeros(len(future), np.int64)

    # class mix by slot
    mix = pd.crosstab(slot, classes)
    mix = mix.div(mix.sum(axis=1), axis=0)
    overall = pd.Series(classes).value_counts(normalize=True)
    mix = mix.reindex(columns=sorted(overall.index), fill_value=0.0)
    out = mix.reindex(future_slot)
    out = out.fillna({c: overall[c] for c in out.columns})  # a slot the trace never saw: the overall mix
    out.columns = [f"mix_{c}" for c in out.columns]

    # burstiness: index of dispersion of per-second counts within each step, averaged by slot
    seconds = max(1, int(round(step.total_seconds())))
    per_second = pd.Series(1, index=ts.floor("1s")).groupby(level=0).sum()
    sec_bin = per_second.index.floor(step)
    s1 = per_second.groupby(sec_bin).sum()
    s2 = (per_second ** 2).groupby(sec_bin).sum()
    mean = s1 / seconds
    var = s2 / seconds - mean ** 2
    dispersion = (var / mean).where(mean > 0)
    by_slot = dispersion.groupby(_slots(pd.DatetimeIndex(dispersion.index), step) if whole_days
                                 else np.zeros(len(dispersion), np.int64)).mean()
    out["burstiness"] = by_slot.reindex(future_slot).fillna(dispersion.mean()).to_numpy()
    out.index = future
    return out


__all__ = ["shape_profile"]
