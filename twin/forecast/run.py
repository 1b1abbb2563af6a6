"""What ``twin forecast`` does: read a history and its covariates, name the models, backtest
them, and write the tables, plots and the load profile.

>>> from twin.forecast.run import MODELS
>>> sorted(MODELS)
['ensemble', 'lstm', 'mstl', 'seasonal_naive_daily', 'seasonal_naive_weekly']
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..spec import TwinError
from .backtest import BacktestResult, backtest, plain, scores
from .calibrate import calibrated, learn
from .base import Covariates, Forecaster, History
from .baselines import SeasonalNaive, StatsBaseline
from .covariates import build_covariates, read_events, read_posts
from .events import EventAdjusted, event_columns
from .select import Ensemble, Selection, clearly_better, online, select, window_scores
from .series import Repairs, history_from_trace, read_series_csv, regularize, season_check


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


def models(names, horizon: int, *, events: bool = False) -> list[Forecaster]:
    """The forecasters named (a '+events' suffix, as backtest tables show it, is accepted)."""
    names = [n.removesuffix("+events") for n in names]
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        raise TwinError(f"--models: unknown model(s) {', '.join(unknown)}; expected some of {', '.join(MODELS)}")
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


def fit_chosen(inputs: Inputs, name: str, *, horizon: int, windows: int, seed: int, progress=None):
    """(model name, recalibration, notes, fitted model): what ``twin forecast fit|predict`` use.

    A backtest over the last ``windows`` windows (fewer if the history holds fewer after two days
    of training) chooses the model when ``name`` is 'auto' (``choose``) and learns how far its
    intervals must be widened or narrowed (``twin.forecast.calibrate.learn``); then the model
    is fitted on the whole history.  A history too short for the backtest keeps a named model's
    own intervals, with a note."""
    names = list(DEFAULT_MODELS) if name == AUTO else [name]
    models(names, horizon)  # an unknown name fails before any work
    history = inputs.history
    target = history.targets[0]
    season = max(1, history.steps_per(pd.Timedelta(days=1)))
    windows = max(2, min(windows, (len(history) - 2 * season - horizon) // horizon + 1))
    notes, recal = [], None
    try:
        result = run_backtest(inputs, names, horizon=horizon, windows=windows, seed=seed, progress=progress)
    except TwinError as e:
        if name == AUTO:
            raise TwinError(f"{e}; choosing a model needs this backtest: name one with --model, or use fewer "
                            f"--calibration-windows or a shorter --horizon") from None
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
    """'1d', '6h', '90min' or a number of steps -> steps of the history."""
    from ..spec.units import parse_seconds

    try:
        if str(text).isdigit():
            return int(text)
        seconds = float(parse_seconds(str(text)))
    except ValueError as e:
        raise TwinError(f"{what}: {e}") from None
    n = int(round(seconds / history.step.total_seconds()))
    if n < 1:
        raise TwinError(f"{what}: {text} is shorter than the history's step ({history.step})")
    return n


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
                social: Path | None = None, trace_step: str | None = None, counts: bool = False) -> Inputs:
    """History (repaired, repairs stated) and covariates reaching ``horizon`` past its end.
    ``social``: posts or mention counts, an observed covariate (read up to each origin only).
    With ``trace_step``, ``series`` is a request trace (any format ``twin.traces`` reads): its
    entry requests give requests/s, data volume and concurrency per step, and the trace is kept
    for the class mix and burstiness of the load profile.  ``counts``: the series holds counts
    per step (NAB's request counts per 5 minutes), turned into rates per second."""
    trace = None
    if trace_step:
        from ..traces import read_traces

        full, _ = read_traces([series])
        trace = full[full["parent_id"].isna()] if "parent_id" in full else full
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
    n_future = steps(horizon, history, "--horizon") if extend else 0
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


__all__ = ["AUTO", "MODELS", "DEFAULT_CHOICE", "DEFAULT_MODELS", "RECENT_WINDOWS", "Chosen", "Inputs", "choose",
           "fit_chosen", "has_events", "load_inputs", "models", "run_backtest", "selection", "steps", "write_backtest"]
