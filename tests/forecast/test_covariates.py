"""Covariates: calendar terms, events calendars (real labelled events), social signals with VADER."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from twin.forecast.base import Covariates
from twin.forecast.covariates import (EVENT_TYPES, CovariateError, build_covariates, calendar_features,
                                      event_features, read_events, read_posts, sentiment_scores, social_features,
                                      social_from_series)
from twin.forecast.series import read_series_csv, regularize
from twin.spec import TwinError

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "forecast"


def utc(text):
    return pd.Timestamp(text, tz="UTC")


def hours(start, n, freq="h"):
    return pd.date_range(start, periods=n, freq=freq, tz="UTC")


@pytest.fixture
def write(tmp_path):
    def write(text, name="events.yaml"):
        path = tmp_path / name
        path.write_text(text)
        return path
    return write


def test_covariate_error_is_a_twin_error():
    assert issubclass(CovariateError, TwinError)


# -- calendar ----------------------------------------------------------------------------------

def test_calendar_terms_have_the_right_values_and_periods():
    idx = hours("2026-01-05", 24 * 14)  # a Monday, two weeks
    cal = calendar_features(idx)
    assert list(cal.columns) == ["daily_sin1", "daily_cos1", "daily_sin2", "daily_cos2", "daily_sin3", "daily_cos3",
                                 "weekly_sin1", "weekly_cos1", "weekly_sin2", "weekly_cos2", "weekend"]
    assert cal.loc[utc("2026-01-05 06:00"), "daily_sin1"] == pytest.approx(1)
    assert cal.loc[utc("2026-01-05 12:00"), "daily_cos1"] == pytest.approx(-1)
    assert cal.loc[utc("2026-01-05 00:00"), "weekly_sin1"] == pytest.approx(0, abs=1e-12)  # Monday midnight
    fourier = cal.drop(columns="weekend").to_numpy()
    np.testing.assert_allclose(fourier[:24 * 7], fourier[24 * 7:], atol=1e-9)  # a week later: the same
    daily = cal.filter(like="daily").to_numpy()
    np.testing.assert_allclose(daily[:24], daily[24:48], atol=1e-9)
    assert not np.allclose(cal["weekly_sin1"].to_numpy()[:24], cal["weekly_sin1"].to_numpy()[24:48])
    assert cal["weekend"].to_numpy().reshape(14, 24)[:, 0].tolist() == [0, 0, 0, 0, 0, 1, 1] * 2


def test_a_us_holiday_is_flagged_on_its_local_day():
    idx = hours("2014-11-26", 72)
    cal = calendar_features(idx, holidays_country="US")
    flagged = cal.index[cal["holiday"] == 1]
    assert flagged[0] == utc("2014-11-27 00:00") and flagged[-1] == utc("2014-11-27 23:00") and len(flagged) == 24
    ny = calendar_features(idx, holidays_country="US", time_zone="America/New_York")
    flagged = ny.index[ny["holiday"] == 1]
    assert flagged[0] == utc("2014-11-27 05:00") and len(flagged) == 24  # midnight in New York
    assert ny.loc[utc("2014-11-27 05:00"), "daily_cos1"] == pytest.approx(1)  # phases on the local clock


def test_yearly_terms_join_when_the_index_spans_a_year_and_daily_ones_leave_daily_data():
    days = pd.date_range("2007-12-10", "2016-01-20", freq="D", tz="UTC")
    cal = calendar_features(days)
    assert [c for c in cal.columns if c.startswith("yearly")] == ["yearly_sin1", "yearly_cos1", "yearly_sin2",
                                                                  "yearly_cos2"]
    assert not any(c.startswith("daily") for c in cal.columns)  # constant at a daily step
    assert "yearly_sin1" not in calendar_features(hours("2026-01-01", 24 * 30))
    assert list(calendar_features(days, fourier={"weekly": 1}).columns) == ["weekly_sin1", "weekly_cos1", "weekend"]


def test_calendar_mistakes():
    with pytest.raises(CovariateError, match="unknown season.*'monthly'.*daily, weekly, yearly"):
        calendar_features(hours("2026-01-01", 3), fourier={"monthly": 2})
    with pytest.raises(CovariateError, match="--holidays XX \\(history.holidays in an experiment\\): not a country"):
        calendar_features(hours("2026-01-01", 3), holidays_country="XX")
    with pytest.raises(CovariateError, match="unknown time zone"):
        calendar_features(hours("2026-01-01", 3), time_zone="Nowhere/City")
    with pytest.raises(CovariateError, match="no time zone"):
        calendar_features(pd.date_range("2026-01-01", periods=3, freq="h"))
    with pytest.raises(CovariateError, match="strictly increasing"):
        calendar_features(hours("2026-01-01", 3)[::-1])
    with pytest.raises(CovariateError, match="whole number"):
        calendar_features(hours("2026-01-01", 3), fourier={"daily": 1.5})


# -- events: the real labelled ones --------------------------------------------------------------

def test_nyc_taxi_events_lie_one_in_each_nab_window():
    events = read_events(FIXTURES / "events_nyc_taxi.yaml")
    assert list(events.columns) == ["type", "start", "end", "intensity", "name"]
    assert events["name"].tolist() == ["NYC marathon", "Thanksgiving", "Christmas", "New Year", "blizzard"]
    assert events["type"].tolist() == ["sport", "holiday", "holiday", "holiday", "weather"]
    assert events.loc[4, "start"] == utc("2015-01-26") and events.loc[4, "end"] == utc("2015-01-28")
    windows = json.loads((FIXTURES / "combined_windows.json").read_text())["realKnownCause/nyc_taxi.csv"]
    assert len(windows) == len(events)
    for (lo, hi), event in zip(windows, events.itertuples()):
        assert utc(lo) <= event.start < event.end <= utc(hi)


def test_nyc_taxi_event_columns_on_the_series_index():
    history, _ = regularize(read_series_csv(FIXTURES / "nyc_taxi.csv", time_zone="UTC"))
    feats = event_features(read_events(FIXTURES / "events_nyc_taxi.yaml"), history.values.index)
    assert list(feats.columns) == ["event_holiday", "event_sport", "event_weather"]
    assert feats["event_holiday"].sum() == 3 * 48 and feats["event_weather"].sum() == 2 * 48
    assert feats.loc[utc("2014-11-27 12:00"), "event_holiday"] == 1
    assert feats.loc[utc("2014-11-28 00:00"), "event_holiday"] == 0  # end is exclusive


def test_peyton_events_match_prophets_frame():
    events = read_events(FIXTURES / "events_peyton.yaml")
    games = pd.read_csv(FIXTURES / "peyton_manning_events.csv")
    assert len(events) == len(games) == 17 and set(events["type"]) == {"sport"}
    assert sorted(events["name"]) == sorted(games["holiday"])
    for game in games.itertuples():
        start = utc(game.ds) + pd.Timedelta(days=game.lower_window)
        end = utc(game.ds) + pd.Timedelta(days=game.upper_window + 1)
        assert ((events["name"] == game.holiday) & (events["start"] == start) & (events["end"] == end)).sum() == 1
    days = pd.date_range("2007-12-10", "2016-01-20", freq="D", tz="UTC")
    sport = event_features(events, days)["event_sport"]
    assert sport[utc("2010-02-07")] == 2 and sport[utc("2010-02-08")] == 2  # playoff and Super Bowl stack
    assert sport[utc("2010-01-16")] == 1 and sport[utc("2010-02-09")] == 0


# -- events: the format ------------------------------------------------------------------------

def test_times_with_zones_are_kept_exact_and_naive_ones_need_a_zone(write):
    path = write("type,start,end,intensity,name\n"
                 "launch,2026-03-01T09:00:00-05:00,2026-03-01T10:30:00-05:00,2.5,v2 launch\n"
                 "campaign,2026-03-02,2026-03-04,,\n", "events.csv")
    with pytest.raises(CovariateError, match=r"line 3: start '2026-03-02' carries no time zone"):
        read_events(path)
    events = read_events(path, time_zone="Europe/Paris")
    assert events.loc[0, "start"] == utc("2026-03-01 14:00") and events.loc[0, "end"] == utc("2026-03-01 15:30")
    assert events.loc[1, "start"] == utc("2026-03-01 23:00")  # Paris midnight
    assert events["intensity"].tolist() == [2.5, 1.0] and events["name"].tolist() == ["v2 launch", "campaign"]


def test_yaml_times_are_not_reinterpreted(write):
    events = read_events(write("- {type: release, start: 2026-03-01T09:00:00+01:00, end: 2026-03-01T09:30:00+01:00}\n"))
    assert events.loc[0, "start"] == utc("2026-03-01 08:00")


def test_unknown_types_are_an_error_listing_the_allowed_ones(write):
    path = write("time_zone: UTC\nevents:\n  - {type: launch, start: 2026-01-01, end: 2026-01-02}\n"
                 "  - {type: concert, name: gig, start: 2026-01-05, end: 2026-01-06}\n")
    with pytest.raises(CovariateError, match=r"event 2 \('gig'\): unknown event type 'concert'; the types are "
                                             r"campaign, launch, holiday, release, sport, weather, outage, other"):
        read_events(path)


def test_inverted_intervals_are_an_error_naming_the_row(write):
    path = write("type,start,end\nholiday,2026-01-01T00:00Z,2026-01-02T00:00Z\noutage,2026-01-05T10:00Z,2026-01-05T09:00Z\n",
                 "events.csv")
    with pytest.raises(CovariateError, match=r"events.csv: line 3: the event ends \(2026-01-05 09:00:00\+00:00\) "
                                             r"before it starts"):
        read_events(path)
    with pytest.raises(CovariateError, match="ends .* when it starts.*ends 2014-11-28"):
        read_events(write("- {type: holiday, start: 2026-01-01T00:00Z, end: 2026-01-01T00:00Z}\n"))


def test_overlapping_events_of_one_type_add_up(write):
    events = read_events(write("time_zone: UTC\nevents:\n"
                               "  - {type: campaign, start: 2026-01-01T00:00, end: 2026-01-01T03:00}\n"
                               "  - {type: campaign, start: 2026-01-01T02:00, end: 2026-01-01T04:00, intensity: 3}\n"))
    feats = event_features(events, hours("2026-01-01", 5))
    assert feats["event_campaign"].tolist() == [1, 1, 4, 3, 0]


def test_an_event_counts_at_every_step_it_overlaps():
    events = pd.DataFrame({"type": ["outage"], "start": [utc("2026-01-01 00:40")], "end": [utc("2026-01-01 01:10")]})
    assert event_features(events, hours("2026-01-01", 3))["event_outage"].tolist() == [1, 1, 0]


def test_lead_and_lag_windows():
    events = pd.DataFrame({"type": ["launch", "holiday"], "start": [utc("2026-03-01 11:00"), utc("2026-03-01 13:00")],
                           "end": [utc("2026-03-01 12:00"), utc("2026-03-01 14:00")]})
    idx = hours("2026-03-01 08:00", 8)
    feats = event_features(events, idx, lead={"launch": "2h"}, lag="1h")
    assert list(feats.columns) == ["event_launch", "event_launch_lead", "event_launch_lag", "event_holiday",
                                   "event_holiday_lag"]
    assert feats["event_launch_lead"].tolist() == [0, 1, 1, 0, 0, 0, 0, 0]  # 09:00 and 10:00
    assert feats["event_launch"].tolist() == [0, 0, 0, 1, 0, 0, 0, 0]
    assert feats["event_launch_lag"].tolist() == [0, 0, 0, 0, 1, 0, 0, 0]
    assert feats["event_holiday_lag"].tolist() == [0, 0, 0, 0, 0, 0, 1, 0]
    with pytest.raises(CovariateError, match="lead: unknown event type"):
        event_features(events, idx, lead={"concert": "1h"})
    with pytest.raises(CovariateError, match="positive duration"):
        event_features(events, idx, lag="-1h")


@pytest.mark.parametrize("text, message", [
    ("- {type: launch, start: 2026-01-01T00:00Z}\n", "event 1: no 'end'"),
    ("- {type: launch, stat: 2026-01-01Z, start: 2026-01-01T00:00Z, end: 2026-01-02T00:00Z}\n", "unknown field.*'stat'"),
    ("- {type: launch, start: soon, end: 2026-01-02T00:00Z}\n", "start 'soon' is not a time"),
    ("- {type: launch, start: 2026-01-01T00:00Z, end: 2026-01-02T00:00Z, intensity: big}\n", "intensity 'big' is not a number"),
    ("- {type: launch, start: 2026-01-01T00:00Z, end: 2026-01-02T00:00Z, intensity: -1}\n", "must be a positive number"),
    ("- just a line\n", "event 1 is not a mapping"),
    ("events: [\n", "not valid YAML"),
    ("", "empty file"),
    ("when: tomorrow\n", "expected a list of events"),
    ("time_zone: Mars/Base\nevents: []\n", "unknown time zone"),
    ("- {type: launch, start: 2026-03-29T02:30, end: 2026-03-29T04:00}\n", "skipped or repeated in Europe/Paris"),
])
def test_events_file_mistakes(write, text, message):
    with pytest.raises(CovariateError, match=message):
        read_events(write(text), time_zone="Europe/Paris" if "03-29" in text else None)


def test_events_files_that_are_not_calendars(write, tmp_path):
    with pytest.raises(CovariateError, match="no such file"):
        read_events(tmp_path / "none.yaml")
    with pytest.raises(CovariateError, match=r"\.csv, \.yaml or \.yml"):
        read_events(write("x", "events.txt"))
    with pytest.raises(CovariateError, match="says time_zone 'UTC', the argument 'Europe/Paris'"):
        read_events(write("time_zone: UTC\nevents: []\n"), time_zone="Europe/Paris")
    assert read_events(write("time_zone: UTC\nevents: []\n")).empty
    with pytest.raises(CovariateError, match="unknown event type"):
        event_features(pd.DataFrame({"type": ["gig"], "start": [utc("2026-01-01")], "end": [utc("2026-01-02")]}),
                       hours("2026-01-01", 3))
    assert set(EVENT_TYPES) == {"campaign", "launch", "holiday", "release", "sport", "weather", "outage", "other"}


# -- social signals ----------------------------------------------------------------------------

POSTS = '''timestamp,text
2026-01-01T00:10:00Z,"I love the new release, it is great and fast!"
2026-01-01T00:40:00Z,"Worst outage ever, terrible and broken. I hate it."
2026-01-01T00:20:00Z,"Checkout is down again, awful, so angry"
2026-01-01T02:05:00Z,"Amazing support team, thank you, wonderful!
Five stars."
'''


def test_vader_scores_a_clearly_positive_and_a_clearly_negative_post():
    pos, neg = sentiment_scores(["I love the new release, it is great and fast!",
                                 "Worst outage ever, terrible and broken. I hate it."])
    assert pos > 0.5 and neg < -0.5


def test_posts_become_mention_volume_and_sentiment_per_step(write):
    posts, repairs = read_posts(write(POSTS, "posts.csv"))
    assert not repairs and posts["timestamp"].is_monotonic_increasing and len(posts) == 4
    feats = social_features(posts, hours("2026-01-01", 4))
    assert feats["social_mentions"].tolist() == [3, 0, 1, 0]
    assert feats["social_sentiment"].iloc[1] == 0 and feats["social_sentiment"].iloc[3] == 0  # no posts
    assert feats["social_sentiment"].iloc[0] < 0 < feats["social_sentiment"].iloc[2]
    expected = sentiment_scores(posts["text"].iloc[:3]).mean()
    assert feats["social_sentiment"].iloc[0] == pytest.approx(expected)
    assert social_features(posts, hours("2026-01-01", 2), step="30min")["social_mentions"].tolist() == [2, 0]


def test_posts_with_empty_text_are_an_error_or_dropped_and_reported(write):
    path = write(POSTS + '2026-01-01T03:00:00Z,"  "\n2026-01-01T03:10:00Z,\n', "posts.csv")
    with pytest.raises(CovariateError, match=r"2 post\(s\) with empty text \(first at line 7\); drop them with "
                                             r"drop_empty=True"):
        read_posts(path)
    posts, repairs = read_posts(path, drop_empty=True)
    assert len(posts) == 4
    assert repairs.lines == ("empty: dropped 2 post(s) with empty text (first at line 7)",)
    assert repairs.counts == {"empty": 2}


def test_posts_file_mistakes(write, tmp_path):
    with pytest.raises(CovariateError, match="carry no time zone"):
        read_posts(write("timestamp,text\n2026-01-01 00:00,hello\n", "p.csv"))
    assert read_posts(write("timestamp,text\n2026-01-01 00:00,hello\n", "p.csv"), time_zone="UTC")[0].loc[
        0, "timestamp"] == utc("2026-01-01")
    with pytest.raises(CovariateError, match="a timestamp and a text column; its columns are 'time', 'body'"):
        read_posts(write("time,body\n2026-01-01T00:00Z,hello\n", "p.csv"))
    with pytest.raises(CovariateError, match="no posts"):
        read_posts(write("timestamp,text\n", "p.csv"))
    with pytest.raises(CovariateError, match="empty file"):
        read_posts(write("", "p.csv"))
    with pytest.raises(CovariateError, match="line 3: unreadable timestamp 'later'"):
        read_posts(write("timestamp,text\n2026-01-01T00:00Z,a\nlater,b\n", "p.csv"))
    with pytest.raises(CovariateError, match="line 2: 3 field"):
        read_posts(write("timestamp,text\n2026-01-01T00:00Z,a,b\n", "p.csv"))
    with pytest.raises(CovariateError, match="no such file"):
        read_posts(tmp_path / "none.csv")


def test_twitter_volume_as_a_mention_series():
    volume = read_series_csv(FIXTURES / "Twitter_volume_AAPL.csv", time_zone="UTC")
    idx = pd.date_range("2015-02-26 21:00", "2015-04-24 00:00", freq="h", tz="UTC")
    feats = social_from_series(volume, idx)
    mentions = feats["social_mentions"]
    assert list(feats.columns) == ["social_mentions"]
    assert mentions[utc("2015-03-02 10:00")] == volume["value"][utc("2015-03-02 10:00"):utc("2015-03-02 10:59")].sum()
    assert mentions.sum() == volume["value"].sum()  # every tweet in one hour
    assert np.isnan(mentions[utc("2015-04-24 00:00")])  # past the series: unknown, not zero
    with pytest.raises(CovariateError, match="say which with column"):
        social_from_series(pd.DataFrame({"a": [1.0], "b": [2.0]}, index=hours("2026-01-01", 1)), idx)
    with pytest.raises(CovariateError, match="negative"):
        social_from_series(pd.Series([1.0, -1.0], index=hours("2015-03-01", 2)), idx)


# -- all together ------------------------------------------------------------------------------

def test_build_covariates_splits_known_from_observed_and_runs_past_the_history(write):
    history = hours("2026-01-01", 48)
    index = history.append(hours("2026-01-03", 24))  # a day of horizon
    posts, _ = read_posts(write(POSTS, "posts.csv"))
    events = write("- {type: launch, start: 2026-01-03T06:00Z, end: 2026-01-03T08:00Z}\n")
    cov = build_covariates(index, events=events, social=posts, holidays_country="US", lead="1h")
    assert isinstance(cov, Covariates) and cov.frame.index.equals(index)
    assert cov.observed == ("social_mentions", "social_sentiment")
    assert {"daily_sin1", "weekend", "holiday", "event_launch", "event_launch_lead"} <= set(cov.known)
    assert not set(cov.known) & set(cov.observed)
    assert cov.frame.loc[utc("2026-01-01"), "holiday"] == 1  # New Year's Day
    assert cov.frame.loc[utc("2026-01-03 05:00"), "event_launch_lead"] == 1  # known ahead, in the horizon
    seen = cov.window(utc("2026-01-01"), utc("2026-01-04"), origin=utc("2026-01-01 01:00"))
    assert seen["social_mentions"].iloc[0] == 3 and seen["social_mentions"].iloc[1:].isna().all()
    assert seen["event_launch"].sum() == 2


def test_build_covariates_with_a_mention_series_and_without_a_calendar():
    volume = read_series_csv(FIXTURES / "Twitter_volume_AAPL.csv", time_zone="UTC")
    cov = build_covariates(hours("2015-03-01", 24), calendar=False, social=volume)
    assert cov.known == () and cov.observed == ("social_mentions",)
    assert build_covariates(hours("2015-03-01", 2), calendar=False).frame.shape == (2, 0)


def test_build_covariates_mistakes(write):
    with pytest.raises(CovariateError, match="carries no time zone"):
        build_covariates(hours("2026-01-01", 3), events=write("- {type: launch, start: 2026-01-01, end: 2026-01-02}\n"))
    with pytest.raises(CovariateError, match="holidays_country needs calendar=True"):
        build_covariates(hours("2026-01-01", 3), calendar=False, holidays_country="US")
    with pytest.raises(CovariateError, match="DatetimeIndex"):
        build_covariates([1, 2, 3])
