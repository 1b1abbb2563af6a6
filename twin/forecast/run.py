"""What ``twin forecast`` does: read a history and its covariates, name the models, backtest
them, and write the tables, plots and the load profile.

>>> from twin.forecast.run import MODELS
>>> sorted(MODELS)
['ensemble', 'lstm', 'mstl', 'seasonal_naive_daily', 'seasonal_naive_weekly']
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..spec import Problem, SpecError, TwinError
from .backtest import BacktestResult, backtest, plain, scores
from .calibrate import calibrated, learn
from .base import Covariates, Forecaster, History
from .baselines import SeasonalNaive, StatsBaseline
from .covariates import build_covariates, read_events, read_posts
from .events import EventAdjusted, event_columns
from .select import Ensemble, Selection, clearly_better, online, select, window_scores
from .series import (Repairs, SeriesError, duration_text, history_from_trace, positive_duration, read_series_csv,
                     regularize, season_check)


def _lstm(horizon: int) -> Forecaster:
    from .lstm import LSTMForecaster

    return LSTMForecaster(horizon=horizon)


def _mstl(events: bool) -> Forecaster:
    return EventAdjusted(StatsBaseline()) if events else StatsBaseline()


def _naive(events: bool) -> Forecaster:
    return EventAdjusted(SeasonalNaive("longest")) if events else SeasonalNaive("longest")


#: name -> (horizon, events) -> forecaster.  With events (an events calendar or holidays among
#: the covariates), MSTL and the ensemble's seasonal naive learn the events' effects from past
#: occurrences (``twin.forecast.events``); the LSTM reads them as inputs.  The seasonal naive
#: models listed on their own stay plain: they are the floor.
MODELS = {
    "seasonal_naive_daily": lambda h, ev: SeasonalNaive("daily"),
    "seasonal_naive_weekly": lambda h, ev: SeasonalNaive("weekly"),
    "mstl": lambda h, ev: _mstl(ev),
    "lstm": lambda h, ev: _lstm(h),
    "ensemble": lambda h, ev: Ensemble((_mstl(ev), _lstm(h), _naive(ev)), name="ensemble"),
}
DEFAULT_MODELS = tuple(MODELS)
#: Kept by a selection unless another model beats it clearly (``twin.forecast.select``).
DEFAULT_CHOICE = "ensemble"
#: The model ``twin forecast predict`` uses unless told: chosen by a backtest.
AUTO = "auto"


#: What a user wrote for each setting, by name: the CLI's flags; ``twin run`` passes ``FIELDS``.
FLAGS = {"model": "--model", "models": "--models", "horizon": "--horizon",
         "calibration_windows": "--calibration-windows", "trace_step": "--trace-step"}
#: The same settings as an experiment's config fields.
FIELDS = {"model": "forecast.model", "models": "forecast.model", "horizon": "forecast.horizon",
          "calibration_windows": "forecast.calibration_windows", "trace_step": "history.trace_step"}
#: Shortest history forecast: the 5% and 95% quantiles come from past errors, which need 20 or more.
MIN_HISTORY_STEPS = 24
#: Longest horizon, in steps, whatever the history's length (which also bounds it).
MAX_HORIZON_STEPS = 10_000
#: Longest history a trace is cut into (a tiny step on a long trace would not fit in memory).
MAX_TRACE_STEPS = 500_000


def _problem(label: str, message: str) -> SpecError:
    """An error in the setting the user wrote as ``label`` (a flag, or a config field that
    ``SpecError.located`` can pin to its line)."""
    return SpecError([Problem(label, message)])


def models(names, horizon: int, *, events: bool = False, label: str = FLAGS["models"]) -> list[Forecaster]:
    """The forecasters named (a '+events' suffix, as backtest tables show it, is accepted)."""
    names = [n.removesuffix("+events") for n in names]
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        raise _problem(label, f"unknown model(s) {', '.join(unknown)}; expected some of {', '.join(MODELS)}")
    return [MODELS[n](horizon, events) for n in names]


def choose(result: BacktestResult, target: str, alpha: float = 0.05) -> str:
    """The model with the lowest MASE over all of ``result``'s windows, unless the ensemble is
    among them and that model does not beat it clearly (``clearly_better``)."""
    best = result.best(target)
    if DEFAULT_CHOICE in result.forecasters and best != DEFAULT_CHOICE:
        per_window = window_scores(result, target, result.origins)
        if not clearly_better(per_window[best].to_numpy(), per_window[DEFAULT_CHOICE].to_numpy(), alpha):
            return DEFAULT_CHOICE
    return best


def fit_chosen(inputs: Inputs, name: str, *, horizon: int, windows: int, seed: int, progress=None, labels=FLAGS):
    """(model name, recalibration, notes, fitted model): what ``twin forecast fit|predict`` use.
    ``labels`` name the settings in errors (``FLAGS``, or ``FIELDS`` for an experiment).

    A backtest over the last ``windows`` windows (fewer if the history holds fewer after two days
    of training) chooses the model when ``name`` is 'auto' (``choose``) and learns how far its
    intervals must be widened or narrowed (``twin.forecast.calibrate.learn``); then the model
    is fitted on the whole history.  A history too short for the backtest keeps a named model's
    own intervals, with a note."""
    names = list(DEFAULT_MODELS) if name == AUTO else [name]
    models(names, horizon, label=labels["model"])  # an unknown name fails before any work
    history = inputs.history
    target = history.targets[0]
    season = max(1, history.steps_per(pd.Timedelta(days=1)))
    windows = max(2, min(windows, (len(history) - 2 * season - horizon) // horizon + 1))
    notes, recal = [], None
    try:
        result = run_backtest(inputs, names, horizon=horizon, windows=windows, seed=seed, progress=progress)
    except TwinError as e:
        if name == AUTO:
            raise _problem(labels["model"], f"auto chooses by a backtest, and {str(e).removeprefix('backtest: ')}; "
                                            f"name a model, or use fewer {labels['calibration_windows']} or a "
                                            f"shorter {labels['horizon']}") from None
        notes.append(f"intervals not recalibrated: {e}")
    else:
        if name == AUTO:
            name = choose(result, target)
            s = result.summary().set_index(["forecaster", "target"])["mase"]
            notes.append(f"{name} chosen by a backtest over {len(result.origins)} windows (MASE "
                         + ", ".join(f"{n} {s[(n, target)]:.3f}" for n in result.forecasters)
                         + f"; the {DEFAULT_CHOICE} is kept unless another model beats it clearly)")
        recal = learn(result, name)
        notes.append(f"intervals recalibrated from {recal.windows} backtest windows: the distance from the median x "
                     + ", ".join(f"{f:.2f} at q{q:g}" for q, f in zip(recal.quantiles, recal.factors[target])
                                 if q != 0.5))
    [model] = models([name], horizon, events=has_events(inputs.covariates))
    try:
        return name, recal, notes, model.fit(history, inputs.covariates, seed=seed)
    except ValueError as e:
        raise TwinError(f"{name}: {e}") from None


def predict_profile(fitted, recal, inputs: Inputs, horizon: int, *, what: str | None = None):
    """(load profile frame, forecast): the fitted model's forecast of ``horizon`` steps,
    recalibrated, with the class mix and burstiness when the history came from a trace."""
    try:
        fc = fitted.predict(inputs.history, horizon, inputs.covariates)
    except ValueError as e:
        raise TwinError(f"{what or fitted.name}: {e}") from None
    if recal is not None:
        fc = recal.apply(fc)
    frame = fc.to_frame()
    if inputs.trace is not None:
        from .profile import shape_profile

        frame = frame.join(shape_profile(inputs.trace, inputs.history.step, frame.index))
    frame.index.name = "timestamp"
    return frame, fc


def has_events(covariates: Covariates | None) -> bool:
    """Whether the covariates hold an events calendar or holidays."""
    return bool(event_columns(covariates))


def steps(text: str, history: History, what: str) -> int:
    """'1d', '6h', '90min' or a number of steps -> steps of the history: at least one, and at
    most the history's length and ``MAX_HORIZON_STEPS`` (a forecast, or a backtest's step,
    longer than the history it learns from is not honest, and its work would be unbounded).
    ``what`` names the setting (a flag, or a config field) in errors."""
    from ..spec.units import parse_seconds

    try:
        if str(text).isdigit():
            n = int(text)
        else:
            seconds = float(parse_seconds(str(text)))
            n = round(seconds / history.step.total_seconds()) if math.isfinite(seconds) else math.inf
    except ValueError as e:
        raise _problem(what, str(e)) from None
    if n < 1:
        raise _problem(what, f"{text} is shorter than the history's step ({history.step})")
    limit = min(len(history), MAX_HORIZON_STEPS)
    if n > limit:
        many = "more steps than fit in a number" if n == math.inf else f"{n} steps of {duration_text(history.step)}"
        raise _problem(what, f"{text} is {many}; at most {limit} are allowed (no more than the history's "
                             f"{len(history)} steps, and never more than {MAX_HORIZON_STEPS})")
    return int(n)


@dataclass(frozen=True)
class Inputs:
    history: History
    repairs: Repairs
    covariates: Covariates | None
    event_windows: tuple[tuple[pd.Timestamp, pd.Timestamp], ...]
    notes: tuple[str, ...]
    trace: pd.DataFrame | None = None  # the entry requests, when the history came from a trace


def _social(path: Path, time_zone: str | None):
    """Posts (a CSV with a text column: mention volume and VADER sentiment) or a mention-count
    series, and the repairs made reading them."""
    import csv

    try:
        with Path(path).open(newline="", encoding="utf-8-sig") as f:
            header = [h.strip().lower() for h in next(csv.reader(f), [])]
    except OSError as e:
        raise TwinError(f"{path}: cannot read the social signal file ({e.strerror})") from None
    if "text" in header:
        posts, repairs = read_posts(path, time_zone=time_zone, drop_empty=True)
        return posts, list(repairs.lines)
    return read_series_csv(path, time_zone=time_zone), []


def load_inputs(series: Path, *, value_column: str | None, target: str, time_zone: str | None,
                events: Path | None, holidays: str | None, horizon: str, extend: bool = True,
                social: Path | None = None, trace_step: str | None = None, counts: bool = False,
                labels=FLAGS) -> Inputs:
    """History (repaired, repairs stated) and covariates reaching ``horizon`` past its end.
    ``social``: posts or mention counts, an observed covariate (read up to each origin only).
    With ``trace_step``, ``series`` is a request trace (any format ``twin.traces`` reads): its
    entry requests give requests/s, data volume and concurrency per step, and the trace is kept
    for the class mix and burstiness of the load profile.  ``counts``: the series holds counts
    per step (NAB's request counts per 5 minutes), turned into rates per second.  A history of
    fewer than ``MIN_HISTORY_STEPS`` steps is refused; ``labels`` name the settings in errors."""
    trace = None
    if trace_step:
        from ..traces import read_traces

        try:
            step = positive_duration(trace_step, "step")
        except SeriesError as e:  # before the trace is read
            raise _problem(labels["trace_step"], str(e).removeprefix("step=")) from None
        full, _ = read_traces([series])
        trace = full[full["parent_id"].isna()] if "parent_id" in full else full
        ts = trace["timestamp"] if "timestamp" in trace else None
        if ts is not None and isinstance(ts.dtype, pd.DatetimeTZDtype) and ts.notna().any():
            n = (ts.max() - ts.min()) / step
            if n > MAX_TRACE_STEPS:
                span = duration_text(ts.max() - ts.min())
                raise _problem(labels["trace_step"], f"{trace_step} cuts {series}'s {span} into {n:,.0f} steps, "
                                                     f"more than {MAX_TRACE_STEPS:,}; use a longer step")
        history, repairs = history_from_trace(trace, step=trace_step)
    else:
        frame = read_series_csv(series, value_columns=[value_column] if value_column else None, time_zone=time_zone)
        if frame.shape[1] != 1:
            raise TwinError(f"{series}: {frame.shape[1]} value columns ({', '.join(frame.columns)}); name one with "
                            f"--value-column")
        frame.columns = [target]
        history, repairs = regularize(frame)
        if counts:  # counts per step -> a rate per second
            history = History(history.values / history.step.total_seconds())
    if len(history) < MIN_HISTORY_STEPS:
        raise TwinError(f"{series}: {len(history)} step(s) of {duration_text(history.step)} are too short a history "
                        f"to forecast: at least {MIN_HISTORY_STEPS} steps are needed (the forecast's intervals come "
                        f"from its past errors)")
    n_future = steps(horizon, history, labels["horizon"]) if extend else 0
    index = pd.date_range(history.values.index[0], periods=len(history) + n_future, freq=history.step, tz="UTC")
    ev = read_events(events) if events else None
    soc, soc_notes = _social(social, time_zone) if social else (None, [])
    covariates = build_covariates(index, events=ev, holidays_country=holidays, social=soc)
    windows = ()
    if ev is not None and len(ev):
        windows = tuple((pd.Timestamp(s), pd.Timestamp(e)) for s, e in zip(ev["start"], ev["end"]))
    return Inputs(history, repairs, covariates, windows, tuple(season_check(history)) + tuple(soc_notes), trace)


def run_backtest(inputs: Inputs, names, *, horizon: int, windows: int, seed: int, step: int | None = None,
                 refit_every: int | None = None, progress=None) -> BacktestResult:
    history = inputs.history
    season = max(1, history.steps_per(pd.Timedelta(days=1)))
    try:
        return backtest(models(names, horizon, events=has_events(inputs.covariates)), history, inputs.covariates, horizon=horizon, n_windows=windows,
                        step=step, season=season, event_windows=inputs.event_windows or None, seed=seed,
                        refit_every=refit_every, skip_failing=len(names) > 1, progress=progress)
    except ValueError as e:
        raise TwinError(f"backtest: {e}") from None


#: Windows the selection rule looks back on, in service (``twin.forecast.select.online``).
RECENT_WINDOWS = 8


@dataclass(frozen=True)
class Chosen:
    """Two honest views of choosing a model from a backtest, both scored on its later half:

    - ``selection``: chosen once, on the earlier half of the windows (``select``);
      ``recalibrated`` is that model with online interval recalibration, ``scores`` its scores;
    - ``online``: the rule as it runs in service, re-applied at every origin to the windows that
      had ended by then (``twin.forecast.select.online``), recalibrated the same way;
      ``online_scores`` its scores and ``choices`` the model it chose at each origin.
    """

    selection: Selection
    recalibrated: BacktestResult
    scores: dict
    online: BacktestResult
    online_scores: dict
    choices: dict


def selection(result: BacktestResult, target: str) -> Chosen | None:
    if len(result.origins) < 2:
        return None
    default = DEFAULT_CHOICE if DEFAULT_CHOICE in result.forecasters else None
    chosen = select(result, target, default=default)
    late = list(chosen.evaluation_origins)

    def late_scores(r: BacktestResult) -> dict:
        f = r.forecasts
        return scores(f[f["origin"].isin(late) & (f["target"] == target)], result.quantiles)

    cal = calibrated(result, chosen.chosen)
    served, choices = online(result, target, recent=RECENT_WINDOWS, default=default)
    served = calibrated(served, "selected", name="selected")
    return Chosen(chosen, cal, late_scores(cal), served, late_scores(served), choices)


def _plain(d: dict) -> dict:
    return {k: plain(v) for k, v in d.items()}


def write_backtest(folder: Path, result: BacktestResult, inputs: Inputs, chosen: Chosen | None) -> None:
    """summary.json, forecasts.parquet, by_horizon.csv and report.html with the figures."""
    from ..report.forecast import render

    folder.mkdir(parents=True, exist_ok=True)
    doc = {**result.to_dict(), "repairs": list(inputs.repairs.lines), "notes": list(inputs.notes) + list(result.notes)}
    if chosen is not None:
        sel = chosen.selection
        doc["selection"] = {"target": sel.target, "chosen": sel.chosen,
                            "selected_on": [str(o) for o in sel.selection_origins],
                            "scored_on": [str(o) for o in sel.evaluation_origins],
                            "scores": json.loads(sel.evaluation_scores.to_json(orient="records")),
                            "recalibrated_scores": _plain(chosen.scores),
                            "online": {"recent_windows": RECENT_WINDOWS, "scores": _plain(chosen.online_scores),
                                       "chosen": {str(o): n for o, n in chosen.choices.items()}}}
    (folder / "summary.json").write_text(json.dumps(doc, indent=2, default=str))
    result.forecasts.to_parquet(folder / "forecasts.parquet")
    result.by_horizon().to_csv(folder / "by_horizon.csv", index=False)
    (folder / "report.html").write_text(render(result, inputs, chosen))


__all__ = ["AUTO", "FIELDS", "FLAGS", "MAX_HORIZON_STEPS", "MIN_HISTORY_STEPS", "MODELS", "DEFAULT_CHOICE",
           "DEFAULT_MODELS", "RECENT_WINDOWS", "Chosen", "Inputs", "choose",
           "fit_chosen", "has_events", "load_inputs", "models", "run_backtest", "selection", "steps", "write_backtest"]
