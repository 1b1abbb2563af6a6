"""Metric series: the real NAB and Microsoft samples, Prometheus range queries, and bad input."""

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from twin.traces.metrics import read_metric_csv, read_prometheus, series_name
from twin.traces.schema import TraceError

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "traces"


def utc(text):
    return pd.Timestamp(text, tz="UTC")


@pytest.fixture
def write(tmp_path):
    def write(text, name="series.csv"):
        path = tmp_path / name
        path.write_text(text if isinstance(text, str) else json.dumps(text))
        return path
    return write


def test_microsoft_format_is_utc_and_drops_the_label():
    frame, report = read_metric_csv(FIXTURES / "microsoft_api-01_500.csv")
    assert list(frame.columns) == ["Value"] and frame["Value"].dtype == "float64"
    assert str(frame.index.dtype) == "datetime64[ns, UTC]" and frame.index.name == "timestamp"
    assert frame.index[0] == utc("2017-11-01 00:00") and frame["Value"].iloc[0] == pytest.approx(49.6747222222222)
    assert frame.index.is_monotonic_increasing and frame.index.is_unique
    # the file writes 2017-11-05T01:00:00Z twice (a daylight-saving change logged as UTC): lines 99 and 100
    assert len(frame) == report.rows == 498
    assert report.warnings == ["1 duplicate timestamp(s) (first at line 100): kept the last value of each"]
    assert frame.loc[utc("2017-11-05 01:00"), "Value"] == pytest.approx(70.6033333333333)


def test_nab_format_needs_its_zone_said():
    path = FIXTURES / "nab_nyc_taxi_500.csv"
    with pytest.raises(TraceError, match="carry no time zone.*time_zone"):
        read_metric_csv(path)
    frame, report = read_metric_csv(path, time_zone="UTC")
    assert len(frame) == 499 and report.warnings == []
    assert frame.index[0] == utc("2014-07-01 00:00") and frame["value"].iloc[0] == 10844.0
    local, _ = read_metric_csv(path, time_zone="America/New_York")
    assert local.index[0] == utc("2014-07-01 04:00")


def test_choosing_columns(write):
    path = write("when,rps,cpu,label\n2024-01-01T00:00:00Z,1,0.5,0\n2024-01-01T00:01:00Z,2,,1\n")
    frame, _ = read_metric_csv(path, time_column="when", value_columns=["cpu"])
    assert list(frame.columns) == ["cpu"] and math.isnan(frame["cpu"].iloc[1])
    frame, _ = read_metric_csv(path, time_column="when")
    assert list(frame.columns) == ["rps", "cpu"]
    with pytest.raises(TraceError, match=r"no value column 'mem'; its columns are 'when', 'rps', 'cpu', 'label'"):
        read_metric_csv(path, time_column="when", value_columns=["mem"])
    with pytest.raises(TraceError, match="no time column 'time'"):
        read_metric_csv(path, time_column="time")


def test_epoch_times(write):
    frame, _ = read_metric_csv(write("ts,value\n1704067200,3\n"), time_unit="s")
    assert frame.index[0] == utc("2024-01-01")


@pytest.mark.parametrize("text,expected", [
    ("", "empty file"),
    ("timestamp,value\n", "no rows"),
    ("timestamp\n2024-01-01T00:00:00Z\n", "no value columns"),
    ("timestamp,value\n2024-01-01T00:00:00Z,1\n2024-01-01T00:01:00Z,lots\n", r"line 3: 'lots' in 'value' is not a number"),
    ("timestamp,value\n2024-01-01T00:00:00Z,1\nsoon,2\n", r"line 3: unreadable timestamp 'soon'"),
    ("timestamp,value\n2024-01-01T00:00:00Z,1\n2024-01-01T00:00:00+01:00,2\n", "mixes time zones"),
])
def test_bad_metric_csv(write, text, expected):
    with pytest.raises(TraceError, match=expected):
        read_metric_csv(write(text), time_zone="UTC")


def test_unsorted_rows_are_sorted_with_a_warning(write):
    frame, report = read_metric_csv(write("timestamp,value\n2024-01-01T00:02:00Z,3\n2024-01-01T00:01:00Z,2\n"))
    assert list(frame["value"]) == [2.0, 3.0]
    assert report.warnings == ["rows were not in time order: sorted by timestamp"]


def prometheus(result, **extra):
    return {"status": "success", "data": {"resultType": "matrix", "result": result}, **extra}


def test_prometheus_range_query(write):
    doc = prometheus([
        {"metric": {"__name__": "http_requests_total", "service": "api", "code": "200"},
         "values": [[1435781430.781, "1"], [1435781445.781, "1.5"], [1435781460.781, "NaN"]]},
        {"metric": {"service": "db"}, "values": [[1435781445.781, "+Inf"], [1435781460.781, "2e3"]]},
    ], warnings=["partial data"])
    frame, report = read_prometheus(write(doc, "range.json"))
    assert list(frame.columns) == ['http_requests_total{code="200",service="api"}', '{service="db"}']
    assert list(frame.index) == [utc("2015-07-01 20:10:30.781"), utc("2015-07-01 20:10:45.781"),
                                 utc("2015-07-01 20:11:00.781")]  # milliseconds exact
    api, db = frame.iloc[:, 0], frame.iloc[:, 1]
    assert api.iloc[1] == 1.5 and math.isnan(api.iloc[2])
    assert math.isnan(db.iloc[0]) and db.iloc[1] == math.inf and db.iloc[2] == 2000.0
    assert report.rows == 3 and report.warnings == ["Prometheus: partial data"]


def test_prometheus_unsorted_and_duplicate_samples(write):
    doc = prometheus([{"metric": {"__name__": "up"}, "values": [[20, "1"], [10, "0"], [20, "2"]]}])
    frame, report = read_prometheus(write(doc, "r.json"))
    assert list(frame["up"]) == [0.0, 2.0]
    assert any("duplicate" in w for w in report.warnings) and any("sorted" in w for w in report.warnings)


def test_series_names():
    assert series_name({"__name__": "up"}) == "up"
    assert series_name({}) == "{}"
    assert series_name({"job": 'a"b'}) == '{job="a\\"b"}'


@pytest.mark.parametrize("doc,expected", [
    ({"status": "error", "errorType": "bad_data", "error": "parse error at char 4"},
     "Prometheus answered 'error': bad_data: parse error at char 4"),
    ({"status": "success", "data": {"resultType": "vector", "result": []}}, "resultType is 'vector', not 'matrix'"),
    (prometheus([]), "no series"),
    (prometheus([{"metric": {"__name__": "up"}, "values": [[1, "fast"]]}]), "sample 1 has value 'fast', not a number"),
    (prometheus([{"metric": {"__name__": "up"}, "values": [[1, True]]}]), "not a number"),
    (prometheus([{"metric": {"__name__": "up"}, "values": [[1]]}]), r"sample 1 is \[1\]"),
    (prometheus([{"metric": {"__name__": "up"}, "value": [1, "1"]}]), "without 'values'"),
    (prometheus([{"metric": {"a": "1"}, "values": []}, {"metric": {"a": "1"}, "values": []}]), "same labels"),
    ([1, 2], "not a Prometheus API response"),
])
def test_bad_prometheus_responses(write, doc, expected):
    path = write(doc, "r.json")
    with pytest.raises(TraceError, match=expected) as info:
        read_prometheus(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("text,expected", [("", "empty file"), ('{"status": "succ', r"not JSON \(line 1")])
def test_prometheus_files_that_are_not_json(write, text, expected):
    with pytest.raises(TraceError, match=expected):
        read_prometheus(write(text, "r.json"))


def test_missing_files(tmp_path):
    for read in (read_metric_csv, read_prometheus):
        with pytest.raises(TraceError, match="no such file"):
            read(tmp_path / "nope")
