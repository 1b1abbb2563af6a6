"""Event effects learned from past occurrences: measured, applied ahead, never looked up after the origin."""

import numpy as np
import pandas as pd

from twin.forecast.baselines import SeasonalNaive
from twin.forecast.base import Covariates, History
from twin.forecast.events import EventAdjusted, learn_effects


def hourly_with_holidays(days=70, seed=0):
    """A daily cycle; on 'holiday' days the load is 40% lower in the day and 20% higher at night."""
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2026-01-05", periods=24 * days, freq="h", tz="UTC")
    hour = idx.hour.to_numpy()
    base = 100 + 50 * np.sin(2 * np.pi * (hour - 6) / 24)
    holiday = np.isin(idx.normalize(), pd.DatetimeIndex(["2026-01-19", "2026-02-16", "2026-02-27", "2026-03-10",
                                                         "2026-03-12"]).tz_localize("UTC"))
    effect = np.where(holiday, np.where((hour >= 8) & (hour < 20), 0.6, 1.2), 1.0)
    y = base * effect * rng.lognormal(0, 0.03, len(idx))
    values = pd.DataFrame({"requests_per_s": y}, index=idx)
    cov = Covariates(pd.DataFrame({"holiday": holiday.astype(float)}, index=idx), known=("holiday",))
    return History(values), cov


def test_the_effect_profile_is_recovered_by_hour():
    h, cov = hourly_with_holidays()
    effects = learn_effects(h, cov)
    profile = effects.profiles["holiday"]["requests_per_s"]
    assert effects.occurrences["holiday"] == 5 and len(profile) == 24
    np.testing.assert_allclose(profile[8:20], 0.6, rtol=0.05)
    np.testing.assert_allclose(profile[:8], 1.2, rtol=0.05)


def test_a_known_future_holiday_is_forecast_and_its_effect_comes_from_the_past_only():
    h, cov = hourly_with_holidays()
    origin = pd.Timestamp("2026-03-12", tz="UTC")  # the last holiday, forecast a day ahead
    context = h.upto(origin)
    actual = h.values.loc[origin:origin + pd.Timedelta(hours=23), "requests_per_s"].to_numpy()
    plain = SeasonalNaive("weekly").fit(context, cov).predict(context, 24, cov)
    adjusted = EventAdjusted(SeasonalNaive("weekly")).fit(context, cov).predict(context, 24, cov)
    err = lambda f: np.abs(f.quantile("requests_per_s", 0.5) - actual).mean()
    assert adjusted.model == "seasonal_naive_weekly+events"
    assert err(adjusted) < 0.3 * err(plain)
    # what happened on the holiday being forecast cannot change the effect
    changed = h.values.copy()
    changed.loc[changed.index >= origin] *= 10
    again = EventAdjusted(SeasonalNaive("weekly")).fit(History(changed).upto(origin), cov).predict(context, 24, cov)
    np.testing.assert_array_equal(again.values["requests_per_s"], adjusted.values["requests_per_s"])


def test_an_event_type_never_seen_is_left_alone_and_said():
    h, cov = hourly_with_holidays()
    frame = cov.frame.assign(event_launch=0.0)
    frame.loc[frame.index[-24:], "event_launch"] = 1.0  # only in the future
    cov2 = Covariates(frame, known=("holiday", "event_launch"))
    context = History(h.values.iloc[:-24])
    fit = EventAdjusted(SeasonalNaive("daily")).fit(context, cov2)
    f = fit.predict(context, 24, cov2)
    base = SeasonalNaive("daily").fit(context, cov2).predict(context, 24, cov2)
    np.testing.assert_array_equal(f.values["requests_per_s"], base.values["requests_per_s"])
    assert any("event_launch has no occurrence" in n for n in f.notes)


def test_without_event_columns_it_is_the_base_model():
    h, cov = hourly_with_holidays()
    f = EventAdjusted(SeasonalNaive("daily")).fit(h).predict(h, 24)
    g = SeasonalNaive("daily").fit(h).predict(h, 24)
    np.testing.assert_array_equal(f.values["requests_per_s"], g.values["requests_per_s"])


def test_an_occurrence_under_way_at_the_origin_is_not_learned_from():
    h, cov = hourly_with_holidays()
    frame = cov.frame.assign(event_weather=0.0)
    frame.loc[frame.index[-36:], "event_weather"] = 1.0  # a storm that began 12 hours before the origin
    cov2 = Covariates(frame, known=("holiday", "event_weather"))
    context = History(h.values.iloc[:-24])
    effects = learn_effects(context, cov2)
    assert "event_weather" in effects.unseen and "holiday" in effects.profiles
