"""Rolling-origin backtests: how far ahead and how well each forecaster sees, with no look-ahead.

An origin is the timestamp of the first forecast step.  At each origin a forecaster sees the
history strictly before it (``History.upto``) and the covariates as they stood then: known
columns in full, observed ones cut at the origin (NaN after it, the same rule as
``Covariates.window``).  It forecasts the next ``horizon`` steps, which are scored against the
history that followed.  A forecaster with ``refit_each_origin`` is fitted again at every
origin; any other is fitted once, on the history before the first origin, and then only predicts.

Scores (formulas in ``twin.forecast.metrics``) use the median as the point forecast.  MASE
divides each window's errors by the seasonal naive MAE (lag ``season``) of the history before
that window's origin, so a forecaster that does as well out of sample as repeating the last
season does in sample scores 1; the overall MASE is the mean of |y - f| / s over every scored
step, which is the mean of the windows' MASEs (all windows are ``horizon`` steps long).

>>> import numpy as np, pandas as pd
>>> idx = pd.date_range("2026-01-01", periods=100, freq="h", tz="UTC")
>>> h = History(pd.DataFrame({"requests_per_s": np.arange(100.0)}, index=idx))
>>> [str(o) for o in origins(h, horizon=24, n_windows=2)]
['2026-01-03 04:00:00+00:00', '2026-01-04 04:00:00+00:00']
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable, Iterable

import numpy as np
import pandas as pd

from .base import QUANTILES, Covariates, Forecast, Forecaster, History
from .metrics import coverage, interval_score, mase, mase_scale, pinball, smape

#: Central intervals scored when their quantiles are forecast: level -> (lo, hi, alpha).
INTERVALS = {80: (0.1, 0.9, 0.2), 90: (0.05, 0.95, 0.1)}
METRICS = ("mase", "smape", "pinball", *(f"coverage_{k}" for k in INTERVALS),
           *(f"interval_score_{k}" for k in INTERVALS))


def qcol(q: float) -> str:
    """The column of quantile ``q`` in a backtest's tidy table: ``q0.05``, ``q0.5``..."""
    return f"q{q:g}"


def _positions(n: int, horizon: int, n_windows: int, step: int | None, min_train: int | None) -> list[int]:
    step = horizon if step is None else step
    min_train = 2 if min_train is None else max(min_train, 2)  # a History holds two points at least
    for name, value in (("horizon", horizon), ("n_windows", n_windows), ("step", step)):
        if value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")
    need = min_train + (n_windows - 1) * step + horizon
    if n < need:
        raise ValueError(f"history of {n} steps is too short for {n_windows} windows of {horizon} steps every "
                         f"{step} steps after at least {min_train} training steps: it needs {need} "
                         f"(use fewer windows, a shorter horizon or step between origins, or fewer training steps "
                         f"before the first)")
    last = n - horizon
    return [last - k * step for k in range(n_windows - 1, -1, -1)]


def origins(history: History, *, horizon: int, n_windows: int, step: int | None = None,
            min_train: int | None = None) -> list[pd.Timestamp]:
    """The last ``n_windows`` forecast origins, ``step`` steps apart (default ``horizon``: windows
    that do not overlap), the last one leaving exactly ``horizon`` steps of the history after it
    and the first one at least ``min_train`` steps (default 2) after its start."""
    idx = history.values.index
    return [idx[i] for i in _positions(len(history), horizon, n_windows, step, min_train)]


def _utc(ts) -> pd.Timestamp:
    ts = pd.Timestamp(ts)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts


def _event_windows(windows) -> tuple[tuple[pd.Timestamp, pd.Timestamp], ...]:
    out = []
    for start, end in windows or ():
        start, end = _utc(start), _utc(end)
        if not start < end:
            raise ValueError(f"event window ({start}, {end}) ends before it starts")
        out.append((start, end))
    return tuple(out)


def _seen_at(covariates: Covariates | None, origin: pd.Timestamp) -> Covariates | None:
    """The covariates as they stood at ``origin``: observed columns NaN from the origin on."""
    if covariates is None or not covariates.observed:
        return covariates
    frame = covariates.frame.copy()
    before = frame.index < origin
    for col in covariates.observed:
        frame[col] = frame[col].where(before)
    return replace(covariates, frame=frame)


def _check(fc: Forecast, name: str, origin, expected: pd.DatetimeIndex, targets, quantiles) -> None:
    where = f"{name} at origin {origin}"
    if len(fc.index) != len(expected) or not np.array_equal(fc.index.asi8, expected.asi8):
        raise ValueError(f"{where}: the forecast covers {len(fc.index)} steps from "
                         f"{fc.index[0] if len(fc.index) else None}, expected {len(expected)} from {expected[0]}")
    missing = [t for t in targets if t not in fc.values] + [q for q in quantiles if q not in fc.quantiles]
    if missing:
        raise ValueError(f"{where}: the forecast lacks {missing}")


def backtest(forecasters: list[Forecaster], history: History, covariates: Covariates | None = None, *,
             horizon: int, n_windows: int, step: int | None = None, season: int,
             min_train: int | None = None, quantiles: tuple[float, ...] = QUANTILES,
             event_windows: Iterable[tuple] | None = None, seed: int = 0, refit_every: int | None = None,
             skip_failing: bool = False, progress: Callable[[int, int], None] | None = None) -> "BacktestResult":
    """Forecast from each of ``n_windows`` origins (see ``origins``) with each forecaster and
    score every target of ``history``.  ``season`` (in steps) sets the MASE scale; ``min_train``
    defaults to two seasons.  ``event_windows`` are [start, end) intervals whose steps are also
    scored apart.  Every fit gets ``seed``.  A forecaster without ``refit_each_origin`` is fitted
    before the first origin and again every ``refit_every`` origins (default: never again), as a
    deployed model is retrained on a schedule.  An ``Ensemble`` is scored from its members'
    forecasts, each member run once (under its own refit rule) even if it is also listed.
    A forecaster that raises ``ValueError`` (a history too short for it, say) stops the backtest,
    or with ``skip_failing`` is left out with a note (and so is an ensemble it belongs to).
    ``progress(done, total)`` is called after each (forecaster, origin) that is run."""
    names = [f.name for f in forecasters]
    if not names or len(set(names)) != len(names):
        raise ValueError(f"backtest needs one or more forecasters with distinct names, got {names}")
    quantiles = tuple(sorted(quantiles))
    if 0.5 not in quantiles:
        raise ValueError("the quantiles must include the median (0.5): it is the point forecast scored")
    if season < 1:
        raise ValueError(f"season must be at least 1 step, got {season}")
    events = _event_windows(event_windows)
    pos = _positions(len(history), horizon, n_windows, step, 2 * season if min_train is None else min_train)
    idx, targets = history.values.index, history.targets
    starts = [idx[i] for i in pos]
    contexts = [history.upto(o) for o in starts]
    scales, notes = _scales(contexts, starts, targets, season)
    in_event = np.zeros(len(idx), dtype=bool)
    for start, end in events:
        in_event |= (idx >= start) & (idx < end)
    actuals = {t: history.values[t].to_numpy(dtype=float) for t in targets}

    from .select import Ensemble  # the ensemble is scored from its members' forecasts

    runs: dict[str, list[Forecast]] = {}
    plain = {f.name: f for f in forecasters if not isinstance(f, Ensemble)}
    for f in forecasters:
        for m in (f.members if isinstance(f, Ensemble) else ()):
            plain.setdefault(m.name, m)
    done, total = 0, len(plain) * len(starts)
    for f in plain.values():
        fitted, fitted_at, out = None, None, []
        for k, (i, o, ctx) in enumerate(zip(pos, starts, contexts)):
            seen = _seen_at(covariates, o)
            window = idx[i:i + horizon]
            try:
                stale = fitted is None or f.refit_each_origin or (refit_every and k - fitted_at >= refit_every)
                if stale:
                    fitted, fitted_at = f.fit(ctx, seen, seed=seed), k
                fc = fitted.predict(ctx, horizon, seen, quantiles)
                _check(fc, f.name, o, window, targets, quantiles)
            except ValueError as e:
                if not skip_failing:
                    e.add_note(f"while backtesting {f.name} at origin {o}")
                    raise
                notes.append(f"{f.name} left out: at origin {o}: {e}")
                out = None
                done += len(starts) - k
                break
            except Exception as e:
                e.add_note(f"while backtesting {f.name} at origin {o}")
                raise
            out.append(fc)
            done += 1
            if progress is not None:
                progress(done, total)
        if out is not None:
            runs[f.name] = out
    for f in forecasters:
        if isinstance(f, Ensemble):
            missing = [m.name for m in f.members if m.name not in runs]
            if missing:
                notes.append(f"{f.name} left out: its member(s) {', '.join(missing)} could not run")
                continue
            runs[f.name] = [f.combine([runs[m.name][k] for m in f.members]) for k in range(len(starts))]
    if not runs:
        raise ValueError("no forecaster could run: " + "; ".join(notes))

    blocks = []
    for f in (f for f in forecasters if f.name in runs):
        for i, o, fc in zip(pos, starts, runs[f.name]):
            window = idx[i:i + horizon]
            notes.extend(f"{f.name}: {n}" for n in fc.notes)
            cols = [fc.quantiles.index(q) for q in quantiles]
            for t in targets:
                blocks.append({"forecaster": [f.name] * horizon, "target": [t] * horizon,
                               "origin": np.full(horizon, o.value), "h": np.arange(1, horizon + 1),
                               "timestamp": window.asi8, "actual": actuals[t][i:i + horizon],
                               "scale": np.full(horizon, scales[o, t]), "in_event": in_event[i:i + horizon],
                               **{qcol(q): fc.values[t][:, c] for q, c in zip(quantiles, cols)}})
    table = pd.DataFrame({k: np.concatenate([np.asarray(b[k]) for b in blocks]) for k in blocks[0]})
    for col in ("origin", "timestamp"):  # carried as nanoseconds since the epoch, UTC
        table[col] = pd.to_datetime(table[col], utc=True).dt.tz_convert(idx.tz)
    return BacktestResult(table, history, quantiles, horizon, season, tuple(starts), events,
                          tuple(dict.fromkeys(notes)))


def _scales(contexts: list[History], starts: list[pd.Timestamp], targets, season: int):
    """Each window's MASE scale per target, from the history before its origin, and notes on
    the windows where it falls back (lag 1) or cannot be had (NaN: left out of MASE)."""
    scales, notes = {}, []
    short = sum(len(ctx) < 2 * season for ctx in contexts)
    if short:
        notes.append(f"the training data before {short} of {len(contexts)} origins is shorter than two seasons "
                     f"({2 * season} steps): their MASE scale uses the lag-1 naive forecast")
    for o, ctx in zip(starts, contexts):
        for t in targets:
            try:
                scales[o, t] = mase_scale(ctx.values[t].to_numpy(), season)
            except ValueError as e:
                scales[o, t] = math.nan
                notes.append(f"{t} at origin {o}: {e}; this window is left out of MASE")
    return scales, notes


def scores(g: pd.DataFrame, quantiles: tuple[float, ...]) -> dict:
    """Every metric of ``METRICS`` over the tidy forecast rows ``g``, and their number ``n``."""
    out = {"n": len(g), **{m: math.nan for m in METRICS}}
    if not len(g):
        return out
    y, med, s = g["actual"].to_numpy(), g[qcol(0.5)].to_numpy(), g["scale"].to_numpy()
    ok = np.isfinite(s)
    out["mase"] = mase(y[ok], med[ok], s[ok]) if ok.any() else math.nan
    out["smape"] = smape(y, med)
    out["pinball"] = pinball(y, g[[qcol(q) for q in quantiles]].to_numpy(), quantiles)
    for level, (lo, hi, alpha) in INTERVALS.items():
        if lo in quantiles and hi in quantiles:
            lo_, hi_ = g[qcol(lo)].to_numpy(), g[qcol(hi)].to_numpy()
            out[f"coverage_{level}"] = coverage(y, lo_, hi_)
            out[f"interval_score_{level}"] = interval_score(y, lo_, hi_, alpha)
    return out


def plain(v):
    """A value as plain JSON: numpy scalars unwrapped, NaN and infinities as None, times as ISO text."""
    if isinstance(v, (np.generic,)):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    return v


def _records(df: pd.DataFrame) -> list[dict]:
    return [{k: plain(v) for k, v in row.items()} for row in df.to_dict(orient="records")]


@dataclass(frozen=True)
class Window:
    """One forecast window, for a plot: the target's history tail before the origin, and per
    forecast step (indexed by timestamp) the actual and each quantile column."""

    forecaster: str
    target: str
    origin: pd.Timestamp
    history: pd.Series
    forecast: pd.DataFrame


@dataclass(frozen=True, eq=False)
class BacktestResult:
    """Every forecast of a backtest and its scores.

    ``forecasts`` is tidy: one row per (forecaster, target, origin, step ahead ``h``) with the
    ``timestamp``, the ``actual``, the window's MASE ``scale``, ``in_event`` and one column per
    quantile (``qcol(q)``).  Score tables are flat frames with the metrics of ``METRICS`` and the
    number ``n`` of scored steps; coverage and interval scores are NaN when their quantiles were
    not forecast.
    """

    forecasts: pd.DataFrame
    history: History
    quantiles: tuple[float, ...]
    horizon: int
    season: int
    origins: tuple[pd.Timestamp, ...]
    event_windows: tuple[tuple[pd.Timestamp, pd.Timestamp], ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def forecasters(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.forecasts["forecaster"]))

    @property
    def targets(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.forecasts["target"]))

    def frame(self, forecaster: str, target: str) -> pd.DataFrame:
        """The tidy rows of one forecaster and target."""
        f = self.forecasts
        rows = f[(f["forecaster"] == forecaster) & (f["target"] == target)]
        if rows.empty:
            raise KeyError(f"no forecasts of {target!r} by {forecaster!r}")
        return rows.drop(columns=["forecaster", "target"]).reset_index(drop=True)

    def _table(self, keys: list[str]) -> pd.DataFrame:
        rows = [{**dict(zip(keys, key)), **scores(g, self.quantiles)}
                for key, g in self.forecasts.groupby(keys, sort=False)]
        return pd.DataFrame(rows, columns=[*keys, "n", *METRICS])

    def summary(self) -> pd.DataFrame:
        """Scores per forecaster and target, over every window and step."""
        return self._table(["forecaster", "target"])

    def by_horizon(self) -> pd.DataFrame:
        """Scores per forecaster, target and step ahead ``h`` (1..horizon): error by horizon."""
        return self._table(["forecaster", "target", "h"])

    def by_event(self) -> pd.DataFrame:
        """Scores per forecaster and target, ``window`` 'inside' the event windows or 'outside'
        them (a side with no steps has n = 0 and NaN scores)."""
        if not self.event_windows:
            raise ValueError("this backtest was run without event windows")
        rows = []
        for (name, target), g in self.forecasts.groupby(["forecaster", "target"], sort=False):
            for label, mask in (("inside", g["in_event"]), ("outside", ~g["in_event"])):
                rows.append({"forecaster": name, "target": target, "window": label,
                             **scores(g[mask], self.quantiles)})
        return pd.DataFrame(rows, columns=["forecaster", "target", "window", "n", *METRICS])

    def relative_to(self, baseline: str) -> pd.DataFrame:
        """Each forecaster's MASE over the ``baseline``'s, per target (below 1: better)."""
        if baseline not in self.forecasters:
            raise ValueError(f"{baseline!r} is not one of the forecasters {list(self.forecasters)}")
        s = self.summary()[["forecaster", "target", "mase"]]
        base = s[s["forecaster"] == baseline].set_index("target")["mase"]
        out = s.assign(baseline_mase=s["target"].map(base))
        return out.assign(mase_ratio=out["mase"] / out["baseline_mase"])

    def best(self, target: str, metric: str = "mase") -> str:
        """The forecaster with the best ``metric`` on ``target``: the lowest score, or for a
        coverage the one closest to its nominal level."""
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}; choose one of {METRICS}")
        s = self.summary()
        s = s[s["target"] == target].set_index("forecaster")[metric]
        if metric.startswith("coverage_"):
            s = (s - int(metric.split("_")[1]) / 100).abs()
        s = s.dropna()
        if s.empty:
            raise ValueError(f"no forecaster has a {metric} score for {target!r}")
        return str(s.idxmin())

    def window(self, forecaster: str, target: str, origin=None, tail_steps: int | None = None) -> Window:
        """One window for a plot: by default the last origin and a history tail of
        max(season, 3 * horizon) steps."""
        origin = self.origins[-1] if origin is None else _utc(origin)
        rows = self.frame(forecaster, target)
        rows = rows[rows["origin"] == origin]
        if rows.empty:
            raise KeyError(f"{origin} is not an origin of this backtest: {[str(o) for o in self.origins]}")
        series = self.history.values[target]
        tail = series[series.index < origin].iloc[-(tail_steps or max(self.season, 3 * self.horizon)):]
        forecast = rows.set_index("timestamp")[["actual", *(qcol(q) for q in self.quantiles)]]
        return Window(forecaster, target, origin, tail, forecast)

    def to_dict(self) -> dict:
        """Settings and score tables as plain JSON values (NaN as None); not the forecasts."""
        return {"horizon": self.horizon, "season": self.season, "quantiles": list(self.quantiles),
                "step": str(self.history.step), "origins": [o.isoformat() for o in self.origins],
                "forecasters": list(self.forecasters), "targets": list(self.targets),
                "event_windows": [[s.isoformat(), e.isoformat()] for s, e in self.event_windows],
                "summary": _records(self.summary()), "by_horizon": _records(self.by_horizon()),
                "by_event": _records(self.by_event()) if self.event_windows else None,
                "notes": list(self.notes)}
