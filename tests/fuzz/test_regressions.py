"""Crashes the fuzzers found, one plain case each (each failed with a traceback before its fix)."""

import pytest

from tests.conftest import MINIMAL, MODELS
from twin.spec import SpecError, load_model
from twin.spec.units import parse_bytes, parse_seconds


@pytest.mark.parametrize("text", ["1e400s", "1e400", "-1e400ms"])
def test_a_duration_too_large_for_a_float_is_refused(text):
    with pytest.raises(ValueError, match="finite"):
        parse_seconds(text)
    with pytest.raises(ValueError):
        parse_bytes(text.removesuffix("s").removesuffix("m"))


def test_param_of_infinite_size_is_a_clean_error():
    with pytest.raises(SpecError, match=r"--param: frontend_workers: expected"):
        load_model(MODELS / "reference" / "shop.yaml", params={"frontend_workers": "1e400"})
    with pytest.raises(SpecError, match=r"--param: frontend_workers: expected"):
        load_model(MODELS / "reference" / "shop.yaml", params={"frontend_workers": float("inf")})


@pytest.mark.parametrize("targets", ["{a: 1}", "0.5", "[]"])
def test_tunable_targets_of_the_wrong_type_are_named(write_yaml, targets):
    text = MINIMAL + f"tunables:\n  w: {{type: int, low: 1, high: 4, targets: {targets}}}\n"
    with pytest.raises(SpecError, match=r"model.yaml:\d+: tunables.w.targets"):
        load_model(write_yaml(text))



@pytest.mark.parametrize("text", ["[" * 100_000, '{"resourceSpans": []}\n' + "[" * 100_000 + "\n"])
def test_spans_nested_past_the_stack_are_not_json(tmp_path, text):
    from twin.traces import read_trace
    from twin.traces.schema import TraceError

    path = tmp_path / "spans.json"
    path.write_text(text)
    with pytest.raises(TraceError, match=r"spans.json.*(nested too deeply|not JSON)"):
        read_trace(path, format="otlp")


def test_prometheus_nested_past_the_stack_is_not_json(tmp_path):
    from twin.traces.metrics import read_prometheus
    from twin.traces.schema import TraceError

    path = tmp_path / "rate.json"
    path.write_text("[" * 100_000)
    with pytest.raises(TraceError, match=r"rate.json: not JSON \(line 1, column 1: nested too deeply\)"):
        read_prometheus(path)


@pytest.mark.parametrize("series,expected", [
    ({"metric": 1, "values": [[1435781445.781, "1"]]}, "metric is 1, not a mapping of labels"),
    ({"metric": "cpu", "values": [[1435781445.781, "1"]]}, "metric is 'cpu', not a mapping of labels"),
    ({"metric": {}, "values": [["Infinity", "1"]]}, r"sample 1 is \['Infinity', '1'\]"),
    ({"metric": {}, "values": [[1e300, "1"]]}, r"sample 1 is \[1e\+300, '1'\]"),
])
def test_prometheus_series_of_the_wrong_shape(tmp_path, series, expected):
    import json

    from twin.traces.metrics import read_prometheus
    from twin.traces.schema import TraceError

    path = tmp_path / "rate.json"
    path.write_text(json.dumps({"status": "success", "data": {"resultType": "matrix", "result": [series]}}))
    with pytest.raises(TraceError, match=f"rate.json: .*{expected}"):
        read_prometheus(path)


def test_prometheus_warnings_that_are_not_a_list_are_kept(tmp_path):
    import json

    from twin.traces.metrics import read_prometheus

    path = tmp_path / "rate.json"
    path.write_text(json.dumps({"status": "success", "warnings": 1.5, "data": {"resultType": "matrix", "result": [
        {"metric": {}, "values": [[1435781445.781, "1"]]}]}}))
    _, report = read_prometheus(path)
    assert report.warnings == ["Prometheus: 1.5"]


def test_a_load_profile_cell_that_is_not_a_number_is_named(tmp_path):
    import numpy as np
    import yaml

    from twin.load.arrivals import LoadError
    from twin.load.profile_workload import read_profile, workload
    from twin.spec.loader import validate_model

    path = tmp_path / "profile.csv"
    path.write_text("timestamp,requests_per_s,mix_get\n2026-01-01T00:00:00Z,1,1\n2026-01-01T00:05:00Z,x,1\n")
    model = validate_model(yaml.safe_load(MINIMAL))
    with pytest.raises(LoadError, match=r"requests_per_s at 2026-01-01 00:05:00\+00:00: expected a number, got 'x'"):
        workload(read_profile(path), model, np.random.default_rng(0))
    path.write_text("timestamp,requests_per_s,mix_get\n2026-01-01T00:00:00Z,1,1\n2026-01-01T00:05:00Z,1,a\n")
    with pytest.raises(LoadError, match=r"mix_get at 2026-01-01 00:05:00\+00:00: expected a number, got 'a'"):
        workload(read_profile(path), model, np.random.default_rng(0))


@pytest.mark.parametrize("format", ["nginx", "apache"])
def test_an_access_log_latency_of_years_is_a_malformed_line(tmp_path, format):
    from twin.traces.accesslog import read_access_log
    from twin.traces.schema import TraceError

    fmt = ('$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent $request_time'
           if format == "nginx" else '%h %l %u %t "%r" %>s %b %D')
    path = tmp_path / "access.log"
    fine = "0.5" if format == "nginx" else "500000"
    path.write_text(f'127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET /a HTTP/1.1" 200 2326 {fine}\n'
                    '127.0.0.1 - - [10/Oct/2000:13:55:37 -0700] "GET /a HTTP/1.1" 200 2326 99999999999999999999999\n')
    with pytest.raises(TraceError, match=r"access.log: 1 malformed line\(s\) \(lines 2\)"):
        read_access_log(path, format=fmt)
    frame, report = read_access_log(path, format=fmt, keep_going=True)
    assert len(frame) == 1 and report.malformed == 1


@pytest.mark.parametrize("status", ["99999999999999999999", "1e300", "-1"])
def test_a_request_log_status_out_of_range_is_unreadable(tmp_path, status):
    from twin.traces.requestlog import read_request_log
    from twin.traces.schema import TraceError

    path = tmp_path / "requests.csv"
    path.write_text(f"ts,status\n2024-01-01T10:00:01+01:00,{status}\n2024-01-01T10:00:02+01:00,200\n")
    with pytest.raises(TraceError, match=r"requests.csv: 1 line\(s\) with an unreadable status \(first at line 2\)"):
        read_request_log(path, columns={"timestamp": "ts"})


def test_an_event_outside_the_representable_years_is_named(tmp_path):
    from twin.forecast.covariates import CovariateError, read_events

    path = tmp_path / "events.yaml"
    path.write_text("- {type: launch, start: '026-01-01T00:00:00Z', end: '2026-01-02T00:00:00Z'}\n")
    with pytest.raises(CovariateError, match=r"events.yaml: event 1: start '026-01-01T00:00:00Z' is outside the "
                                             r"years 1678-2261"):
        read_events(path)


def test_a_history_spanning_billions_of_steps_is_refused(tmp_path):
    from twin.forecast.series import SeriesError, read_series_csv, regularize

    path = tmp_path / "history.csv"
    path.write_text("timestamp,value\n2017-11-01T00:00:00Z,1\n2017-11-01T00:00:01Z,1\n2262-04-11T00:00:00Z,1\n")
    with pytest.raises(SeriesError, match=r"the history spans 7713792001 steps of 1 s from 2017-11-01 00:00:00 UTC "
                                          r"to 2262-04-11 00:00:00 UTC; at most 5000000 fit"):
        regularize(read_series_csv(path))


@pytest.mark.parametrize("rows,time_zone,expected", [
    (["2017-11-01 03:00:00", "2262-04-12T00:00:00Z", "2017-11-01 03:00:00"], None,
     r"carry no time zone \(line 2: '2017-11-01 03:00:00'\)"),
    (["2262-04-12T00:00:00Z", "2017-11-01 03:00:00"], "UTC", r"line 2: unreadable timestamp '2262-04-12T00:00:00Z'"),
])
def test_naive_times_beside_a_zoned_one_out_of_range(tmp_path, rows, time_zone, expected):
    from twin.forecast.series import SeriesError, read_series_csv

    path = tmp_path / "history.csv"
    path.write_text("TimeStamp,Value,Label\n" + "".join(f"{row},1,0\n" for row in rows))
    with pytest.raises(SeriesError, match=f"history.csv: .*{expected}"):
        read_series_csv(path, time_zone=time_zone)


def test_jaeger_references_that_are_not_a_list(tmp_path):
    import json

    from twin.traces.spans import read_jaeger_json
    from twin.traces.schema import TraceError

    span = {"traceID": "4bf92f3577b34da6a3ce929d0e0e4736", "spanID": "00f067aa0ba902b7", "operationName": "GET /",
            "references": True, "startTime": 1700000000000001, "duration": 80000, "processID": "p1"}
    path = tmp_path / "jaeger.json"
    path.write_text(json.dumps({"data": [{"traceID": span["traceID"], "spans": [span],
                                          "processes": {"p1": {"serviceName": "gateway"}}}]}))
    with pytest.raises(TraceError, match=r"jaeger.json: 1 malformed line\(s\) .*references: expected a "
                                         r"list, got bool"):
        read_jaeger_json(path)
