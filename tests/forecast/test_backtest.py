import json
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest

from twin.forecast.backtest import BacktestResult, backtest, origins, qcol
from twin.forecast.base import QUANTILES, Covariates, Fitted, Forecast, Forecaster, History, future_index
from twin.forecast.metrics import mase_scale

DAY = 24


def history(days=14, seed=0, targets=("requests_per_s", "user_concurrency")):
    idx = pd.date_range("2026-03-02", periods=DAY * days, freq="h", tz="UTC")
    rng = np.random.default_rng(seed)
    base = 50 + 20 * np.sin(2 * np.pi * np.arange(len(idx)) / DAY)
    return History(pd.DataFrame({t: base * (1 + i) + rng.normal(0, 2, len(idx)) for i, t in enumerate(targets)},
                                index=idx))


def spread(center: np.ndarray, width: np.ndarray | float, quantiles) -> np.ndarray:
    """Quantiles around ``center`` at offsets proportional to ``width`` (normal z-scores)."""
    z = [NormalDist().inv_cdf(q) for q in quantiles]
    return center[:, None] + np.outer(np.broadcast_to(width, center.shape), z)


@dataclass(frozen=True)
class _Fit(Fitted):
    name: str
    predict_fn: object
    log: list | None = None

    def predict(self, context, horizon, covariates=None, quantiles=QUANTILES):
        if self.log is not None:
            self.log.append(("predict", context.values.index[-1]))
        index = future_index(context, horizon)
        return Forecast(index, tuple(quantiles), self.predict_fn(context, index, covariates, quantiles), self.name)


@dataclass(frozen=True, eq=False)
class LastValue(Forecaster):
    """Repeat the last value; bands from the spread of the training data's one-step changes."""

    name: str = "last"
    refit_each_origin: bool = True
    log: list = field(default_factory=list)

    def fit(self, history, covariates=None, *, seed=0):
        self.log.append(("fit", history.values.index[-1]))
        width = {t: float(np.std(np.diff(history.values[t]))) for t in history.targets}

        def predict(context, index, covariates, quantiles):
            return {t: spread(np.full(len(index), context.values[t].iloc[-1]), width[t], quantiles)
                    for t in context.targets}
        return _Fit(self.name, predict, self.log)


@dataclass(frozen=True, eq=False)
class Oracle(Forecaster):
    """Knows the truth through a closure: every quantile is the actual value."""

    truth: pd.DataFrame
    name: str = "oracle"
    refit_each_origin: bool = False

    def fit(self, history, covariates=None, *, seed=0):
        def predict(context, index, covariates, quantiles):
            return {t: np.repeat(self.truth.loc[index, t].to_numpy()[:, None], len(quantiles), axis=1)
                    for t in context.targets}
        return _Fit(self.name, predict)


@dataclass(frozen=True, eq=False)
class Noisy(Forecaster):
    """Seasonal naive plus noise drawn from the seed: deterministic only through ``seed``."""

    name: str = "noisy"

    def fit(self, history, covariates=None, *, seed=0):
        rng = np.random.default_rng(seed)
        noise = rng.normal(0, 1, 10_000)

        def predict(context, index, covariates, quantiles):
            out = {}
            for t in context.targets:
                y = context.values[t].to_numpy()
                center = np.resize(y[-DAY:], len(index)) + noise[:len(index)]
                out[t] = spread(center, 3.0, quantiles)
            return out
        return _Fit(self.name, predict)


@pytest.fixture
def hist():
    return history()


# -- origins ---------------------------------------------------------------------------------

def test_origins_are_spaced_and_leave_a_horizon_after_the_last(hist):
    idx = hist.values.index
    os_ = origins(hist, horizon=24, n_windows=3)
    assert os_ == [idx[-72], idx[-48], idx[-24]]  # default step: one horizon, windows tile the end
    os_ = origins(hist, horizon=24, n_windows=4, step=6)
    assert [(o - os_[0]) / hist.step for o in os_] == [0, 6, 12, 18] and os_[-1] == idx[-24]


def test_origins_respect_min_train_and_say_when_too_short(hist):
    n = len(hist)
    assert origins(hist, horizon=24, n_windows=1, min_train=n - 24) == [hist.values.index[n - 24]]
    with pytest.raises(ValueError, match=r"too short .* needs 337"):
        origins(hist, horizon=24, n_windows=1, min_train=n - 23)
    with pytest.raises(ValueError, match="too short"):
        origins(hist, horizon=24, n_windows=14)
    with pytest.raises(ValueError, match="horizon must be at least 1"):
        origins(hist, horizon=0, n_windows=1)
    with pytest.raises(ValueError, match="step must be at least 1"):
        origins(hist, horizon=4, n_windows=2, step=0)


# -- backtest --------------------------------------------------------------------------------

@pytest.mark.parametrize("refit", [True, False])
def test_oracle_scores_zero_and_last_value_is_scored(hist, refit):
    last = LastValue(refit_each_origin=refit)
    res = backtest([last, Oracle(hist.values)], hist, horizon=24, n_windows=4, season=DAY)
    s = res.summary().set_index(["forecaster", "target"])
    for t in hist.targets:
        o = s.loc[("oracle", t)]
        assert o["mase"] == 0 and o["smape"] == 0 and o["pinball"] == 0
        assert o["coverage_80"] == 1 and o["coverage_90"] == 1 and o["n"] == 4 * 24
        assert s.loc[("last", t), "mase"] > 1  # repeating the last value misses the daily cycle
    assert res.best("requests_per_s") == "oracle"
    fits = [e for e in last.log if e[0] == "fit"]
    assert len(fits) == (4 if refit else 1)


def test_the_tidy_table_holds_every_forecast_with_its_actual(hist):
    res = backtest([LastValue()], hist, horizon=12, n_windows=3, step=6, season=DAY)
    f = res.frame("last", "requests_per_s")
    assert list(f.columns[:7]) == ["origin", "h", "timestamp", "actual", "scale", "in_event", qcol(0.05)]
    assert len(f) == 3 * 12 and f["h"].tolist() == list(range(1, 13)) * 3
    assert ((f["timestamp"] - f["origin"]) / hist.step == f["h"] - 1).all()
    truth = hist.values["requests_per_s"]
    assert np.array_equal(f["actual"], truth.loc[f["timestamp"]].to_numpy())
    # each window's MASE scale comes from the history before its origin
    for o, g in f.groupby("origin"):
        assert g["scale"].iloc[0] == pytest.approx(mase_scale(truth[truth.index < o].to_numpy(), DAY))
    # the forecast is the last value before the origin
    for o, g in f.groupby("origin"):
        assert (g[qcol(0.5)] == truth[truth.index < o].iloc[-1]).all()


def test_scores_match_a_hand_computation(hist):
    res = backtest([LastValue()], hist, horizon=24, n_windows=2, season=DAY)
    f = res.frame("last", "user_concurrency")
    err = (f["actual"] - f[qcol(0.5)]).abs()
    s = res.summary().set_index(["forecaster", "target"]).loc[("last", "user_concurrency")]
    assert s["mase"] == pytest.approx((err / f["scale"]).mean())
    inside = (f["actual"] >= f[qcol(0.1)]) & (f["actual"] <= f[qcol(0.9)])
    assert s["coverage_80"] == pytest.approx(inside.mean())
    bh = res.by_horizon()
    bh = bh[(bh["forecaster"] == "last") & (bh["target"] == "user_concurrency")]
    assert bh["h"].tolist() == list(range(1, 25)) and (bh["n"] == 2).all()
    assert bh.iloc[0]["mase"] == pytest.approx((err / f["scale"])[f["h"] == 1].mean())


def test_relative_to_a_baseline(hist):
    res = backtest([LastValue(), Oracle(hist.values), Noisy()], hist, horizon=24, n_windows=3, season=DAY)
    rel = res.relative_to("last").set_index(["forecaster", "target"])
    assert (rel.xs("last")["mase_ratio"] == 1).all() and (rel.xs("oracle")["mase_ratio"] == 0).all()
    assert (rel.xs("noisy")["mase_ratio"] < 1).all()  # seasonal naive beats repeating the last value
    with pytest.raises(ValueError, match="not one of the forecasters"):
        res.relative_to("ets")


def test_no_look_ahead_in_either_refit_mode(hist):
    for refit in (True, False):
        rec = LastValue(refit_each_origin=refit)
        res = backtest([rec], hist, horizon=24, n_windows=3, step=12, season=DAY)
        fits = [ts for kind, ts in rec.log if kind == "fit"]
        predicts = [ts for kind, ts in rec.log if kind == "predict"]
        assert len(predicts) == 3
        for ts, origin in zip(predicts, res.origins):
            assert ts < origin and ts == origin - hist.step  # the context ends right before the origin
        if refit:
            assert all(ts < o for ts, o in zip(fits, res.origins))
        else:
            assert fits == [res.origins[0] - hist.step]  # fitted once, before the first origin


@dataclass(frozen=True, eq=False)
class Cheater(Forecaster):
    """Tries to read an observed covariate (here: the target itself) after the origin, through
    ``Covariates.window`` and through the raw frame, and forecasts it where it finds it."""

    seen: list
    name: str = "cheater"
    refit_each_origin: bool = False

    def fit(self, history, covariates=None, *, seed=0):
        def predict(context, index, covariates, quantiles):
            origin = index[0]
            via_window = covariates.window(index[0], index[-1] + context.step, origin)["leak"]
            via_frame = covariates.frame.loc[index, "leak"]
            self.seen.append((via_window.notna().sum(), via_frame.notna().sum()))
            last = context.values["requests_per_s"].iloc[-1]
            guess = via_frame.fillna(last).to_numpy()
            return {"requests_per_s": np.repeat(guess[:, None], len(quantiles), axis=1)}
        return _Fit(self.name, predict)


def test_observed_covariates_after_the_origin_stay_hidden():
    h = history(targets=("requests_per_s",))
    idx = pd.date_range(h.values.index[0], periods=len(h) + DAY, freq=h.step)
    leak = pd.Series(np.nan, index=idx)
    leak[h.values.index] = h.values["requests_per_s"]
    cov = Covariates(pd.DataFrame({"leak": leak, "hour": idx.hour}, index=idx), known=("hour",), observed=("leak",))
    seen = []
    res = backtest([Cheater(seen), Oracle(h.values)], h, cov, horizon=24, n_windows=3, season=DAY)
    assert seen == [(0, 0)] * 3  # nothing at or after any origin was visible
    assert res.summary().set_index("forecaster").loc["cheater", "mase"] > 0.5
    assert cov.frame["leak"].notna().sum() == len(h)  # the caller's covariates are untouched


def test_event_windows_are_scored_apart():
    h = history(targets=("requests_per_s",))
    values = h.values.copy()
    start, end = values.index[-30], values.index[-20]
    values.loc[(values.index >= start) & (values.index < end)] += 300  # a campaign spike
    h = History(values)
    res = backtest([LastValue()], h, horizon=24, n_windows=3, season=DAY, event_windows=[(start, end)])
    ev = res.by_event().set_index("window")
    assert ev.loc["inside", "n"] == 10 and ev.loc["outside", "n"] == 3 * 24 - 10
    assert ev.loc["inside", "mase"] > 3 * ev.loc["outside", "mase"]
    f = res.frame("last", "requests_per_s")
    inside = f[f["in_event"]]
    assert ((inside["timestamp"] >= start) & (inside["timestamp"] < end)).all()
    err = (inside["actual"] - inside[qcol(0.5)]).abs() / inside["scale"]
    assert ev.loc["inside", "mase"] == pytest.approx(err.mean())
    with pytest.raises(ValueError, match="ends before it starts"):
        backtest([LastValue()], h, horizon=24, n_windows=1, season=DAY, event_windows=[(end, start)])


def test_an_event_window_outside_the_backtest_scores_nothing_inside(hist):
    res = backtest([LastValue()], hist, horizon=24, n_windows=1, season=DAY,
                   event_windows=[("2020-01-01", "2020-01-02")])
    ev = res.by_event().set_index(["target", "window"]).xs("requests_per_s")
    assert ev.loc["inside", "n"] == 0 and np.isnan(ev.loc["inside", "mase"])
    assert json.dumps(res.to_dict(), allow_nan=False)
    with pytest.raises(ValueError, match="without event windows"):
        backtest([LastValue()], hist, horizon=24, n_windows=1, season=DAY).by_event()


def test_same_seed_same_numbers(hist):
    def run(seed):
        return backtest([Noisy(), LastValue()], hist, horizon=24, n_windows=3, season=DAY, seed=seed)
    a, b, c = run(0), run(0), run(1)
    pd.testing.assert_frame_equal(a.forecasts, b.forecasts)
    pd.testing.assert_frame_equal(a.summary(), b.summary())
    assert a.to_dict() == b.to_dict()
    assert not a.forecasts[qcol(0.5)].equals(c.forecasts[qcol(0.5)])


def test_progress_is_reported_after_each_forecaster_and_origin(hist):
    calls = []
    backtest([LastValue(), Noisy()], hist, horizon=24, n_windows=3, season=DAY,
             progress=lambda done, total: calls.append((done, total)))
    assert calls == [(i, 6) for i in range(1, 7)]


def test_plot_data_and_json(hist):
    res = backtest([LastValue(), Oracle(hist.values)], hist, horizon=24, n_windows=2, season=DAY)
    w = res.window("oracle", "requests_per_s")
    assert w.origin == res.origins[-1] and len(w.history) == 3 * 24 and w.history.index[-1] < w.origin
    assert len(w.forecast) == 24 and list(w.forecast.columns) == ["actual", *(qcol(q) for q in QUANTILES)]
    assert (w.forecast["actual"] == w.forecast[qcol(0.5)]).all()
    assert len(res.window("last", "requests_per_s", origin=res.origins[0], tail_steps=5).history) == 5
    with pytest.raises(KeyError):
        res.window("last", "requests_per_s", origin=hist.values.index[3])
    d = json.loads(json.dumps(res.to_dict(), allow_nan=False))
    assert d["forecasters"] == ["last", "oracle"] and d["horizon"] == 24 and len(d["origins"]) == 2
    assert d["by_event"] is None and len(d["by_horizon"]) == 2 * 2 * 24
    assert isinstance(res, BacktestResult)


def test_bad_setups_say_what_is_wrong(hist):
    with pytest.raises(ValueError, match="distinct names"):
        backtest([LastValue(), LastValue()], hist, horizon=24, n_windows=1, season=DAY)
    with pytest.raises(ValueError, match="median"):
        backtest([LastValue()], hist, horizon=24, n_windows=1, season=DAY, quantiles=(0.1, 0.9))
    with pytest.raises(ValueError, match="too short"):
        backtest([LastValue()], hist, horizon=24, n_windows=1, season=7 * DAY)  # needs 2 seasons first

    class Short(LastValue):  # forecasts one step too few
        def fit(self, history, covariates=None, *, seed=0):
            fitted = super().fit(history, covariates, seed=seed)

            class Fit(Fitted):
                name = "last"

                def predict(self, context, horizon, covariates=None, quantiles=QUANTILES):
                    return fitted.predict(context, horizon - 1, covariates, quantiles)
            return Fit()

    with pytest.raises(ValueError, match="covers 23 steps") as e:
        backtest([Short()], hist, horizon=24, n_windows=1, season=DAY)
    assert "while backtesting last" in str(e.value.__notes__)


def test_short_training_data_falls_back_and_says_so(hist):
    res = backtest([LastValue()], hist, horizon=24, n_windows=2, season=7 * DAY, min_train=DAY)
    assert any("shorter than two seasons" in n for n in res.notes)
    assert np.isfinite(res.summary()["mase"]).all()


def test_without_interval_quantiles_coverage_is_nan(hist):
    res = backtest([LastValue()], hist, horizon=24, n_windows=1, season=DAY, quantiles=(0.25, 0.5, 0.75))
    s = res.summary()
    assert s["coverage_80"].isna().all() and s["pinball"].notna().all()


def test_refit_every_refits_a_global_model_on_schedule_with_no_look_ahead(hist):
    rec = LastValue(refit_each_origin=False)
    res = backtest([rec], hist, horizon=12, n_windows=5, step=12, season=DAY, refit_every=2)
    fits = [ts for kind, ts in rec.log if kind == "fit"]
    assert fits == [res.origins[k] - hist.step for k in (0, 2, 4)]


def test_an_ensemble_is_scored_from_its_members_run_once(hist):
    from twin.forecast.select import Ensemble

    a, b = LastValue(name="a"), LastValue(name="b")
    res = backtest([a, Ensemble((a, b), name="ab")], hist, horizon=24, n_windows=3, season=DAY)
    assert sum(kind == "fit" for kind, _ in a.log) == 3  # a listed and a member: fitted once per origin
    assert res.forecasters == ("a", "ab")  # b ran as a member only
    f = res.forecasts
    mine = f[f["forecaster"] == "ab"].reset_index(drop=True)
    theirs = f[f["forecaster"] == "a"].reset_index(drop=True)
    # a and b are the same model: their average is each of them
    np.testing.assert_allclose(mine[qcol(0.5)], theirs[qcol(0.5)])


@dataclass(frozen=True, eq=False)
class TooShort(Forecaster):
    name: str = "too_short"

    def fit(self, history, covariates=None, *, seed=0):
        raise ValueError(f"history of {len(history)} steps is too short for me")


def test_a_model_that_cannot_run_is_left_out_with_a_note_when_asked(hist):
    from twin.forecast.select import Ensemble

    a = LastValue(name="a")
    with pytest.raises(ValueError, match="too short for me"):
        backtest([a, TooShort()], hist, horizon=24, n_windows=2, season=DAY)
    res = backtest([a, TooShort(), Ensemble((a, TooShort()), name="e")], hist, horizon=24, n_windows=2, season=DAY,
                   skip_failing=True)
    assert res.forecasters == ("a",)
    assert any(n.startswith("too_short left out") for n in res.notes)
    assert any(n.startswith("e left out: its member(s) too_short") for n in res.notes)
    with pytest.raises(ValueError, match="no forecaster could run"):
        backtest([TooShort()], hist, horizon=24, n_windows=2, season=DAY, skip_failing=True)
