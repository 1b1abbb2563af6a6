"""The LSTM forecaster: what it learns, what it may read, and its guarantees (small, fast fits)."""

import numpy as np
import pandas as pd
import pytest

from twin.forecast.base import QUANTILES, Covariates, History
from twin.forecast.lstm import LSTMForecaster

SMALL = dict(horizon=24, lookback=48, hidden=16, epochs=20, batch_size=32, windows_per_epoch=512,
             learning_rate=5e-3, max_train_seconds=None, members=1)
TARGETS = ("requests_per_s", "data_volume_bytes_per_s", "user_concurrency")


def hourly(days, seed=0, events=()):
    """Hourly load with a daily cycle and noise; ``events`` are (start hour, length) spikes x3."""
    rng = np.random.default_rng(seed)
    n = 24 * days
    idx = pd.date_range("2026-03-02", periods=n, freq="h", tz="UTC")
    flag = np.zeros(n)
    for start, length in events:
        flag[start:start + length] = 1.0
    load = (100 + 50 * np.sin(2 * np.pi * np.arange(n) / 24)) * (1 + 2 * flag) + rng.normal(0, 10, n)
    return History(pd.DataFrame({"requests_per_s": load.clip(0)}, index=idx)), flag


def mae(forecast, actual, target="requests_per_s"):
    return np.abs(forecast.quantile(target, 0.5) - actual)


def test_learns_a_daily_cycle_better_than_seasonal_naive_with_calibrated_intervals():
    h, _ = hourly(34)
    train = History(h.values.iloc[:24 * 30])
    fitted = LSTMForecaster(**SMALL).fit(train, seed=0)
    y = h.values["requests_per_s"].to_numpy()
    errors, naive, covered = [], [], []
    for origin in range(24 * 30, 24 * 33 + 1, 12):  # past the training data, without refitting
        f = fitted.predict(History(h.values.iloc[:origin]), 24)
        actual = y[origin:origin + 24]
        errors.append(mae(f, actual))
        naive.append(np.abs(y[origin - 24:origin] - actual))
        covered.append((f.quantile("requests_per_s", 0.1) <= actual) & (actual <= f.quantile("requests_per_s", 0.9)))
    assert np.mean(errors) < 0.85 * np.mean(naive)
    assert 0.65 <= np.mean(covered) <= 0.95


def test_a_known_event_covariate_cuts_the_error_on_event_hours():
    rng = np.random.default_rng(1)
    events = [(int(s), 3) for s in rng.choice(np.arange(0, 24 * 30, 24), 14, replace=False) + rng.integers(0, 20, 14)]
    events += [(24 * 30 + 9, 3), (24 * 30 + 18, 3)]  # two on the day forecast
    h, flag = hourly(31, seed=1, events=events)
    cov = Covariates(pd.DataFrame({"event": flag}, index=h.values.index), known=("event",))
    train = History(h.values.iloc[:24 * 30])
    actual = h.values["requests_per_s"].to_numpy()[24 * 30:]
    on_event = flag[24 * 30:] == 1
    with_events = LSTMForecaster(**SMALL).fit(train, cov, seed=0).predict(train, 24, cov)
    without = LSTMForecaster(**SMALL).fit(train, seed=0).predict(train, 24)
    assert mae(with_events, actual)[on_event].mean() < 0.4 * mae(without, actual)[on_event].mean()


def multi_target(days=21, seed=0):
    """Three targets sharing a daily cycle, a known weekend flag and observed mentions that lead
    the load by two hours."""
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2026-03-02", periods=24 * days, freq="h", tz="UTC")
    mentions = rng.gamma(2.0, 5.0, len(idx))
    boost = 1 + 0.02 * np.r_[np.zeros(2), mentions[:-2]]
    base = (50 + 20 * np.sin(2 * np.pi * np.arange(len(idx)) / 24)) * boost * np.where(idx.dayofweek >= 5, 0.7, 1.0)
    values = pd.DataFrame({t: (base * 10 ** i + rng.normal(0, 2 * 10 ** i, len(idx))).clip(0)
                           for i, t in enumerate(TARGETS)}, index=idx)
    frame = pd.DataFrame({"weekend": (idx.dayofweek >= 5).astype(float), "mentions": mentions}, index=idx)
    return History(values), Covariates(frame, known=("weekend",), observed=("mentions",))


@pytest.fixture(scope="module")
def multi():
    h, cov = multi_target()
    train = History(h.values.iloc[:-48])
    return h, cov, train, LSTMForecaster(**SMALL).fit(train, cov, seed=0)


def test_multi_output_shape_and_monotone_non_negative_quantiles(multi):
    h, cov, train, fitted = multi
    f = fitted.predict(train, 24, cov)
    assert f.model == "lstm" and f.quantiles == QUANTILES and len(f.index) == 24
    assert f.index[0] == train.values.index[-1] + train.step
    assert set(f.values) == set(TARGETS)
    for v in f.values.values():
        assert v.shape == (24, len(QUANTILES)) and np.isfinite(v).all()
        assert (np.diff(v, axis=1) >= 0).all() and (v >= 0).all()
    # each target on its own scale: the medians sit near the level of the series
    for t in TARGETS:
        assert 0.5 < np.median(f.quantile(t, 0.5)) / train.values[t].iloc[-24 * 7:].median() < 2


def test_shorter_horizon_and_interpolated_quantiles(multi):
    h, cov, train, fitted = multi
    full = fitted.predict(train, 24, cov)
    short = fitted.predict(train, 6, cov)
    assert short.values["user_concurrency"].shape == (6, len(QUANTILES))
    np.testing.assert_allclose(short.values["user_concurrency"], full.values["user_concurrency"][:6], rtol=1e-5)
    f = fitted.predict(train, 24, cov, quantiles=(0.25, 0.5, 0.75))
    v = f.values["requests_per_s"]
    assert (np.diff(v, axis=1) >= 0).all() and any("interpolated" in n for n in f.notes)
    assert (v[:, 0] >= full.quantile("requests_per_s", 0.1)).all()
    assert (v[:, 2] <= full.quantile("requests_per_s", 0.9)).all()
    with pytest.raises(ValueError, match="outside the trained range"):
        fitted.predict(train, 24, cov, quantiles=(0.01, 0.5))


def test_errors_horizon_longer_than_trained_short_context_missing_covariates(multi):
    h, cov, train, fitted = multi
    with pytest.raises(ValueError, match="horizon"):
        fitted.predict(train, 25, cov)
    with pytest.raises(ValueError, match="lookback"):
        fitted.predict(History(train.values.iloc[-47:]), 24, cov)
    with pytest.raises(ValueError, match="covariates"):
        fitted.predict(train, 24)
    with pytest.raises(ValueError, match="too short"):
        LSTMForecaster(**SMALL).fit(History(train.values.iloc[:24 * 4]), cov)


def test_same_seed_same_forecast_bit_for_bit_and_another_seed_differs(multi):
    h, cov, train, fitted = multi
    again = LSTMForecaster(**SMALL).fit(train, cov, seed=0).predict(train, 24, cov)
    other = LSTMForecaster(**SMALL).fit(train, cov, seed=1).predict(train, 24, cov)
    first = fitted.predict(train, 24, cov)
    for t in TARGETS:
        assert np.array_equal(first.values[t], again.values[t])
        assert not np.array_equal(first.values[t], other.values[t])


def test_members_are_averaged_and_reproducible(multi):
    h, cov, train, single = multi
    small = {**SMALL, "members": 2, "epochs": 4}
    a = LSTMForecaster(**small).fit(train, cov, seed=0)
    b = LSTMForecaster(**small).fit(train, cov, seed=0)
    assert len(a.nets) == 2 and a.interval_scale.shape == (2, len(TARGETS), len(QUANTILES))
    assert len(a.report["members"]) == 2
    fa, fb = a.predict(train, 24, cov), b.predict(train, 24, cov)
    for t in TARGETS:
        assert np.array_equal(fa.values[t], fb.values[t])
        assert (np.diff(fa.values[t], axis=1) >= 0).all()
    with pytest.raises(ValueError, match="members"):
        LSTMForecaster(members=0)


def test_does_not_look_ahead(multi):
    h, cov, train, fitted = multi
    origin = h.values.index[-24]
    context = h.upto(origin)
    base = fitted.predict(context, 24, cov)
    # anything after the origin: target values, observed covariates; known ones past the horizon
    values = h.values.copy()
    values.loc[values.index >= origin] *= 5
    frame = cov.frame.copy()
    frame.loc[frame.index >= origin, "mentions"] *= 1000
    frame.loc[frame.index >= origin + 24 * h.step, "weekend"] = 1 - frame["weekend"]
    moved = fitted.predict(History(values).upto(origin), 24, Covariates(frame, cov.known, cov.observed))
    for t in TARGETS:
        assert np.array_equal(base.values[t], moved.values[t])
    # while the observed covariate before the origin is read
    frame.loc[frame.index < origin, "mentions"] *= 3
    read = fitted.predict(context, 24, Covariates(frame, cov.known, cov.observed))
    assert not np.array_equal(base.values["requests_per_s"], read.values["requests_per_s"])
