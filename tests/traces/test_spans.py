"""OTLP and Jaeger span readers: hand-made traces whose rows, parents and exclusive times are
worked out by hand (see tests/fixtures/traces/spans/README.md), and every kind of bad input."""

import base64
import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from twin.traces.schema import COLUMNS, TraceError
from twin.traces.spangraph import CLIENT, CLIENT_CALLER, SERVER, call_graph, exclusive_times, root_classes, server_spans
from twin.traces.spans import read_jaeger_json, read_otlp_json

SPANS = Path(__file__).resolve().parents[1] / "fixtures" / "traces" / "spans"
T0 = 1700000000123456789  # otlp_shop.json's first span starts here (ns); a float would lose the 789
MS = 1_000_000


@pytest.fixture(scope="module")
def shop():
    return read_otlp_json(SPANS / "otlp_shop.json")


def by_span(frame):
    return frame.set_index("span_id")


def test_otlp_rows_are_server_spans_in_the_contract(shop):
    frame, report = shop
    assert all(frame[c].dtype == t for c, t in COLUMNS.items())
    assert list(frame["span_id"]) == ["1000000000000001", "1000000000000003", "1000000000000006",
                                      "1000000000000009", "100000000000000a", "2000000000000001",
                                      "2000000000000003", "2000000000000004"]
    assert report.rows == 8 and report.malformed == 0
    assert frame["timestamp"].is_monotonic_increasing


def test_otlp_parent_is_the_nearest_server_span(shop):
    s = by_span(shop[0])
    # cart's server span hangs under frontend's client span; db under cart's internal -> client spans
    assert s.loc["1000000000000003", "parent_id"] == "1000000000000001"
    assert s.loc["1000000000000006", "parent_id"] == "1000000000000003"
    assert s.loc["1000000000000009", "parent_id"] == "1000000000000001"
    assert s.loc["2000000000000003", "parent_id"] == "2000000000000001"
    assert pd.isna(s.loc["1000000000000001", "parent_id"])


def test_otlp_timestamps_are_exact_nanoseconds(shop):
    s = by_span(shop[0])
    assert s.loc["1000000000000001", "timestamp"] == pd.Timestamp(T0, unit="ns", tz="UTC")
    assert s.loc["1000000000000003", "timestamp"].value == T0 + 12 * MS
    assert s.loc["1000000000000001", "latency_s"] == 0.1


def test_exclusive_time_subtracts_the_union_of_callees(shop):
    s = by_span(shop[0])["exclusive_s"]
    # frontend 0-100 ms calls cart through a client span 10-60, then price twice in parallel through
    # client spans 60-90 and 65-95: the calls as the caller saw them cover 10-95, so 100 - 85 = 15.
    # (The callees' server spans, 12-58, 61-89 and 66-94, would give 21: the gaps are network and
    # the callees' queues, not the frontend's work.)
    assert s["1000000000000001"] == pytest.approx(0.015, abs=1e-12)
    assert s["1000000000000003"] == pytest.approx(0.028, abs=1e-12)  # 46 - the SELECT client span's 18
    assert s["1000000000000006"] == pytest.approx(0.016, abs=1e-12)
    assert s["2000000000000001"] == pytest.approx(0.010, abs=1e-12)  # 50 - the client span's 40
    # the contract frame keeps server spans only; from it, callees' server spans are all there is
    assert (exclusive_times(shop[0]) >= shop[0]["exclusive_s"] - 1e-12).all()
    assert by_span(shop[0].assign(exclusive_s=exclusive_times(shop[0])))["exclusive_s"]["1000000000000001"] == \
        pytest.approx(0.021, abs=1e-12)


def test_status_error_and_attributes(shop):
    s = by_span(shop[0])
    assert s.loc["1000000000000001", ["status", "error", "bytes_in", "bytes_out", "session"]].tolist() == \
        [200, False, 120.0, 2048.0, "sess-1"]
    assert s.loc["1000000000000009", ["status", "error"]].tolist() == [404, False]  # a 404 is not a failure
    assert s.loc["2000000000000001", ["status", "error"]].tolist() == [500, True]  # ERROR, no HTTP status
    assert s.loc["2000000000000003", ["status", "error"]].tolist() == [503, True]  # ERROR with its HTTP status
    assert s.loc["1000000000000006", "key"] == "cart:42"
    assert pd.isna(s.loc["1000000000000003", "bytes_in"]) and pd.isna(s.loc["1000000000000003", "session"])


def test_missing_parent_becomes_a_root_with_a_warning(shop):
    frame, report = shop
    assert pd.isna(by_span(frame).loc["2000000000000004", "parent_id"])
    assert any("1 span(s) name a parent that is not in the file" in w for w in report.warnings)


def test_class_is_the_span_name_and_root_classes_follow_parents(shop):
    frame = shop[0]
    assert by_span(frame).loc["1000000000000006", "class"] == "SELECT items"
    roots = root_classes(frame).set_axis(frame["span_id"])
    assert roots["1000000000000006"] == "GET /cart" and roots["2000000000000003"] == "POST /checkout"


def test_call_graph(shop):
    g = call_graph(shop[0]).set_index(["caller", "callee", "class"])
    price = g.loc[("frontend", "price", "GET /cart")]
    assert (price.caller_spans, price.calling_spans, price.calls, price.call_probability, price.fanout_mean) == \
        (1, 1, 2, 1.0, 2.0)
    assert g.loc[("cart", "db", "GET /cart"), "calls"] == 1
    assert g.loc[(CLIENT_CALLER, "payment", "POST /refund"), "calls"] == 1  # the orphan is a root
    assert len(g) == 7


def test_call_graph_probability_and_fanout():
    # 4 traces: api always calls db; 2 of them also call cache, one of those twice
    rows = []
    for t in range(4):
        rows.append((f"t{t}", "r", None, "api", 0, 100))
        rows.append((f"t{t}", "d", "r", "db", 10, 20))
        for c in range(t if t < 3 else 0):
            rows.append((f"t{t}", f"c{c}", "r", "cache", 30, 40))
    frame = _frame(rows)
    g = call_graph(frame).set_index(["caller", "callee"])
    assert g.loc[("api", "cache"), ["caller_spans", "calling_spans", "calls"]].tolist() == [4, 2, 3]
    assert g.loc[("api", "cache"), "call_probability"] == 0.5 and g.loc[("api", "cache"), "fanout_mean"] == 1.5
    assert g.loc[(CLIENT_CALLER, "api"), ["caller_spans", "calls", "call_probability"]].tolist() == [4, 4, 1.0]


def _frame(rows):
    """A contract-like frame from (trace, span, parent, service, start_ms, end_ms)."""
    t, s, p, svc, a, b = zip(*rows)
    start = np.array(a, dtype=np.int64) * MS + T0
    return pd.DataFrame({"timestamp": pd.to_datetime(start, unit="ns", utc=True), "class": "GET /",
                         "service": svc, "latency_s": (np.array(b) - np.array(a)) / 1e3,
                         "trace_id": pd.array(t, dtype="string"), "span_id": pd.array(s, dtype="string"),
                         "parent_id": pd.array(p, dtype="string")})


def test_exclusive_times_match_a_brute_force_union():
    rng = np.random.default_rng(7)
    rows = []
    for t in range(200):
        n = int(rng.integers(1, 9))
        parents = [None] + [f"s{int(rng.integers(0, i))}" for i in range(1, n)]
        for i in range(n):
            a = int(rng.integers(0, 100))
            rows.append((f"t{t}", f"s{i}", parents[i], "svc", a, a + int(rng.integers(0, 60))))
    frame = _frame(rows)
    got = exclusive_times(frame).to_numpy()
    for i, (t, s, _, _, a, b) in enumerate(rows):
        covered = np.zeros(200, dtype=bool)  # 1 ms cells of [0, 200)
        for (t2, _, p2, _, a2, b2) in rows:
            if t2 == t and p2 == s:
                covered[max(a, a2):min(b, b2)] = True
        assert got[i] == pytest.approx((b - a - covered.sum()) / 1e3, abs=1e-12)


def test_exclusive_times_is_nan_without_span_ids():
    frame = _frame([("t", "a", None, "web", 0, 10), ("t", "b", "a", "db", 2, 5)])
    frame.loc[1, "span_id"] = pd.NA
    out = exclusive_times(frame)
    assert out.iloc[0] == pytest.approx(0.010) and np.isnan(out.iloc[1])


def test_a_trace_without_kinds_has_every_span_as_a_server_span(tmp_path):
    spans = [_span("a", "", 0, 100), _span("b", "a", 10, 50), _span("c", "b", 20, 30, kind=1)]
    frame, _ = read_otlp_json(_write(tmp_path, _doc(spans)))
    assert list(frame["span_id"]) == [c * 16 for c in "abc"]
    assert list(frame["exclusive_s"]) == pytest.approx([0.060, 0.030, 0.010])


def test_consumer_spans_are_rows_and_producer_spans_links(tmp_path):
    spans = [_span("a", "", 0, 100, kind=2), _span("b", "a", 10, 20, kind=4), _span("c", "b", 30, 60, kind=5)]
    frame, _ = read_otlp_json(_write(tmp_path, _doc(spans)))
    assert list(frame["parent_id"].fillna("-")) == ["-", "a" * 16]


def test_jaeger_reader():
    frame, report = read_jaeger_json(SPANS / "jaeger_shop.json")
    s = by_span(frame)
    assert list(frame["service"]) == ["gateway", "orders", "gateway", "orders", "orders"]
    assert s.loc["00f067aa0ba902b9", "parent_id"] == "00f067aa0ba902b7"  # through the client span
    assert s.loc["00f067aa0ba902b7", "exclusive_s"] == pytest.approx(0.030, abs=1e-12)  # 80 - client span's 50
    assert s.loc["00f067aa0ba902b9", ["status", "error"]].tolist() == [500, True]
    assert s.loc["00f067aa0ba902b7", ["status", "session"]].tolist() == [200, "alice"]
    assert s.loc["00f067aa0ba902b7", "timestamp"].value == 1700000000000001000  # microseconds, exactly
    # the second trace has no span.kind tags: every span is a row; ids trimmed by Jaeger are padded
    assert s.loc["0000000000000101", "exclusive_s"] == pytest.approx(0.015, abs=1e-12)
    assert s.loc["0000000000000103", ["parent_id", "key"]].tolist() == ["0000000000000101", "k7"]
    assert frame["trace_id"].iloc[-1] == "abcdef".rjust(32, "0")
    assert report.rows == 5 and not report.warnings


def test_json_lines_with_malformed_lines(tmp_path):
    path = SPANS / "otlp_lines.jsonl"
    with pytest.raises(TraceError, match=r"otlp_lines.jsonl: 2 malformed line\(s\) \(lines 2, 4\).*line 2: not JSON"
                                          r".*Pass --keep-going to skip them"):
        read_otlp_json(path)
    frame, report = read_otlp_json(path, keep_going=True)
    assert list(frame["span_id"]) == ["3000000000000001", "3000000000000003"]
    assert (report.malformed, report.first_malformed) == (2, [2, 4])
    assert "lines 2, 4" in report.warnings[0]


def test_a_malformed_first_line_is_one_bad_line(tmp_path):
    good = json.dumps(_doc([_span("a", "", 0, 10)]))
    path = _write(tmp_path, "{truncated\n\n" + good + "\n")
    with pytest.raises(TraceError, match=r"lines 1\)"):
        read_otlp_json(path)
    frame, report = read_otlp_json(path, keep_going=True)
    assert len(frame) == 1 and report.first_malformed == [1]


def test_gzip_and_single_line_documents(tmp_path):
    gz = tmp_path / "shop.json.gz"
    with open(SPANS / "otlp_shop.json", "rb") as src, gzip.open(gz, "wb") as dst:
        shutil.copyfileobj(src, dst)
    frame, _ = read_otlp_json(gz)
    assert len(frame) == 8
    one_line = _write(tmp_path, json.loads((SPANS / "jaeger_shop.json").read_text()), "one.json")
    assert len(read_jaeger_json(one_line)[0]) == 5


def test_base64_ids_and_legacy_field_names(tmp_path):
    span = _span("a", "", 0, 10)
    span["traceId"] = base64.b64encode(bytes.fromhex("5b8efff798038103d269b633813fc60c")).decode()  # protobuf JSON
    doc = {"resourceSpans": [{"resource": {"attributes": []}, "instrumentationLibrarySpans": [{"spans": [span]}]}]}
    frame, _ = read_otlp_json(_write(tmp_path, doc))
    assert frame["trace_id"].iloc[0] == "5b8efff798038103d269b633813fc60c"
    assert frame["service"].iloc[0] == "unknown_service"


def test_keep_going_in_a_single_document_skips_only_bad_spans(tmp_path):
    doc = _doc([_span("a", "", 0, 10), _span("b", "", 20, 10), _span("c", "", 30, 40)])
    path = _write(tmp_path, doc, indent=2)
    with pytest.raises(TraceError, match=r"1 malformed span\(s\).*spans\[1\]: span b+ ends 0.01 s before"):
        read_otlp_json(path)
    frame, report = read_otlp_json(path, keep_going=True)
    assert len(frame) == 2 and "1 malformed span(s) skipped" in report.warnings[0]


def _span(sid, parent, a_ms, b_ms, *, kind=None, trace="ab" * 16):
    span = {"traceId": trace, "spanId": sid * 16 if len(sid) == 1 else sid,
            "parentSpanId": parent * 16 if len(parent) == 1 else parent, "name": f"op {sid}",
            "startTimeUnixNano": str(T0 + a_ms * MS), "endTimeUnixNano": str(T0 + b_ms * MS)}
    if kind is not None:
        span["kind"] = kind
    return span


def _doc(spans, service="api"):
    return {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
                               "scopeSpans": [{"scope": {}, "spans": spans}]}]}


def _write(tmp_path, doc, name="t.json", indent=None):
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc, indent=indent))
    return path


def _with(**changes):
    span = _span("a", "", 0, 10)
    for k, v in changes.items():
        if v is None:
            del span[k]
        else:
            span[k] = v
    return _doc([span])


@pytest.mark.parametrize("content, message", [
    ("", "empty file"),
    ("\n\n", "empty file"),
    ("{\n  \"resourceSpans\": [\n", r"not valid JSON \(line 3"),
    ("resourceSpans", "not valid JSON"),
    ([1, 2], "expected an object with a 'resourceSpans' list"),
    ({"data": []}, "looks like Jaeger JSON: use read_jaeger_json"),
    ({"resourceSpans": {"a": 1}}, "resourceSpans: expected a list"),
    ({"resourceSpans": [{"resource": [], "scopeSpans": []}]}, r"resourceSpans\[0\].resource: expected an object"),
    ({"resourceSpans": [{"scopeSpans": [{"spans": [7]}]}]}, "span: expected an object"),
    (_with(spanId=None), "no spanId"),
    (_with(traceId="xyz"), "traceId 'xyz' is neither hex nor base64"),
    (_with(traceId="0" * 32), "traceId is all zeros"),
    (_with(spanId=17), "spanId 17 is not a string"),
    (_with(startTimeUnixNano=None), "no startTimeUnixNano"),
    (_with(endTimeUnixNano="soon"), "endTimeUnixNano 'soon' is not a whole number"),
    (_with(endTimeUnixNano="²"), "is not a whole number"),
    (_with(endTimeUnixNano="--5"), "is not a whole number"),
    (_with(startTimeUnixNano="0"), "start or end time missing or out of range"),
    (_with(endTimeUnixNano=str(2**64)), "out of range"),
    (_with(endTimeUnixNano=str(T0 - 1)), "ends 1e-09 s before it starts"),
    (_with(kind=9), "unknown kind 9"),
    (_with(kind=["x"]), "unknown kind"),
    (_with(status={"code": "BAD"}), "unknown status"),
])
def test_bad_otlp_input_raises_trace_error(tmp_path, content, message):
    path = _write(tmp_path, content)
    with pytest.raises(TraceError, match=message) as info:
        read_otlp_json(path)
    assert str(path) in str(info.value)


def test_odd_attributes_are_ignored_not_fatal(tmp_path):
    doc = _with(attributes=[7, {"key": ["x"]}, {"key": "http.status_code", "value": {"stringValue": "teapot"}},
                            {"key": "http.request.body.size", "value": {"boolValue": True}},
                            {"key": "session.id", "value": 5}])
    frame, _ = read_otlp_json(_write(tmp_path, doc))
    assert frame.loc[0, "status"] == 200 and np.isnan(frame.loc[0, "bytes_in"]) and pd.isna(frame.loc[0, "session"])


def _jaeger(**changes):
    span = {"traceID": "ab" * 16, "spanID": "cd" * 8, "operationName": "op", "references": [],
            "startTime": 1700000000000000, "duration": 10, "tags": [], "processID": "p1"}
    span.update(changes)
    return {"data": [{"traceID": "ab" * 16, "spans": [span], "processes": {"p1": {"serviceName": "api"}}}]}


@pytest.mark.parametrize("content, message", [
    ({"resourceSpans": []}, "looks like OTLP JSON: use read_otlp_json"),
    ({"data": {"a": 1}}, "'data': expected a list"),
    ({"data": [5]}, r"data\[0\]: expected an object"),
    (_jaeger(duration=-5), "negative duration"),
    (_jaeger(startTime=None), "no startTime"),
    (_jaeger(startTime=1.5), "startTime 1.5 is not a whole number"),
    (_jaeger(processID="p9"), "no process with a serviceName"),
    (_jaeger(processID=["p1"]), "no process with a serviceName"),
    (_jaeger(spanID=""), "no spanID"),
])
def test_bad_jaeger_input_raises_trace_error(tmp_path, content, message):
    path = _write(tmp_path, content)
    with pytest.raises(TraceError, match=message) as info:
        read_jaeger_json(path)
    assert str(path) in str(info.value)


def test_unreadable_files_raise_trace_error(tmp_path):
    with pytest.raises(TraceError, match="cannot read"):
        read_otlp_json(tmp_path / "missing.json")
    binary = tmp_path / "trace.parquet"
    binary.write_bytes(b"PAR1\xff\xfe\x00\x81")
    with pytest.raises(TraceError, match="not UTF-8"):
        read_otlp_json(binary)
    fake_gz = tmp_path / "t.json.gz"
    fake_gz.write_text("not gzip")
    with pytest.raises(TraceError, match="cannot read"):
        read_jaeger_json(fake_gz)


def test_only_client_spans_is_an_error(tmp_path):
    with pytest.raises(TraceError, match="no server span"):
        read_otlp_json(_write(tmp_path, _doc([_span("a", "", 0, 10, kind=CLIENT)])))


def test_duplicate_spans_are_dropped_with_a_warning(tmp_path):
    frame, report = read_otlp_json(_write(tmp_path, _doc([_span("a", "", 0, 10), _span("a", "", 0, 10)])))
    assert len(frame) == 1 and "repeat a span id" in report.warnings[0]


def test_cycles_raise_trace_error(tmp_path):
    spans = [_span("a", "b", 0, 10, kind=SERVER), _span("b", "a", 0, 10, kind=SERVER)]
    with pytest.raises(TraceError, match="cycle in trace"):
        read_otlp_json(_write(tmp_path, _doc(spans)))
    frame = _frame([("t", "a", "b", "x", 0, 10), ("t", "b", "a", "y", 0, 10)])
    for helper in (exclusive_times, call_graph, root_classes):
        with pytest.raises(TraceError, match="cycle"):
            helper(frame)


def test_server_spans_checks_its_table():
    with pytest.raises(TraceError, match="lacks column"):
        server_spans(pd.DataFrame({"trace_id": ["t"]}))
    with pytest.raises(TraceError, match="lacks trace_id"):
        call_graph(pd.DataFrame({"class": ["x"]}))


def test_a_deep_chain_links_in_few_passes():
    n = 20_000  # one trace, each span the child of the one before, alternating server and client
    ids = [f"{i + 1:016x}" for i in range(n)]
    raw = pd.DataFrame({"trace_id": "ab" * 16, "span_id": ids, "parent_span_id": [None] + ids[:-1],
                        "name": "op", "service": "svc", "kind": [SERVER, CLIENT] * (n // 2),
                        "start_ns": T0 + np.arange(n), "end_ns": T0 + 2 * n - np.arange(n), "error": False,
                        "http_status": None, "bytes_in": np.nan, "bytes_out": np.nan, "session": None, "key": None})
    frame, _ = server_spans(raw)
    assert len(frame) == n // 2
    assert list(frame["parent_id"].iloc[1:3]) == [ids[0], ids[2]]
    assert frame["exclusive_s"].iloc[0] == pytest.approx(2e-9)  # [0, 2n] minus its client child's [1, 2n-1]


JUNK = [None, [], {}, "", "x", "²", -1, 0, 1.5, True, 2**70, [{"key": None}], {"code": []}]


def _mutate(node, rng):
    """Replace one randomly chosen value somewhere in a JSON tree with junk."""
    path = []
    while isinstance(node, (dict, list)) and node and rng.random() < 0.85:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        k = keys[int(rng.integers(len(keys)))]
        path.append((node, k))
        node = node[k]
    if path:
        parent, k = path[-1]
        parent[k] = JUNK[int(rng.integers(len(JUNK)))]


@pytest.mark.parametrize("fixture, reader", [("otlp_shop.json", read_otlp_json), ("jaeger_shop.json", read_jaeger_json)])
def test_damaged_documents_give_frames_or_trace_errors_only(tmp_path, fixture, reader):
    rng = np.random.default_rng(5)
    original = json.loads((SPANS / fixture).read_text())
    for i in range(120):
        doc = json.loads(json.dumps(original))
        for _ in range(int(rng.integers(1, 4))):
            _mutate(doc, rng)
        path = _write(tmp_path, doc, f"d{i}.json", indent=2 if i % 2 else None)
        for keep_going in (False, True):
            try:
                frame, _ = reader(path, keep_going=keep_going)
            except TraceError:
                continue
            assert len(frame) and frame["latency_s"].ge(0).all()
