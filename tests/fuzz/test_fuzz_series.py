"""Fuzzing the series readers: metric CSV, Prometheus JSON, load histories (read and repaired) and
load profiles (read and turned into arrivals), events calendars."""

import json

import numpy as np
import yaml
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import MINIMAL
from tests.fuzz.support import clean, fuzz, mutated, text_mutated
from twin.spec.loader import validate_model
from twin.traces.metrics import read_metric_csv, read_prometheus

TIMES = ["2017-11-01T00:00:00Z", "2017-11-01T01:00:00Z", "2017-11-01T02:00:00Z", "2017-11-01 03:00:00",
         "2017-11-01T01:00:00+05:00", "2017-11-01T01:00:00.5Z", "1509494400", "2017-02-30T00:00:00Z",
         "1970-01-01T00:00:00Z", "2262-04-12T00:00:00Z", "9999-12-31T23:59:59Z", "0001-01-01", "", "yesterday"]
VALUES = ["49.67", "0", "-3", "1e308", "1e400", "nan", "NaN", "+Inf", "", "x", "1,5", "12", "99999999999999999999"]
HEADERS = ["TimeStamp,Value,Label", "timestamp,value", "ds,y", "time,a,b", "value", "", "timestamp,timestamp",
           "timestamp,requests_per_s,mix_get"]

csv_rows = st.lists(st.builds(lambda t, vs: ",".join([t, *vs]), st.sampled_from(TIMES),
                              st.lists(st.sampled_from(VALUES), max_size=3)), max_size=8)
csv_text = st.one_of(
    st.builds(lambda h, rows: h + "\n" + "\n".join(rows) + "\n", st.sampled_from(HEADERS), csv_rows),
    text_mutated('timestamp,value\n2014-07-01 00:00:00,10844\n2014-07-01 00:30:00,8127\n',
                 noise=list(',"\n\r-:. ') + ["\x00", "\ufeff", "NaN"]))
zones = st.sampled_from([None, "UTC", "Europe/Paris", "Atlantis/Nowhere"])


@fuzz(500)
@given(csv_text, zones, st.sampled_from([None, "s", "ms", "weeks"]))
def test_metric_csv(scratch, text, time_zone, time_unit):
    path = scratch / "metric.csv"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    clean(read_metric_csv, path, time_zone=time_zone, time_unit=time_unit)


@fuzz(500)
@given(csv_text, zones)
def test_load_histories(scratch, text, time_zone):
    from twin.forecast.series import read_series_csv, regularize

    path = scratch / "history.csv"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    frame = clean(read_series_csv, path, time_zone=time_zone)
    if frame is not None:
        clean(regularize, frame)


PROMETHEUS = {"status": "success", "data": {"resultType": "matrix", "result": [
    {"metric": {"__name__": "http_requests_total", "service": "api"},
     "values": [[1435781430.781, "1"], [1435781445.781, "1.5"], [1435781460.781, "NaN"]]},
    {"metric": {"service": "db"}, "values": [[1435781445.781, "+Inf"], [1435781460.781, "2e3"]]}]},
    "warnings": ["partial data"]}


@fuzz(500)
@given(st.one_of(mutated(PROMETHEUS, max_edits=4, keys=["status", "data", "resultType", "result", "metric",
                                                          "values", "value", "warnings", "errorType", "error"])
                 .map(json.dumps), text_mutated(json.dumps(PROMETHEUS), noise=list('[]{}:,"') + ["[" * 3000])))
def test_prometheus(scratch, text):
    path = scratch / "rate.json"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    clean(read_prometheus, path)


TINY = validate_model(yaml.safe_load(MINIMAL))
RATES = ["0", "0.5", "3", "-1", "nan", "inf", "1e9", "1e400", "", "x"]


@fuzz(300)
@given(st.lists(st.sampled_from(TIMES[:6] + ["2017-11-01T00:05:00Z", "2017-11-01T00:10:00Z"]), min_size=1,
                max_size=4),
       st.lists(st.tuples(st.sampled_from(RATES), st.sampled_from(RATES), st.sampled_from(RATES + ["1", "0.2"])),
                min_size=1, max_size=4),
       st.sampled_from(["timestamp,requests_per_s,requests_per_s_q0.9,mix_get",
                        "timestamp,requests_per_s,requests_per_s_q0.9,mix_nosuch", "ts,requests_per_s,x,y",
                        "timestamp,requests_per_s,requests_per_s_q0.5,user_concurrency"]),
       st.sampled_from([None, 0.9, 0.5, 1.5]))
def test_load_profiles(scratch, times, rows, header, quantile):
    from twin.load.profile_workload import read_profile, workload

    path = scratch / "profile.csv"
    path.write_text(header + "\n" + "".join(f"{t},{a},{b},{c}\n" for t, (a, b, c) in zip(times, rows)))
    profile = clean(read_profile, path)
    if profile is not None:
        clean(workload, profile, TINY, np.random.default_rng(0), quantile=quantile)


EVENTS = {"time_zone": "UTC", "events": [
    {"type": "campaign", "start": "2026-01-01", "end": "2026-01-02", "intensity": 2, "name": "sale"},
    {"type": "outage", "start": "2026-01-03T10:00:00+01:00", "end": "2026-01-03T12:00:00+01:00"}]}


@fuzz(400)
@given(st.one_of(mutated(EVENTS, max_edits=2, keys=["type", "start", "end", "intensity", "name", "time_zone"])
                 .map(lambda d: yaml.safe_dump(d, allow_unicode=True)),
                 text_mutated(yaml.safe_dump(EVENTS))), st.sampled_from([None, "UTC", "Europe/Paris"]))
def test_events_calendars(scratch, text, time_zone):
    from twin.forecast.covariates import read_events

    path = scratch / "events.yaml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    clean(read_events, path, time_zone=time_zone)
