"""Interval recalibration: it learns how far off the claimed coverage is, and never looks ahead."""

from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest

from twin.forecast.backtest import backtest, qcol
from twin.forecast.base import QUANTILES, Fitted, Forecast, Forecaster, History, future_index
from twin.forecast.calibrate import BOUNDS, calibrated, factors, learn

Z = np.array([NormalDist().inv_cdf(q) for q in QUANTILES])


class Fixed(Forecaster):
    """Forecasts the true mean with a normal band of the stated ``claimed`` spread."""

    name = "fixed"
    refit_each_origin = False

    def __init__(self, claimed):
        self.claimed = claimed

    def fit(self, history, covariates=None, *, seed=0):
        claimed = self.claimed

        class Fit(Fitted):
            name = "fixed"

            def predict(self, context, horizon, covariates=None, quantiles=QUANTILES):
                idx = future_index(context, horizon)
                z = np.array([NormalDist().inv_cdf(q) for q in quantiles])
                return Forecast(idx, tuple(quantiles), {"requests_per_s": np.tile(100 + claimed * z, (horizon, 1))},
                                "fixed")
        return Fit()


def noisy_history(sd, n=24 * 60, seed=0):
    idx = pd.date_range("2026-01-01", periods=n, freq="h", tz="UTC")
    y = np.random.default_rng(seed).normal(100, sd, n)
    return History(pd.DataFrame({"requests_per_s": y}, index=idx))


@pytest.mark.parametrize("claimed", [2.0, 10.0])  # too narrow by 2.5x, too wide by 2x
def test_online_recalibration_restores_the_coverage(claimed):
    h = noisy_history(sd=5.0)
    res = backtest([Fixed(claimed)], h, horizon=24, n_windows=40, season=24)
    raw = res.summary().iloc[0]
    cal = calibrated(res, "fixed")
    late = cal.forecasts[cal.forecasts["origin"] >= res.origins[10]]
    covered = ((late[qcol(0.1)] <= late["actual"]) & (late["actual"] <= late[qcol(0.9)])).mean()
    assert abs(raw["coverage_80"] - 0.8) > 0.15  # the model's own band is badly off
    assert 0.75 <= covered <= 0.85
    np.testing.assert_array_equal(cal.forecasts[qcol(0.5)], res.forecasts[qcol(0.5)])  # medians untouched
    assert cal.forecasters == ("fixed+cal",)
    f = learn(res, "fixed", max_windows=None).factors["requests_per_s"]
    np.testing.assert_allclose(f[[0, 1, 3, 4]], 5.0 / claimed, rtol=0.15)


def test_each_window_learns_only_from_windows_ended_before_its_origin():
    h = noisy_history(sd=5.0)
    res = backtest([Fixed(2.0)], h, horizon=24, n_windows=6, step=12, season=24)
    cal = calibrated(res, "fixed", min_windows=1)
    # overlapping windows (step 12 < horizon 24): the second window starts before the first ends
    first_two = cal.forecasts[cal.forecasts["origin"].isin(res.origins[:2])]
    raw_two = res.forecasts[res.forecasts["origin"].isin(res.origins[:2])]
    np.testing.assert_array_equal(first_two[qcol(0.9)].to_numpy(), raw_two[qcol(0.9)].to_numpy())
    # changing the actuals of the last window changes no window's recalibration
    f = res.forecasts.copy()
    f.loc[f["origin"] == res.origins[-1], "actual"] += 1000
    again = calibrated(type(res)(**{**res.__dict__, "forecasts": f}), "fixed", min_windows=1)
    np.testing.assert_array_equal(again.forecasts[qcol(0.9)], cal.forecasts[qcol(0.9)])


def test_factors_are_bounded_and_skip_degenerate_quantiles():
    pred = np.tile([90.0, 100.0, 100.0, 100.0, 110.0], (50, 1))  # q0.1 and q0.9 sit on the median
    y = np.full(50, 100.0) + np.linspace(-1000, 1000, 50)
    f = factors(pred, y, QUANTILES)
    assert f[1] == 1.0 and f[3] == 1.0
    assert f[0] == BOUNDS[1] and f[4] == BOUNDS[1]


def test_apply_keeps_order_and_sign_and_says_so():
    h = noisy_history(sd=5.0)
    res = backtest([Fixed(2.0)], h, horizon=24, n_windows=10, season=24)
    recal = learn(res, "fixed")
    fc = Fixed(2.0).fit(h).predict(h, 24)
    out = recal.apply(fc)
    v = out.values["requests_per_s"]
    assert (np.diff(v, axis=1) >= 0).all() and (v >= 0).all()
    assert "recalibrated from 10 past windows" in out.notes[-1]
    with pytest.raises(ValueError, match="quantiles"):
        recal.apply(Fixed(2.0).fit(h).predict(h, 24, quantiles=(0.1, 0.5, 0.9)))
