"""Choosing among forecasters without grading the choice on the data that made it.

``Ensemble`` averages its members' quantiles step by step (quantile averaging, "Vincentization"):
often better than any member alone, and never far from the best.

``select`` splits a backtest's origins in time: the forecaster with the lowest score on the
earlier windows is *selected* (with a default model, only if it beats the default clearly), and
every forecaster, the selected one included, is scored on the later windows only.  The selected
model's figure is then an honest out-of-sample estimate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .backtest import BacktestResult, scores
from .base import QUANTILES, Covariates, Fitted, Forecast, Forecaster, History


@dataclass(frozen=True)
class Ensemble(Forecaster):
    """The mean of the members' quantiles."""

    members: tuple[Forecaster, ...]
    name: str = "ensemble"

    @property
    def refit_each_origin(self) -> bool:
        return any(m.refit_each_origin for m in self.members)

    def fit(self, history: History, covariates: Covariates | None = None, *, seed: int = 0) -> "_EnsembleFit":
        return _EnsembleFit(self, tuple(m.fit(history, covariates, seed=seed) for m in self.members))

    def combine(self, parts: list[Forecast]) -> Forecast:
        """The members' forecasts (same steps and quantiles) averaged quantile by quantile."""
        values = {t: np.mean([p.values[t] for p in parts], axis=0) for t in parts[0].values}
        notes = tuple(n for p in parts for n in p.notes)
        return Forecast(parts[0].index, parts[0].quantiles, values, self.name, notes)


@dataclass(frozen=True)
class _EnsembleFit(Fitted):
    ensemble: Ensemble
    members: tuple[Fitted, ...]

    @property
    def name(self) -> str:
        return self.ensemble.name

    def predict(self, context: History, horizon: int, covariates: Covariates | None = None,
                quantiles: tuple[float, ...] = QUANTILES) -> Forecast:
        return self.ensemble.combine([m.predict(context, horizon, covariates, quantiles) for m in self.members])


@dataclass(frozen=True)
class Selection:
    target: str
    chosen: str
    selection_origins: tuple[pd.Timestamp, ...]
    evaluation_origins: tuple[pd.Timestamp, ...]
    selection_scores: pd.DataFrame  # per forecaster, on the earlier windows
    evaluation_scores: pd.DataFrame  # per forecaster, on the later windows

    def score(self, forecaster: str, metric: str = "mase") -> float:
        row = self.evaluation_scores.set_index("forecaster").loc[forecaster]
        return float(row[metric])


def window_scores(result: BacktestResult, target: str, origins, metric: str = "mase") -> pd.DataFrame:
    """``metric`` per window: one row per origin, one column per forecaster."""
    f = result.forecasts
    f = f[(f["target"] == target) & f["origin"].isin(list(origins))]
    rows = {name: {o: scores(g, result.quantiles)[metric] for o, g in gf.groupby("origin")}
            for name, gf in f.groupby("forecaster", sort=False)}
    return pd.DataFrame(rows)


def clearly_better(a: np.ndarray, b: np.ndarray, alpha: float) -> bool:
    """Whether per-window losses ``a`` are lower than ``b`` by a one-sided paired t-test at
    level ``alpha`` (a Diebold-Mariano test on window means; windows that overlap make it
    lenient, which only means the default is kept less often than ``alpha`` suggests).

    >>> clearly_better(np.array([1.0, 1.1, 0.9, 1.0]), np.array([2.0, 2.1, 1.9, 2.05]), 0.05)
    True
    >>> clearly_better(np.array([1.0, 3.0, 0.5, 1.0]), np.array([1.2, 1.1, 1.3, 1.2]), 0.05)
    False
    """
    from scipy import stats

    d = np.asarray(a, float) - np.asarray(b, float)
    d = d[np.isfinite(d)]
    if len(d) < 2 or d.mean() >= 0:
        return False
    sd = d.std(ddof=1)
    if sd == 0:
        return True
    t = d.mean() / (sd / np.sqrt(len(d)))
    return bool(stats.t.cdf(t, len(d) - 1) < alpha)


def select(result: BacktestResult, target: str, *, metric: str = "mase", candidates=None,
           selection_windows: int | None = None, default: str | None = None, alpha: float = 0.05) -> Selection:
    """Pick by ``metric`` on the first ``selection_windows`` origins (default: half), score on the rest.

    With a ``default`` (say the ensemble, which is rarely far from the best), another model is
    picked only if it beats the default *clearly* on the selection windows: lower ``metric`` per
    window by a one-sided paired test at level ``alpha`` (``clearly_better``).  A model that wins
    on the selection windows by noise then does not replace a combination that holds up."""
    origins = list(result.origins)
    k = selection_windows if selection_windows is not None else len(origins) // 2
    if not 1 <= k < len(origins):
        raise ValueError(f"need at least one window to select on and one to score on; the backtest has "
                         f"{len(origins)}")
    names = list(candidates or result.forecasters)
    early, late = origins[:k], origins[k:]

    def table(chosen_origins):
        rows = []
        for name in result.forecasters:
            sub = BacktestResult(**{**result.__dict__, "forecasts": result.forecasts[
                result.forecasts["origin"].isin(chosen_origins)]})
            s = sub.summary()
            rows.append(s[(s["forecaster"] == name) & (s["target"] == target)])
        return pd.concat(rows, ignore_index=True)

    first, second = table(early), table(late)
    pool = first[first["forecaster"].isin(names)]
    if metric.startswith("coverage"):
        nominal = int(metric.split("_")[1]) / 100
        chosen = pool.loc[(pool[metric] - nominal).abs().idxmin(), "forecaster"]
    else:
        chosen = pool.loc[pool[metric].idxmin(), "forecaster"]
        if default is not None and default in names and chosen != default:
            per_window = window_scores(result, target, early, metric)
            if not clearly_better(per_window[chosen].to_numpy(), per_window[default].to_numpy(), alpha):
                chosen = default
    return Selection(target, str(chosen), tuple(early), tuple(late), first, second)


def online(result: BacktestResult, target: str, *, recent: int = 8, default: str | None = "ensemble",
           alpha: float = 0.05, name: str = "selected") -> tuple[BacktestResult, dict]:
    """The selection rule replayed as it runs in service: at each origin, the ``recent`` windows
    that had ended by then choose the model (the lowest mean ``mase``; with a ``default``, another
    model only if it beats the default clearly), and that model's forecast is the one made.
    Returns the forecasts so made, as a result with one forecaster ``name``, and the model chosen
    at each origin.  Before two windows have ended the default (else the first model) is used."""
    f = result.forecasts
    if default is not None and default not in result.forecasters:
        raise ValueError(f"default {default!r} is not one of the forecasters {list(result.forecasters)}")
    fallback = default or result.forecasters[0]
    ends = f.groupby("origin")["timestamp"].max()
    per_window = window_scores(result, target, result.origins)
    choice, parts = {}, []
    for origin in result.origins:
        done = ends.index[ends < origin][-recent:]
        chosen = fallback
        if len(done) >= 2:
            means = per_window.loc[done].mean()
            best = str(means.idxmin())
            chosen = best
            if default is not None and best != default and not clearly_better(
                    per_window.loc[done, best].to_numpy(), per_window.loc[done, default].to_numpy(), alpha):
                chosen = default
        choice[origin] = chosen
        parts.append(f[(f["forecaster"] == chosen) & (f["origin"] == origin)])
    table = pd.concat(parts).assign(forecaster=name).reset_index(drop=True)
    return BacktestResult(**{**result.__dict__, "forecasts": table}), choice
