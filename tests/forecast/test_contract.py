"""Every forecaster honours the contract of twin.forecast.base (one suite, run for each)."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from twin.forecast.base import QUANTILES, Covariates, Forecast, History
from twin.forecast.baselines import SeasonalNaive, StatsBaseline


def forecasters():
    out = [SeasonalNaive("daily"), SeasonalNaive("weekly"), StatsBaseline()]
    try:
        from twin.forecast.lstm import LSTMForecaster

        out.append(LSTMForecaster(horizon=24, lookback=48, hidden=8, epochs=3))
    except ImportError:
        pass
    return out


def history(days=21, targets=("requests_per_s", "data_volume_bytes_per_s"), seed=0):
    idx = pd.date_range("2026-03-02", periods=24 * days, freq="h", tz="UTC")
    rng = np.random.default_rng(seed)
    base = 50 + 20 * np.sin(2 * np.pi * np.arange(len(idx)) / 24) + 8 * (idx.dayofweek >= 5)
    cols = {t: (base * (1 + i) + rng.normal(0, 2, len(idx))).clip(0) for i, t in enumerate(targets)}
    return History(pd.DataFrame(cols, index=idx))


def covariates(h, extra_days=2):
    idx = pd.date_range(h.values.index[0], periods=len(h) + 24 * extra_days, freq=h.step, tz="UTC")
    frame = pd.DataFrame({"hour_sin": np.sin(2 * np.pi * idx.hour / 24), "mentions": np.arange(len(idx), dtype=float)},
                         index=idx)
    return Covariates(frame, known=("hour_sin",), observed=("mentions",))


@pytest.mark.parametrize("model", forecasters(), ids=lambda m: m.name)
def test_forecast_shape_quantiles_and_index(model):
    h = history()
    cov = covariates(h)
    f = model.fit(h, cov, seed=1).predict(h, 24, cov)
    assert isinstance(f, Forecast) and f.quantiles == QUANTILES
    assert len(f.index) == 24 and f.index[0] == h.values.index[-1] + h.step
    for t in h.targets:
        v = f.values[t]
        assert v.shape == (24, len(QUANTILES)) and np.isfinite(v).all()
        assert (np.diff(v, axis=1) >= -1e-9).all()  # no crossing
        assert (v >= 0).all()  # rates never go negative


@pytest.mark.parametrize("model", forecasters(), ids=lambda m: m.name)
def test_fit_leaves_the_forecaster_and_inputs_alone(model):
    h = history()
    before = h.values.copy()
    state = dataclasses.asdict(model) if dataclasses.is_dataclass(model) else dict(vars(model))
    model.fit(h, covariates(h), seed=0)
    assert h.values.equals(before)
    after = dataclasses.asdict(model) if dataclasses.is_dataclass(model) else dict(vars(model))
    assert state == after


@pytest.mark.parametrize("model", forecasters(), ids=lambda m: m.name)
def test_same_seed_same_forecast(model):
    h = history()
    cov = covariates(h)
    a = model.fit(h, cov, seed=3).predict(h, 24, cov)
    b = model.fit(h, cov, seed=3).predict(h, 24, cov)
    for t in h.targets:
        assert np.array_equal(a.values[t], b.values[t])


@pytest.mark.parametrize("model", forecasters(), ids=lambda m: m.name)
def test_no_look_ahead(model):
    # changing anything after the origin (values or observed covariates) changes nothing
    h = history()
    origin = h.values.index[-24 * 3]
    cov = covariates(h)
    ctx = h.upto(origin)
    fitted = model.fit(ctx, cov, seed=0)
    a = fitted.predict(ctx, 24, cov)
    later = cov.frame.copy()
    later.loc[later.index >= origin, "mentions"] *= 1000
    b = fitted.predict(ctx, 24, Covariates(later, cov.known, cov.observed))
    for t in h.targets:
        assert np.array_equal(a.values[t], b.values[t])
