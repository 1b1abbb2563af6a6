"""The floor and the statistical baseline every other model must beat.

``SeasonalNaive``: tomorrow looks like today (or next week like this week).  Its median is the
last season; its other quantiles come from its own in-sample errors: the empirical quantiles of
y[t] - y[t - m] about their median, widened by the square root of the number of seasons ahead
(errors of successive seasons add up like a random walk's).

``StatsBaseline``: MSTL (multiple seasonal-trend decomposition by Loess, an ETS trend) from
statsforecast, with the daily, weekly and yearly seasons that the history holds twice over (a
season of one step is none: daily data has weekly and yearly seasons only); with no such season,
non-seasonal AutoETS.  The engine says which season it left out and why, rather than failing.  Its intervals are the model's own normal
intervals, turned into quantiles.

>>> import numpy as np, pandas as pd
>>> idx = pd.date_range("2026-01-01", periods=24 * 14, freq="h", tz="UTC")
>>> y = 10 + 5 * np.sin(2 * np.pi * np.arange(len(idx)) / 24)
>>> h = History(pd.DataFrame({"requests_per_s": y}, index=idx))
>>> f = SeasonalNaive("daily").fit(h).predict(h, 24)
>>> bool(np.allclose(f.quantile("requests_per_s", 0.5), y[-24:]))
True
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .base import QUANTILES, Covariates, Fitted, Forecast, Forecaster, History, future_index

DAY, WEEK, YEAR = pd.Timedelta(days=1), pd.Timedelta(days=7), pd.Timedelta(days=365.25)
SEASONS = {"daily": DAY, "weekly": WEEK}


def season_steps(history: History, season: str | pd.Timedelta) -> int:
    """The length in steps of a named season ('daily', 'weekly') or of a Timedelta."""
    period = SEASONS[season] if isinstance(season, str) else pd.Timedelta(season)
    steps = history.steps_per(period)
    if steps < 1:
        raise ValueError(f"a {period} season is shorter than the history's step ({history.step})")
    return steps


@dataclass(frozen=True)
class SeasonalNaive(Forecaster):
    """Repeat the last season; ``season`` is 'daily', 'weekly', a Timedelta, or 'longest': the
    weekly season where the history holds two, else the daily one."""

    season: str | pd.Timedelta = "daily"
    refit_each_origin: bool = True

    @property
    def name(self) -> str:
        return f"seasonal_naive_{self.season}" if isinstance(self.season, str) else "seasonal_naive"

    def fit(self, history: History, covariates: Covariates | None = None, *, seed: int = 0) -> "_NaiveFit":
        season = self.season
        if season == "longest":
            season = "weekly" if len(history) >= 2 * season_steps(history, "weekly") else "daily"
        m = season_steps(history, season)
        notes = ()
        if len(history) < 2 * m:  # too short for this season: fall back to the last value
            notes = (f"history of {len(history)} steps is shorter than two {self.season} seasons ({2 * m}); "
                     f"the last value is repeated instead",)
            m = 1
        errors = {t: np.asarray(history.values[t])[m:] - np.asarray(history.values[t])[:-m] for t in history.targets}
        return _NaiveFit(self.name, m, errors, notes)


@dataclass(frozen=True)
class _NaiveFit(Fitted):
    name: str
    m: int
    errors: dict[str, np.ndarray]
    notes: tuple[str, ...]

    def predict(self, context: History, horizon: int, covariates: Covariates | None = None,
                quantiles: tuple[float, ...] = QUANTILES) -> Forecast:
        index = future_index(context, horizon)
        h = np.arange(1, horizon + 1)
        seasons_ahead = np.ceil(h / self.m)
        values = {}
        for target in context.targets:
            y = np.asarray(context.values[target], dtype=float)
            last = y[-self.m:]
            point = last[(h - 1) % self.m]
            # one season's error about its median: the point forecast is the median, so a naive
            # whose past errors lean one way (a 2-point history: one error) does not drift
            errors = self.errors[target]
            spread = np.quantile(errors, quantiles) - np.quantile(errors, 0.5)
            q = point[:, None] + np.sqrt(seasons_ahead)[:, None] * spread[None, :]
            values[target] = np.maximum(np.sort(q, axis=1), 0.0) if (y >= 0).all() else np.sort(q, axis=1)
        return Forecast(index, tuple(quantiles), values, self.name, self.notes)


@dataclass(frozen=True)
class StatsBaseline(Forecaster):
    """statsforecast's MSTL over the seasons the history holds, with an ETS trend (see the module)."""

    name: str = "mstl"
    refit_each_origin: bool = True

    def fit(self, history: History, covariates: Covariates | None = None, *, seed: int = 0) -> "_StatsFit":
        from statsforecast.models import MSTL, AutoETS

        n = len(history)
        seasons, notes = [], []
        for label, period in (("daily", DAY), ("weekly", WEEK), ("yearly", YEAR)):
            m = history.steps_per(period)
            if m < 2 or (seasons and m <= seasons[-1]):
                continue  # a daily "season" of daily data is no season
            if n >= 2 * m:
                seasons.append(m)
            elif label != "yearly" or n >= m // 2:  # a yearly season is worth a note once half a year is in
                notes.append(f"history shorter than two {label} cycles ({2 * m} steps): {label} season left out")
        if seasons:
            make, label = (lambda: MSTL(season_length=list(seasons), trend_forecaster=AutoETS(model="ZZN"))), \
                f"MSTL seasons {'+'.join(map(str, seasons))} steps"
        else:
            make, label = (lambda: AutoETS(season_length=1)), "AutoETS"
        models = {}
        for target in history.targets:
            y = np.asarray(history.values[target], dtype=float)
            model = make()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                models[target] = model.fit(y)
        return _StatsFit(self.name, label, models, tuple(notes), n, history)


def _level(q: float) -> int | float:
    """The central interval level (in %) whose edge is quantile ``q``: 0.1 -> 80."""
    level = round(abs(1 - 2 * q) * 100, 6)
    return int(level) if level == int(level) else level


@dataclass(frozen=True)
class _StatsFit(Fitted):
    name: str
    label: str
    models: dict
    notes: tuple[str, ...]
    trained_steps: int
    #: what it was fitted on: a saved fit is this history, refitted when loaded (``twin.forecast.saved``)
    history: History | None = None

    def predict(self, context: History, horizon: int, covariates: Covariates | None = None,
                quantiles: tuple[float, ...] = QUANTILES) -> Forecast:
        if len(context) != self.trained_steps:
            raise ValueError(f"{self.name} forecasts from the end of its training data ({self.trained_steps} steps), "
                             f"not after {len(context)} steps: fit it again on this history")
        # statsforecast names its columns after the levels as passed: ints where they are whole
        levels = sorted({_level(q) for q in quantiles if q != 0.5})
        values = {}
        for target, model in self.models.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out = model.predict(h=horizon, level=[lv for lv in levels if lv > 0] or None)
            mean = np.asarray(out["mean"], dtype=float)
            cols = []
            for q in quantiles:
                if q == 0.5:
                    cols.append(mean)
                    continue
                side = "lo" if q < 0.5 else "hi"
                cols.append(np.asarray(out[f"{side}-{_level(q)}"], dtype=float))
            q = np.sort(np.column_stack(cols), axis=1)
            y = np.asarray(context.values[target])
            values[target] = np.maximum(q, 0.0) if (y >= 0).all() else q
        return Forecast(future_index(context, horizon), tuple(quantiles), values, self.name, self.notes)

