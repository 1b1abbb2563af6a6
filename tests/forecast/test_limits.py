"""What a forecast refuses: a horizon past the history (or past any bound), a history too short to
forecast honestly; and a naive forecast that repeats the last value without drifting."""

import numpy as np
import pandas as pd
import pytest

from twin.forecast.base import History
from twin.forecast.baselines import SeasonalNaive
from twin.forecast.run import MAX_HORIZON_STEPS, MIN_HISTORY_STEPS, load_inputs, steps
from twin.spec import TwinError


def hourly(n, values=None):
    idx = pd.date_range("2026-03-02", periods=n, freq="h", tz="UTC")
    return History(pd.DataFrame({"requests_per_s": np.arange(n, dtype=float) if values is None else values},
                                index=idx))


@pytest.mark.parametrize("text,message", [
    ("15d", "--horizon: 15d is 360 steps of 1 h; at most 336 are allowed (no more than the history's 336 steps"),
    ("100000d", "--horizon: 100000d is 2400000 steps of 1 h; at most 336"),
    ("337", "--horizon: 337 is 337 steps of 1 h; at most 336"),
    ("10min", "--horizon: 10min is shorter than the history's step"),
])
def test_a_horizon_past_the_history_is_refused_naming_the_flag(text, message):
    with pytest.raises(TwinError) as e:
        steps(text, hourly(24 * 14), "--horizon")
    assert str(e.value).startswith(message), str(e.value)
    assert steps("14d", hourly(24 * 14), "--horizon") == 336


def test_an_infinite_horizon_is_refused_naming_the_flag():
    with pytest.raises(TwinError) as e:
        steps("1e999d", hourly(24 * 14), "--horizon")
    assert str(e.value).startswith("--horizon: ") and "1e999d" in str(e.value)


def test_the_horizon_has_an_absolute_bound_whatever_the_history():
    long = hourly(MAX_HORIZON_STEPS + 50)
    assert steps(str(MAX_HORIZON_STEPS), long, "forecast.horizon") == MAX_HORIZON_STEPS
    with pytest.raises(TwinError, match=f"forecast.horizon: {MAX_HORIZON_STEPS + 1} is .* at most {MAX_HORIZON_STEPS}"):
        steps(str(MAX_HORIZON_STEPS + 1), long, "forecast.horizon")


@pytest.mark.parametrize("n", [2, MIN_HISTORY_STEPS - 1])
def test_a_history_too_short_to_forecast_honestly_is_refused_naming_the_file(tmp_path, n):
    path = tmp_path / "short.csv"
    idx = pd.date_range("2026-03-02", periods=n, freq="h")
    pd.DataFrame({"timestamp": idx.strftime("%Y-%m-%d %H:%M:%S"), "value": np.arange(n) * 4.0 + 10}).to_csv(
        path, index=False)
    with pytest.raises(TwinError) as e:
        load_inputs(path, value_column=None, target="requests_per_s", time_zone="UTC", events=None, holidays=None,
                    horizon="1h")
    assert str(e.value) == (f"{path}: {n} step(s) of 1 h are too short a history to forecast: at least "
                            f"{MIN_HISTORY_STEPS} steps are needed (the forecast's intervals come from its past "
                            f"errors)")


def test_the_naive_forecast_repeats_the_last_value_without_drifting():
    h = hourly(30, 10 + 4 * np.arange(30.0))  # every step 4 higher: the past errors all lean one way
    f = SeasonalNaive("daily").fit(h).predict(h, 12)  # shorter than two days: the last value is repeated
    assert f.quantile("requests_per_s", 0.5).tolist() == [h.values["requests_per_s"].iloc[-1]] * 12
    rng = np.random.default_rng(5)
    h = hourly(30, 50 + rng.normal(0, 3, 30).cumsum())
    f = SeasonalNaive("daily").fit(h).predict(h, 12)
    assert (f.quantile("requests_per_s", 0.5) == h.values["requests_per_s"].iloc[-1]).all()
    width = f.quantile("requests_per_s", 0.95) - f.quantile("requests_per_s", 0.05)
    assert (width > 0).all() and (np.diff(width) >= 0).all()  # wider the further ahead
