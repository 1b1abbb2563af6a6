"""Histories: every repair stated in words, the real files at their steps, and bad input refused."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from twin.forecast.base import History
from twin.forecast.series import (Repairs, SeriesError, duration_text, history_from_trace, read_series_csv,
                                  regularize, season_check)
from twin.spec import TwinError
from twin.traces.schema import conform

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "forecast"


def utc(text):
    return pd.Timestamp(text, tz="UTC")


def series(times, values, name="requests_per_s"):
    return pd.DataFrame({name: np.asarray(values, dtype=float)}, index=pd.DatetimeIndex(times, tz="UTC"))


def hourly(n, start="2026-01-05", value=None):
    idx = pd.date_range(start, periods=n, freq="h", tz="UTC")
    return pd.DataFrame({"requests_per_s": np.arange(n, dtype=float) if value is None else value}, index=idx)


def test_series_error_is_a_twin_error():
    assert issubclass(SeriesError, TwinError)


# -- each repair, with its line ------------------------------------------------------------------

def test_a_clean_series_needs_no_repair():
    history, repairs = regularize(hourly(48))
    assert isinstance(history, History) and history.step == pd.Timedelta("1h") and len(history) == 48
    assert not repairs and str(repairs) == "" and set(repairs.counts.values()) == {0}


def test_unsorted_rows_are_sorted_and_reported():
    f = series(["2026-01-01 00:00", "2026-01-01 02:00", "2026-01-01 01:00", "2026-01-01 03:00"], [0, 2, 1, 3])
    history, repairs = regularize(f)
    assert history.values["requests_per_s"].tolist() == [0, 1, 2, 3]
    assert repairs.lines == ("unsorted: 1 row(s) earlier than a row above them (first 2026-01-01 01:00:00 UTC): "
                             "sorted by time",)
    assert repairs.counts["unsorted"] == 1


def test_duplicated_timestamps_keep_their_mean():
    f = series(["2026-01-01 00:00", "2026-01-01 01:00", "2026-01-01 01:00", "2026-01-01 01:00",
                "2026-01-01 02:00", "2026-01-01 02:00", "2026-01-01 03:00"], [0, 1, 2, 3, 4, 6, 7])
    history, repairs = regularize(f)
    assert history.values["requests_per_s"].tolist() == [0, 2, 5, 7]
    assert str(repairs) == ("duplicates: 2 timestamp(s) written more than once (5 rows; first 2026-01-01 01:00:00 UTC): "
                            "kept the mean of each")
    assert repairs.counts["duplicates"] == 3  # rows merged away


def test_irregular_steps_are_averaged_onto_the_grid():
    f = series(["2026-01-01 00:00", "2026-01-01 00:05", "2026-01-01 00:10", "2026-01-01 00:17",
                "2026-01-01 00:19", "2026-01-01 00:20", "2026-01-01 00:25"], [1, 2, 3, 4, 6, 7, 8])
    history, repairs = regularize(f)
    assert history.step == pd.Timedelta("5min")
    assert history.values["requests_per_s"].tolist() == [1, 2, 3, 5, 7, 8]
    assert repairs.lines == ("irregular: 2 timestamp(s) off the 5 min grid from 2026-01-01 00:00:00 UTC "
                             "(first 2026-01-01 00:17:00 UTC): averaged within each 5 min step",)


def test_a_coarser_step_resamples_and_says_so():
    f = hourly(6)
    history, repairs = regularize(f, step="2h")
    assert history.step == pd.Timedelta("2h") and history.values["requests_per_s"].tolist() == [0.5, 2.5, 4.5]
    assert repairs.counts["irregular"] == 3 and repairs.lines[0].startswith("irregular: 3 timestamp(s) off the 2 h grid")


def test_gaps_are_interpolated_and_reported_with_the_longest():
    f = hourly(12).drop(index=[utc("2026-01-05 02:00"), utc("2026-01-05 06:00"), utc("2026-01-05 07:00"),
                               utc("2026-01-05 08:00")])
    history, repairs = regularize(f)
    assert len(history) == 12 and history.values["requests_per_s"].tolist() == list(np.arange(12.0))
    assert str(repairs) == ("gaps: 4 missing step(s) of 1 h in 2 gap(s), longest 3 step(s) (3 h) from "
                            "2026-01-05 06:00:00 UTC: filled by linear interpolation")
    assert repairs.counts["gap_steps"] == 4


def test_seasonal_fill_takes_the_day_before_else_interpolates():
    daily = np.tile(np.r_[np.zeros(12), np.full(12, 10.0)], 3)  # 0 at night, 10 by day, 3 days
    f = hourly(72, value=daily)
    f = f.drop(index=[utc("2026-01-06 12:00"), utc("2026-01-06 13:00"), utc("2026-01-05 11:00")])
    history, repairs = regularize(f, fill="seasonal")
    v = history.values["requests_per_s"]
    assert v[utc("2026-01-06 12:00")] == 10 and v[utc("2026-01-06 13:00")] == 10  # a day before
    assert v[utc("2026-01-05 11:00")] == 5  # first day: nothing a day before, interpolated
    assert repairs.lines == (
        "gaps: 3 missing step(s) of 1 h in 2 gap(s), longest 2 step(s) (2 h) from 2026-01-06 12:00:00 UTC: "
        "filled with the value a day or a week before",
        "seasonal: 1 missing value(s) had no value a day or a week before: filled by linear interpolation")


def test_nan_values_are_filled_like_gaps_and_reported_per_column():
    f = hourly(6)
    f["data_volume_bytes_per_s"] = [1.0, np.nan, np.nan, 4.0, 5.0, 6.0]
    f.loc[utc("2026-01-05 04:00"), "requests_per_s"] = np.nan
    history, repairs = regularize(f)
    assert history.values["data_volume_bytes_per_s"].tolist() == [1, 2, 3, 4, 5, 6]
    assert repairs.lines == (
        "NaN: 1 missing value(s) in 'requests_per_s' in 1 run(s), longest 1 step(s) from 2026-01-05 04:00:00 UTC: "
        "filled by linear interpolation",
        "NaN: 2 missing value(s) in 'data_volume_bytes_per_s' in 1 run(s), longest 2 step(s) from "
        "2026-01-05 01:00:00 UTC: filled by linear interpolation")
    assert repairs.counts["nan"] == 3


def test_steps_without_a_value_at_the_edges_are_dropped():
    f = hourly(6)
    f.iloc[0, 0] = f.iloc[-1, 0] = np.nan
    history, repairs = regularize(f)
    assert len(history) == 4 and history.values.index[0] == utc("2026-01-05 01:00")
    assert repairs.lines == ("start: dropped 1 step(s) before 2026-01-05 01:00:00 UTC where a series has no value",
                             "end: dropped 1 step(s) after 2026-01-05 04:00:00 UTC where a series has no value")
    assert repairs.counts["trimmed"] == 2


def test_negative_counts_are_an_error_naming_the_first_unless_clipped():
    f = hourly(6)
    f.iloc[3, 0], f.iloc[5, 0] = -2.0, -1.0
    with pytest.raises(SeriesError, match=r"'requests_per_s' is negative at 2026-01-05 03:00:00 UTC \(-2\).*"
                                          r"cannot be; fix the source$"):
        regularize(f)
    history, repairs = regularize(f, clip_negative=True)
    assert history.values["requests_per_s"].min() == 0
    assert repairs.lines == ("negative: 2 value(s) below 0 in 'requests_per_s' (first 2026-01-05 03:00:00 UTC): "
                             "clipped to 0",)


def test_a_gap_longer_than_allowed_is_an_error():
    f = hourly(24).drop(index=pd.date_range("2026-01-05 05:00", periods=7, freq="h", tz="UTC"))
    with pytest.raises(SeriesError, match=r"gap of 7 steps \(7 h\) from 2026-01-05 05:00:00 UTC to "
                                          r"2026-01-05 11:00:00 UTC, more than max_gap_steps=6"):
        regularize(f, max_gap_steps=6)
    assert len(regularize(f, max_gap_steps=7)[0]) == 24


def test_repairs_print_one_line_each_and_add_up():
    a, b = Repairs(("x: 1",), {"x": 1}), Repairs(("y: 2",), {"x": 2, "y": 2})
    assert str(a + b) == "x: 1\ny: 2" and (a + b).counts == {"x": 3, "y": 2}


@pytest.mark.parametrize("bad, message", [
    (pd.DataFrame({"v": [1.0, 2.0]}, index=pd.date_range("2026-01-01", periods=2, freq="h")), "no time zone"),
    (pd.DataFrame({"v": [1.0, 2.0]}), "time index"),
    (pd.DataFrame({"v": ["a", "b"]}, index=pd.date_range("2026-01-01", periods=2, freq="h", tz="UTC")),
     "hold no numbers"),
    (pd.DataFrame({"v": [1.0, 1.0]}, index=pd.DatetimeIndex(["2026-01-01"] * 2, tz="UTC")), "two distinct"),
    (pd.DataFrame({"v": [1.0, np.inf]}, index=pd.date_range("2026-01-01", periods=2, freq="h", tz="UTC")),
     "infinite at 2026-01-01 01:00:00 UTC"),
    (pd.DataFrame({"v": [np.nan, np.nan]}, index=pd.date_range("2026-01-01", periods=2, freq="h", tz="UTC")),
     "no time at which"),
])
def test_frames_that_cannot_be_histories(bad, message):
    with pytest.raises(SeriesError, match=message):
        regularize(bad)


@pytest.mark.parametrize("options, message", [
    ({"fill": "zero"}, "fill='zero': expected one of interpolate, seasonal"),
    ({"step": "soon"}, "not a duration"),
    ({"step": "-5min"}, "positive duration"),
    ({"max_gap_steps": -1}, "max_gap_steps"),
])
def test_bad_options(options, message):
    with pytest.raises(SeriesError, match=message):
        regularize(hourly(4), **options)


def test_a_timestamp_column_is_taken_as_the_index():
    f = hourly(3).reset_index(names="timestamp")
    assert len(regularize(f)[0]) == 3


# -- real files --------------------------------------------------------------------------------

@pytest.mark.parametrize("name, time_zone, column, step, rows, gap_steps", [
    ("elb_request_count_8c0756.csv", "UTC", "value", "5min", 4032, 8),
    ("nyc_taxi.csv", "UTC", "value", "30min", 10320, 0),
    ("Twitter_volume_AAPL.csv", "UTC", "value", "5min", 15902, 0),
    ("api-01.csv", None, "Value", "1h", 6192, 1),
    ("mongo-01.csv", None, "Value", "1min", 15840, 0),
    ("mongo-02.csv", None, "Value", "1min", 15840, 0),
    ("example_wp_log_peyton_manning.csv", "UTC", "y", "1D", 2905, 59),
])
def test_real_files_load_at_their_steps(name, time_zone, column, step, rows, gap_steps):
    frame = read_series_csv(FIXTURES / name, time_zone=time_zone)
    assert list(frame.columns) == [column] and len(frame) == rows  # rows as written, the label left out
    assert str(frame.index.dtype) == "datetime64[ns, UTC]"
    history, repairs = regularize(frame)
    assert history.step == pd.Timedelta(step)
    assert repairs.counts["gap_steps"] == gap_steps and repairs.counts["negative"] == 0


def test_nab_times_are_utc_as_written():
    frame = read_series_csv(FIXTURES / "elb_request_count_8c0756.csv", time_zone="UTC")
    assert frame.index[0] == utc("2014-04-10 00:04") and frame["value"].iloc[0] == 94.0
    history, repairs = regularize(frame)
    assert repairs.lines == ("gaps: 8 missing step(s) of 5 min in 8 gap(s), longest 1 step(s) (5 min) from "
                             "2014-04-10 11:34:00 UTC: filled by linear interpolation",)


def test_nab_files_need_a_time_zone():
    with pytest.raises(SeriesError, match="carry no time zone.*line 2.*pass --time-zone"):
        read_series_csv(FIXTURES / "nyc_taxi.csv")


def test_the_microsoft_api_file_really_writes_an_hour_twice():
    frame = read_series_csv(FIXTURES / "api-01.csv", target_names={"Value": "requests_per_s"})
    twice = frame.loc[utc("2017-11-05 01:00"), "requests_per_s"]
    assert twice.tolist() == pytest.approx([74.5658333333333, 70.6033333333333])
    history, repairs = regularize(frame)
    assert history.values.loc[utc("2017-11-05 01:00"), "requests_per_s"] == pytest.approx(72.5845833333333)
    assert repairs.lines == (
        "duplicates: 1 timestamp(s) written more than once (2 rows; first 2017-11-05 01:00:00 UTC): kept the mean of each",
        "gaps: 1 missing step(s) of 1 h in 1 gap(s), longest 1 step(s) (1 h) from 2018-03-11 02:00:00 UTC: "
        "filled by linear interpolation")


def test_prophet_example_is_daily_with_real_gaps():
    frame = read_series_csv(FIXTURES / "example_wp_log_peyton_manning.csv", time_zone="UTC", target_names=["views_log"])
    assert frame.index[0] == utc("2007-12-10") and list(frame.columns) == ["views_log"]
    history, repairs = regularize(frame)
    assert history.values.index[-1] == utc("2016-01-19") and len(history) == 2963
    assert repairs.lines == ("gaps: 59 missing step(s) of 1 day in 29 gap(s), longest 19 step(s) (19 days) from "
                             "2008-07-13 00:00:00 UTC: filled by linear interpolation",)


def test_files_that_cannot_be_read(tmp_path):
    def write(text, name="s.csv"):
        (tmp_path / name).write_text(text)
        return tmp_path / name

    with pytest.raises(SeriesError, match="no such file"):
        read_series_csv(tmp_path / "missing.csv")
    with pytest.raises(SeriesError, match="empty file"):
        read_series_csv(write(""))
    with pytest.raises(SeriesError, match="no rows under the header"):
        read_series_csv(write("timestamp,value\n"))
    with pytest.raises(SeriesError, match=r"line 3: 'lots' in 'value' is not a number"):
        read_series_csv(write("timestamp,value\n2026-01-01T00:00Z,1\n2026-01-01T01:00Z,lots\n"))
    with pytest.raises(SeriesError, match=r"line 3: unreadable timestamp 'noon'"):
        read_series_csv(write("timestamp,value\n2026-01-01T00:00Z,1\nnoon,2\n"))
    with pytest.raises(SeriesError, match=r"no column 'rate'; its columns are 'timestamp', 'value'"):
        read_series_csv(write("timestamp,value\n2026-01-01T00:00Z,1\n"), value_columns=["rate"])
    with pytest.raises(SeriesError, match="renames 'v'"):
        read_series_csv(write("timestamp,value\n2026-01-01T00:00Z,1\n"), target_names={"v": "requests_per_s"})
    with pytest.raises(SeriesError, match="2 target name"):
        read_series_csv(write("timestamp,value\n2026-01-01T00:00Z,1\n"), target_names=["a", "b"])
    with pytest.raises(SeriesError, match="unknown time zone 'Mars/Olympus'"):
        read_series_csv(FIXTURES / "nyc_taxi.csv", time_zone="Mars/Olympus")


def test_empty_cells_become_nan_for_regularize_to_report(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("timestamp,value\n2026-01-01T00:00Z,1\n2026-01-01T01:00Z,\n2026-01-01T02:00Z,3\n")
    history, repairs = regularize(read_series_csv(path))
    assert history.values["value"].tolist() == [1, 2, 3] and repairs.counts["nan"] == 1


# -- from a request trace ------------------------------------------------------------------------

def trace(seconds, bytes_in, bytes_out, session=None):
    frame = {"timestamp": pd.to_datetime(seconds, unit="s", utc=True), "class": "get", "service": "api",
             "latency_s": 0.01, "bytes_in": bytes_in, "bytes_out": bytes_out}
    if session is not None:
        frame["session"] = pd.array(session, dtype="string[pyarrow]")
    return conform(pd.DataFrame(frame), "test")


def test_history_from_a_trace():
    t = trace([0, 5, 30, 65, 200], [100.0, 100.0, np.nan, 0.0, 20.0], [900.0, 0.0, 50.0, 60.0, 40.0],
              ["a", "b", "a", None, "c"])
    history, repairs = history_from_trace(t, step="1min")
    v = history.values
    assert history.step == pd.Timedelta("1min") and list(v.index) == list(pd.date_range(0, periods=4, freq="min", tz="UTC"))
    assert v["requests_per_s"].tolist() == pytest.approx([3 / 60, 1 / 60, 0, 1 / 60])
    assert v["data_volume_bytes_per_s"].tolist() == pytest.approx([1150 / 60, 60 / 60, 0, 60 / 60])
    assert v["user_concurrency"].tolist() == [2, 0, 0, 1]
    assert repairs.lines == (
        "bytes: 1 of 5 request(s) with an unknown bytes_in or bytes_out: counted as 0 bytes",
        "sessions: 1 of 5 request(s) without a session id: not counted in user_concurrency")


def test_a_trace_without_sessions_or_sizes_leaves_those_targets_out():
    t = trace([0, 70, 130], np.nan, np.nan)
    history, repairs = history_from_trace(t, step="1min")
    assert history.targets == ("requests_per_s",)
    assert repairs.lines == ("bytes: no request has bytes_in or bytes_out: data_volume_bytes_per_s left out",
                             "sessions: the trace has no session ids: user_concurrency left out")


def test_traces_that_cannot_make_a_history():
    with pytest.raises(SeriesError, match="less than two steps of 1 h"):
        history_from_trace(trace([0, 70], 1.0, 1.0), step="1h")
    with pytest.raises(SeriesError, match="'timestamp' column"):
        history_from_trace(pd.DataFrame({"t": [1]}), step="1min")
    with pytest.raises(SeriesError, match="not time-zone-aware instants"):
        history_from_trace(pd.DataFrame({"timestamp": pd.to_datetime([0, 100], unit="s")}), step="1min")
    with pytest.raises(SeriesError, match="positive duration"):
        history_from_trace(trace([0, 70], 1.0, 1.0), step="0s")


# -- seasons -----------------------------------------------------------------------------------

def test_season_check_says_which_seasons_the_history_cannot_carry():
    nine_days = History(hourly(9 * 24))
    assert season_check(nine_days) == [
        "history covers 9 days: the weekly season needs at least 14 days; weekly terms are left out"]
    assert season_check(History(hourly(14 * 24))) == []
    assert season_check(History(hourly(30))) == [
        "history covers 1.2 days: the daily season needs at least 2 days; daily terms are left out",
        "history covers 1.2 days: the weekly season needs at least 14 days; weekly terms are left out"]


def test_season_check_on_daily_data_and_a_yearly_season():
    idx = pd.date_range("2026-01-01", periods=400, freq="D", tz="UTC")
    days = History(pd.DataFrame({"views": 1.0}, index=idx))
    assert season_check(days, {"daily": pd.Timedelta("1D"), "weekly": pd.Timedelta("7D"),
                               "yearly": pd.Timedelta("365D")}) == [
        "the daily season (1 day) spans less than two steps of 1 day; daily terms are left out",
        "history covers 400 days: the yearly season needs at least 730 days; yearly terms are left out"]
    with pytest.raises(SeriesError, match="season 'monthly'"):
        season_check(days, {"monthly": "a month"})


def test_real_mongo_history_is_too_short_for_a_weekly_season():
    history, _ = regularize(read_series_csv(FIXTURES / "mongo-01.csv"))
    assert season_check(history) == [
        "history covers 11 days: the weekly season needs at least 14 days; weekly terms are left out"]


def test_durations_are_written_as_people_say_them():
    assert [duration_text(pd.Timedelta(x)) for x in ("5min", "1h", "90min", "1D", "14D", "36h", "30s", "1.5s")] == [
        "5 min", "1 h", "90 min", "1 day", "14 days", "1.5 days", "30 s", "1.5 s"]
