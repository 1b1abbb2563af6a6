"""Intervals that cover what they claim: quantiles recalibrated from past forecast errors.

A model's own intervals are often too narrow (MSTL's normal intervals ignore the error in its
seasonal components; a network is overconfident) or too wide.  The remedy here is conformal in
spirit and needs no model internals: for each target and quantile level ``q``, the distance of
the forecast quantile from the median is multiplied by a factor ``f`` chosen so that, over past
windows, the share of actuals below ``median + f * (quantile - median)`` is ``q``.  The median
is unchanged, so MASE is too; quantiles stay ordered.

``factors`` learns the factors from scored windows; ``Recalibration.apply`` applies them to a
new forecast; ``calibrated`` replays a backtest online: each window is recalibrated from the
windows whose actuals were all known at its origin (its own and later ones never count).

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> y = rng.normal(0, 2, (4000, 1))                 # the truth has twice the claimed spread
>>> q = np.array([-1.2816, 0.0, 1.2816])            # 10%, 50%, 90% of N(0, 1)
>>> f = factors(np.broadcast_to(q, (4000, 3)), y[:, 0], (0.1, 0.5, 0.9))
>>> np.round(f, 1).tolist()
[2.0, 1.0, 2.0]
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from .backtest import BacktestResult, qcol
from .base import Forecast

#: Factors are kept within these bounds: a few windows must not collapse or explode an interval.
BOUNDS = (0.05, 20.0)


def factors(pred: np.ndarray, actual: np.ndarray, quantiles, *, bounds=BOUNDS) -> np.ndarray:
    """Per quantile, the factor on (quantile - median) that puts the share ``q`` of ``actual``
    below it.  ``pred`` (n, len(quantiles)) with the median among its columns, ``actual`` (n,).
    Steps where a quantile equals the median say nothing about its factor and are skipped;
    a level with no usable step keeps the factor 1."""
    quantiles = tuple(quantiles)
    mid = quantiles.index(0.5)
    med = pred[:, mid]
    out = np.ones(len(quantiles))
    for j, q in enumerate(quantiles):
        if j == mid:
            continue
        spread = pred[:, j] - med
        ok = np.abs(spread) > 1e-12 * np.maximum(1.0, np.abs(med))
        if not ok.any():
            continue
        ratio = (actual[ok] - med[ok]) / spread[ok]
        # above the median: P(ratio <= f) = q; below it the spread is negative and the
        # inequality turns over: P(ratio >= f) = q
        out[j] = np.quantile(ratio, q if q > 0.5 else 1 - q)
    return np.clip(out, *bounds)


@dataclass(frozen=True)
class Recalibration:
    """Factors per target (one per quantile level of ``quantiles``), learned from ``windows``
    past windows."""

    quantiles: tuple[float, ...]
    factors: dict[str, np.ndarray]
    windows: int

    def apply(self, forecast: Forecast) -> Forecast:
        if tuple(forecast.quantiles) != self.quantiles:
            raise ValueError(f"the recalibration is for quantiles {self.quantiles}, the forecast has "
                             f"{forecast.quantiles}")
        mid = self.quantiles.index(0.5)
        values = {}
        for target, v in forecast.values.items():
            f = self.factors.get(target)
            if f is None:
                values[target] = v
                continue
            med = v[:, mid:mid + 1]
            out = np.sort(med + f[None, :] * (v - med), axis=1)
            values[target] = np.maximum(out, 0.0) if (v >= 0).all() else out
        note = f"intervals recalibrated from {self.windows} past windows"
        return replace(forecast, values=values, notes=forecast.notes + (note,))


def learn(result: BacktestResult, forecaster: str, origins=None, *, max_windows: int | None = 10) -> Recalibration:
    """Factors from the scored windows of ``forecaster`` (at ``origins``, default all of them;
    the latest ``max_windows`` of those: errors change, and recent ones say more)."""
    rows = result.forecasts[result.forecasts["forecaster"] == forecaster]
    if origins is not None:
        rows = rows[rows["origin"].isin(list(origins))]
    if max_windows:
        rows = rows[rows["origin"].isin(sorted(rows["origin"].unique())[-max_windows:])]
    if rows.empty:
        raise ValueError(f"no scored windows of {forecaster!r} to recalibrate from")
    cols = [qcol(q) for q in result.quantiles]
    out = {}
    for target, g in rows.groupby("target", sort=False):
        out[target] = factors(g[cols].to_numpy(float), g["actual"].to_numpy(float), result.quantiles)
    return Recalibration(tuple(result.quantiles), out, int(rows["origin"].nunique()))


def calibrated(result: BacktestResult, forecaster: str, *, name: str | None = None, min_windows: int = 2,
               max_windows: int | None = 10) -> BacktestResult:
    """The backtest of ``forecaster`` replayed with online recalibration, as a new result with one
    forecaster ``name`` (default ``<forecaster>+cal``).  At each origin the factors come from the
    latest ``max_windows`` windows that had ended by then (their last step before the origin):
    recent errors track a change of volatility that older ones would hide; with fewer than
    ``min_windows`` of those, the window keeps the model's own quantiles."""
    name = name or f"{forecaster}+cal"
    rows = result.forecasts[result.forecasts["forecaster"] == forecaster]
    if rows.empty:
        raise ValueError(f"{forecaster!r} is not one of the forecasters {list(result.forecasters)}")
    cols = [qcol(q) for q in result.quantiles]
    mid = list(result.quantiles).index(0.5)
    ends = rows.groupby("origin")["timestamp"].max()
    parts = []
    for origin, g in rows.groupby("origin", sort=True):
        done = ends.index[ends < origin][-max_windows:] if max_windows else ends.index[ends < origin]
        g = g.copy()
        if len(done) >= min_windows:
            past = rows[rows["origin"].isin(done)]
            for target, gt in g.groupby("target", sort=False):
                pt = past[past["target"] == target]
                f = factors(pt[cols].to_numpy(float), pt["actual"].to_numpy(float), result.quantiles)
                v = gt[cols].to_numpy(float)
                med = v[:, mid:mid + 1]
                new = np.sort(med + f[None, :] * (v - med), axis=1)
                if (v >= 0).all():
                    new = np.maximum(new, 0.0)
                g.loc[gt.index, cols] = new
        parts.append(g)
    table = pd.concat(parts).assign(forecaster=name)
    return replace(result, forecasts=table.reset_index(drop=True))


__all__ = ["BOUNDS", "Recalibration", "calibrated", "factors", "learn"]
