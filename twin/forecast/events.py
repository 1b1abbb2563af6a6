"""Event effects learned from past occurrences, for models that cannot read covariates.

MSTL and seasonal naive see only the series: a holiday or a playoff game is, to them, noise in
the history and a surprise in the forecast.  ``EventAdjusted`` wraps such a model.  At fit time
it measures, for each known event column (``event_<type>`` from the events calendar, ``holiday``
from the calendar), what the load did during each past occurrence in the training history: the
ratio of each step to the same step a week earlier and a week later (two weeks where one of those
is itself an event; only steps before the origin are read), as a function of the step's offset
from the start of the occurrence.  The effect of the column is the geometric mean of those ratios
over the occurrences.  An occurrence still under way at the origin is not learned from: the base
model has just been fitted to what it did so far.  An occurrence longer than any seen repeats
the effect profile (a two-day holiday taught by one-day ones).  At predict time the base model's quantiles at each step inside a known
future occurrence are multiplied by the effect at that offset (several columns at once: their
log effects averaged, weighted by how many occurrences taught each).

An event type the history has never seen has no effect to apply, and the fit says so.  This is
Prophet's multiplicative holiday effect, estimated model-free from neighbouring weeks.

>>> import numpy as np, pandas as pd
>>> idx = pd.date_range("2026-01-05", periods=7 * 8, freq="D", tz="UTC")
>>> y = np.full(len(idx), 100.0); y[[10, 24, 45]] = 50.0           # three event days: half the load
>>> flag = np.zeros(len(idx)); flag[[10, 24, 45]] = 1.0
>>> effects = learn_effects(History(pd.DataFrame({"requests_per_s": y}, index=idx)),
...                         Covariates(pd.DataFrame({"event_holiday": flag}, index=idx), known=("event_holiday",)))
>>> effects.profiles["event_holiday"]["requests_per_s"].round(2).tolist(), effects.occurrences["event_holiday"]
([0.5], 3)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .base import QUANTILES, Covariates, Fitted, Forecast, Forecaster, History

#: Ratios are kept within these bounds: a zero or a spike must not make an effect infinite.
RATIO_BOUNDS = (0.02, 50.0)


def event_columns(covariates: Covariates | None) -> tuple[str, ...]:
    """The known columns that mark events: ``event_*`` and ``holiday``."""
    if covariates is None:
        return ()
    return tuple(c for c in covariates.known if c.startswith("event_") or c == "holiday")


def _nanmean(a: np.ndarray, axis: int = 0) -> np.ndarray:
    """The mean of the finite values along ``axis``, NaN where there are none (and no warning)."""
    ok = np.isfinite(a)
    count = ok.sum(axis=axis)
    total = np.where(ok, a, 0.0).sum(axis=axis)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _blocks(active: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) runs of True."""
    edges = np.flatnonzero(np.diff(np.r_[0, active.astype(np.int8), 0]))
    return list(zip(edges[::2], edges[1::2]))


@dataclass(frozen=True)
class Effects:
    """Per event column and target, the multiplicative effect by offset from the occurrence's
    start (steps); and how many past occurrences taught each column."""

    profiles: dict[str, dict[str, np.ndarray]]
    occurrences: dict[str, int]
    unseen: tuple[str, ...] = field(default=())

    def factors(self, frame: pd.DataFrame, steps: pd.DatetimeIndex, target: str) -> np.ndarray:
        """The multiplier of ``target`` at each of ``steps``, from the event columns of ``frame``
        (a covariate frame that starts early enough to hold the start of an ongoing occurrence)."""
        logs = np.zeros(len(steps))
        weights = np.zeros(len(steps))
        where = frame.index.get_indexer(steps)
        if (where < 0).any():
            raise ValueError("the known covariates do not cover the horizon")
        for column, by_target in self.profiles.items():
            profile = by_target.get(target)
            if profile is None:
                continue
            active = frame[column].fillna(0).to_numpy() > 0
            for start, end in _blocks(active):
                hit = (where >= start) & (where < end)
                if hit.any():
                    offset = (where[hit] - start) % len(profile)  # longer than any seen: it repeats
                    w = self.occurrences[column]
                    logs[hit] += w * np.log(profile[offset])
                    weights[hit] += w
        out = np.ones(len(steps))
        some = weights > 0
        out[some] = np.exp(logs[some] / weights[some])
        return out


def learn_effects(history: History, covariates: Covariates | None) -> Effects:
    """Effects of every event column with an occurrence inside ``history`` (see the module)."""
    columns = event_columns(covariates)
    if not columns:
        return Effects({}, {})
    idx = history.values.index
    frame = covariates.frame.reindex(idx)[list(columns)].fillna(0)
    busy = (frame.to_numpy() > 0).any(axis=1)
    week = max(1, history.steps_per(pd.Timedelta(days=7)))
    n = len(idx)
    profiles, occurrences, unseen = {}, {}, []
    for column in columns:
        # an occurrence still under way at the end of the history is left out: what it did so far
        # is in the history the base model was just fitted to, and the rest of it is unknown
        blocks = [b for b in _blocks(frame[column].to_numpy() > 0) if b[1] < n]
        ratios: dict[str, list[np.ndarray]] = {t: [] for t in history.targets}
        for start, end in blocks:
            pos = np.arange(start, end)
            refs = []
            for lag in (-week, week, -2 * week, 2 * week):
                j = pos + lag
                ok = (j >= 0) & (j < n)
                ok[ok] &= ~busy[j[ok]]
                refs.append(np.where(ok, j, -1))
            for t in history.targets:
                y = history.values[t].to_numpy(float)
                cand = np.stack([np.where(r >= 0, y[np.maximum(r, 0)], np.nan) for r in refs])
                # a week on each side where there is one, else the next week out
                ref = _nanmean(cand[:2])
                ref = np.where(np.isfinite(ref), ref, _nanmean(cand[2:]))
                with np.errstate(divide="ignore", invalid="ignore"):
                    r = np.clip(y[pos] / ref, *RATIO_BOUNDS)
                r[~np.isfinite(ref) | (ref <= 0)] = np.nan
                ratios[t].append(r)
        if not blocks or all(np.isnan(r).all() for rs in ratios.values() for r in rs):
            unseen.append(column)
            continue
        occurrences[column] = len(blocks)
        profiles[column] = {}
        for t, rs in ratios.items():
            length = max(len(r) for r in rs)
            stack = np.full((len(rs), length), np.nan)
            for i, r in enumerate(rs):
                stack[i, :len(r)] = np.log(r)
            mean = _nanmean(stack)
            mean = np.where(np.isfinite(mean), mean, 0.0)
            profiles[column][t] = np.exp(mean)
    return Effects(profiles, occurrences, tuple(unseen))


@dataclass(frozen=True)
class EventAdjusted(Forecaster):
    """``base``'s forecast multiplied by the event effects learned from the history."""

    base: Forecaster

    @property
    def name(self) -> str:
        return f"{self.base.name}+events"

    @property
    def refit_each_origin(self) -> bool:
        return self.base.refit_each_origin

    def fit(self, history: History, covariates: Covariates | None = None, *, seed: int = 0) -> "_EventFit":
        effects = learn_effects(history, covariates)
        notes = tuple(f"events: {c} has no occurrence in the history; no effect applied" for c in effects.unseen)
        return _EventFit(self.name, self.base.fit(history, covariates, seed=seed), effects, notes)


@dataclass(frozen=True)
class _EventFit(Fitted):
    name: str
    base: Fitted
    effects: Effects
    notes: tuple[str, ...]

    def predict(self, context: History, horizon: int, covariates: Covariates | None = None,
                quantiles: tuple[float, ...] = QUANTILES) -> Forecast:
        fc = self.base.predict(context, horizon, covariates, quantiles)
        if not self.effects.profiles or covariates is None:
            return Forecast(fc.index, fc.quantiles, fc.values, self.name, fc.notes + self.notes)
        values = {}
        for target, v in fc.values.items():
            f = self.effects.factors(covariates.frame, fc.index, target)
            values[target] = v * f[:, None]
        return Forecast(fc.index, fc.quantiles, values, self.name, fc.notes + self.notes)


__all__ = ["EventAdjusted", "Effects", "event_columns", "learn_effects"]
