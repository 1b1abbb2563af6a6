"""The twin's spans out as OTLP JSON and back in through the reader: with deterministic service
times and no queueing, the exclusive times read back are the service times, exactly, and the call
graph is the model's routing."""

import json

import numpy as np
import pandas as pd
import pytest

from tests.sim.helpers import det, fixed, model
from twin.sim import PoissonArrivals, run_replication
from twin.sim.nodes import OK, REJECTED
from twin.traces.export import twin_spans_to_otlp, write_otlp_json
from twin.traces.schema import TraceError
from twin.traces.spangraph import CLIENT_CALLER, call_graph
from twin.traces.spans import read_otlp_json

EPOCH = pd.Timestamp("2024-05-01 12:00:00", tz="UTC")
MANY = 100_000  # workers: nobody queues, so a span starts when its call arrives

SHOP = model(
    {"api": {"instances": 2, "workers": MANY, "service_time_s": det(0.004),
             "service_time_s_by_class": {"put": det(0.007)},
             "calls": [{"to": "auth"}, {"to": "c", "probability": 0.6},
                       {"to": "db", "probability": 0.3, "count": 2, "classes": ["put"]}]},
     "auth": {"workers": MANY, "service_time_s": det(0.002)},
     "db": {"workers": MANY, "service_time_s": det(0.005)}},
    classes={"get": {"share": 0.7, "entry": "api", "keys": {"count": 3000}},
             "put": {"share": 0.3, "entry": "api", "keys": {"count": 3000}}},
    caches={"c": {"capacity_bytes": "1GiB", "backend": "db", "hit_time_s": det(0.0005)}},
)
SERVICE_TIME_S = {("api", "get"): 0.004, ("api", "put"): 0.007, ("auth", "get"): 0.002, ("auth", "put"): 0.002,
                  ("db", "get"): 0.005, ("db", "put"): 0.005, ("c", "get"): 0.0005, ("c", "put"): 0.0005}


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    work = PoissonArrivals(rate_per_s=50.0, duration_s=120.0).generate(SHOP, np.random.default_rng(11))
    result = run_replication(SHOP, work, seed=11, warmup_s=0.0, record_spans=True)
    doc = twin_spans_to_otlp(result, epoch=EPOCH, workload=work)
    path = write_otlp_json(doc, tmp_path_factory.mktemp("otlp") / "shop.otlp.json.gz", spans_per_line=5000)
    frame, report = read_otlp_json(path)
    return work, result, doc, frame, report


def test_exclusive_times_are_the_service_times(shop):
    _, _, _, frame, report = shop
    assert not report.warnings and report.malformed == 0
    for (service, cls), rows in frame.groupby(["service", "class"], observed=True):
        assert np.abs(rows["exclusive_s"].to_numpy() - SERVICE_TIME_S[service, cls]).max() < 2e-9, (service, cls)
    assert set(frame.groupby(["service", "class"], observed=True).groups) == set(SERVICE_TIME_S)


def test_roots_are_the_requests(shop):
    work, result, _, frame, _ = shop
    roots = frame[frame["parent_id"].isna()]
    index = roots["trace_id"].str[16:].map(lambda h: int(h, 16)).to_numpy()
    assert sorted(index) == list(range(len(work)))
    assert (result.requests.status == OK).all()
    order = np.argsort(index)
    assert np.abs(roots["latency_s"].to_numpy()[order] - result.requests.latency_s).max() < 2e-9
    arrival_ns = EPOCH.value + np.rint(work.time_s * 1e9).astype(np.int64)
    assert (pd.DatetimeIndex(roots["timestamp"]).asi8[order] == arrival_ns).all()
    assert (roots["class"].astype(str).to_numpy()[order] == np.asarray(work.class_names)[work.cls]).all()
    assert (roots["key"].to_numpy()[order] == work.key.astype(str)).all()


def test_call_graph_is_the_models_routing(shop):
    _, result, _, frame, _ = shop
    g = call_graph(frame).set_index(["caller", "callee", "class"])
    for cls in ("get", "put"):
        assert g.loc[(CLIENT_CALLER, "api", cls), "call_probability"] == 1.0
        auth = g.loc[("api", "auth", cls)]
        assert (auth.call_probability, auth.fanout_mean) == (1.0, 1.0)
        cache = g.loc[("api", "c", cls)]
        assert cache.call_probability == pytest.approx(0.6, abs=4 * np.sqrt(0.6 * 0.4 / cache.caller_spans))
    db = g.loc[("api", "db", "put")]
    assert db.call_probability == pytest.approx(0.3, abs=4 * np.sqrt(0.3 * 0.7 / db.caller_spans))
    assert db.fanout_mean == 2.0
    assert ("api", "db", "get") not in g.index
    cache = result.caches["c"]
    assert g.xs(("c", "db"), level=("caller", "callee"))["calls"].sum() == cache.lookups - cache.hits


def test_document_shape(shop):
    _, result, doc, _, _ = shop
    json.dumps(doc)  # plain JSON types only
    resources = {tuple(a["value"]["stringValue"] for a in rs["resource"]["attributes"]) for rs in doc["resourceSpans"]}
    assert resources == {("api", "api-0"), ("api", "api-1"), ("auth", "auth-0"), ("db", "db-0"), ("c", "c-0")}
    spans = [s for rs in doc["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]]
    visits = int((np.asarray(result.spans.columns["kind"]) == 0).sum())
    assert sum(s["kind"] == 2 for s in spans) == visits  # a server span per visit
    assert sum(s["kind"] == 3 for s in spans) == visits - len(result.requests)  # a client span per call
    span = next(s for s in spans if s["kind"] == 2)
    assert len(span["traceId"]) == 32 and len(span["spanId"]) == 16 and span["kind"] == 2
    assert int(span["endTimeUnixNano"]) >= int(span["startTimeUnixNano"]) > EPOCH.value
    assert sum(s["parentSpanId"] == "" for s in spans) == len(result.requests)
    cache_span = next(s for rs in doc["resourceSpans"] if rs["resource"]["attributes"][0]["value"]["stringValue"] == "c"
                      for s in rs["scopeSpans"][0]["spans"] if s["kind"] == 2)
    assert {a["key"] for a in cache_span["attributes"]} == {"twin.class", "twin.key"}  # no HTTP status on a cache


def test_network_delay_and_pool_waits_are_not_the_callers_time(tmp_path):
    # the client span covers the pool wait, the delay there and back, the callee's queue: the
    # caller's exclusive time is its own 4 ms, as the model says
    m = model({"api": {"workers": MANY, "service_time_s": det(0.004), "calls": [{"to": "db"}],
                       "pools": {"db": {"target": "db", "size": 1}}},
               "db": {"workers": 1, "service_time_s": det(0.005)}}, network={"delay_s": det(0.001)})
    frame = _round_trip(m, fixed(m, np.repeat(np.arange(10) * 0.1, 3)), tmp_path / "t.json")
    ex = frame.groupby("service", observed=True)["exclusive_s"].agg(["min", "max"])
    assert ex.loc["api"].tolist() == pytest.approx([0.004, 0.004], abs=2e-9)
    assert ex.loc["db"].tolist() == pytest.approx([0.005, 0.005], abs=2e-9)


def test_failed_visits_become_error_spans(tmp_path):
    m = model({"api": {"workers": MANY, "service_time_s": det(0.001), "calls": [{"to": "db"}]},
               "db": {"workers": 1, "queue_capacity": 0, "service_time_s": det(0.05)}})
    work = fixed(m, np.arange(40) * 0.01)
    result = run_replication(m, work, seed=1, warmup_s=0.0, record_spans=True)
    rejected = int((result.requests.status == REJECTED).sum())
    assert rejected > 10
    doc = twin_spans_to_otlp(result, epoch=EPOCH)
    statuses = [s["status"] for rs in doc["resourceSpans"] for s in rs["scopeSpans"][0]["spans"] if s["kind"] == 2]
    assert statuses.count({"code": 2, "message": "rejected"}) == 2 * rejected  # at db, and api passing it on
    frame, _ = read_otlp_json(write_otlp_json(doc, tmp_path / "t.json"))
    failed = frame[frame["error"]]
    assert len(failed) == 2 * rejected and set(failed["status"]) == {503}
    assert (failed.loc[failed["service"] == "db", "latency_s"] == 0).all()


def test_service_of_renames_nodes_and_runs_get_their_own_trace_ids():
    m = model({"api": {"service_time_s": det(0.001)}})
    work = fixed(m, [0.0, 1.0])
    a = run_replication(m, work, seed=1, warmup_s=0.0, record_spans=True)
    b = run_replication(m, work, seed=2, warmup_s=0.0, record_spans=True)
    doc_a = twin_spans_to_otlp(a, epoch=EPOCH, service_of={"api": "frontend"})
    doc_b = twin_spans_to_otlp(b, epoch=EPOCH, service_of=str.upper)
    assert doc_a["resourceSpans"][0]["resource"]["attributes"][0]["value"] == {"stringValue": "frontend"}
    assert doc_b["resourceSpans"][0]["resource"]["attributes"][0]["value"] == {"stringValue": "API"}
    ids = [s["traceId"] for d in (doc_a, doc_b) for s in d["resourceSpans"][0]["scopeSpans"][0]["spans"]]
    assert len(set(ids)) == 4 and ids[0].endswith("0" * 16) and ids[1].endswith("0" * 15 + "1")


def test_batched_and_single_line_files_read_the_same(tmp_path):
    m = model({"api": {"workers": MANY, "service_time_s": det(0.002), "calls": [{"to": "db", "probability": 0.5}]},
               "db": {"workers": MANY, "service_time_s": det(0.001)}})
    work = PoissonArrivals(rate_per_s=20.0, duration_s=10.0).generate(m, np.random.default_rng(2))
    doc = twin_spans_to_otlp(run_replication(m, work, seed=2, warmup_s=0.0, record_spans=True), epoch=EPOCH)
    one = write_otlp_json(doc, tmp_path / "one.json", spans_per_line=None)
    many = write_otlp_json(doc, tmp_path / "many.jsonl", spans_per_line=7)
    n_spans = sum(len(ss["spans"]) for rs in doc["resourceSpans"] for ss in rs["scopeSpans"])
    assert len(one.read_text().splitlines()) == 1
    assert len(many.read_text().splitlines()) == -(-n_spans // 7)
    pd.testing.assert_frame_equal(read_otlp_json(one)[0], read_otlp_json(many)[0])
    gz = [write_otlp_json(doc, tmp_path / f"{i}.json.gz").read_bytes() for i in range(2)]
    assert gz[0] == gz[1]  # reproducible bytes


def test_mistakes_raise_trace_error(tmp_path):
    m = model({"api": {"service_time_s": det(0.001)}})
    work = fixed(m, [0.0])
    plain = run_replication(m, work, seed=1, warmup_s=0.0)
    with pytest.raises(TraceError, match="record_spans=True"):
        twin_spans_to_otlp(plain, epoch=EPOCH)
    spans = run_replication(m, work, seed=1, warmup_s=0.0, record_spans=True)
    with pytest.raises(TraceError, match="needs a time zone"):
        twin_spans_to_otlp(spans, epoch=pd.Timestamp("2024-05-01"))
    with pytest.raises(TraceError, match="is not a time"):
        twin_spans_to_otlp(spans, epoch="noon-ish")
    with pytest.raises(TraceError, match="service_of gave"):
        twin_spans_to_otlp(spans, epoch=EPOCH, service_of=lambda name: "")
    with pytest.raises(TraceError, match="the workload has 2 requests"):
        twin_spans_to_otlp(spans, epoch=EPOCH, workload=fixed(m, [0.0, 0.5]))
    with pytest.raises(TraceError, match="cannot write"):
        write_otlp_json({"resourceSpans": []}, tmp_path / "no" / "such" / "dir.json")
    with pytest.raises(TraceError, match="spans_per_line"):
        write_otlp_json({"resourceSpans": []}, tmp_path / "x.json", spans_per_line=0)


def _round_trip(m, work, path):
    result = run_replication(m, work, seed=1, warmup_s=0.0, record_spans=True)
    return read_otlp_json(write_otlp_json(twin_spans_to_otlp(result, epoch=EPOCH), path))[0]


def test_frame_export_equals_the_otlp_round_trip(tmp_path):
    import numpy as np
    import pandas as pd

    from twin.sim import PoissonArrivals, run_replication
    from twin.spec import load_model
    from twin.traces.export import twin_spans_to_frame, twin_spans_to_otlp, write_otlp_json
    from twin.traces.spans import read_otlp_json

    model = load_model("models/reference/traced_shop.yaml")
    work = PoissonArrivals(20.0, 60.0).generate(model, np.random.default_rng(3))
    result = run_replication(model, work, seed=3, warmup_s=0.0, record_spans=True)
    epoch = pd.Timestamp("2026-02-01T00:00:00Z")
    direct = twin_spans_to_frame(result, epoch=epoch, workload=work)
    path = write_otlp_json(twin_spans_to_otlp(result, epoch=epoch, workload=work), tmp_path / "t.jsonl")
    read, _ = read_otlp_json(path)
    key = ["trace_id", "span_id"]
    a = direct.sort_values(key, ignore_index=True)
    b = read.sort_values(key, ignore_index=True)
    for column in ("timestamp", "service", "latency_s", "exclusive_s", "parent_id", "error", "status", "key",
                   "bytes_in"):
        left, right = a[column], b[column]
        if column in ("service",):
            left, right = left.astype(str), right.astype(str)
        if column in ("latency_s", "exclusive_s", "bytes_in"):
            assert np.allclose(left.to_numpy(dtype=float), right.to_numpy(dtype=float), atol=1e-9, equal_nan=True)
        else:
            assert left.equals(right), column


def test_a_trace_split_over_files_is_linked_across_them(tmp_path):
    import numpy as np
    import pandas as pd

    from twin.sim import PoissonArrivals, run_replication
    from twin.spec import load_model
    from twin.traces import read_traces
    from twin.traces.export import twin_spans_to_otlp, write_otlp_json

    model = load_model("models/reference/traced_shop.yaml")
    work = PoissonArrivals(20.0, 60.0).generate(model, np.random.default_rng(4))
    result = run_replication(model, work, seed=4, warmup_s=0.0, record_spans=True)
    doc = twin_spans_to_otlp(result, epoch=pd.Timestamp("2026-02-01T00:00:00Z"), workload=work)
    whole = write_otlp_json(doc, tmp_path / "whole.jsonl")

    def service(rs):
        return rs["resource"]["attributes"][0]["value"]["stringValue"]
    front = {"resourceSpans": [rs for rs in doc["resourceSpans"] if service(rs) == "frontend"]}
    rest = {"resourceSpans": [rs for rs in doc["resourceSpans"] if service(rs) != "frontend"]}
    parts = [write_otlp_json(front, tmp_path / "frontend.jsonl"), write_otlp_json(rest, tmp_path / "rest.jsonl")]
    one, _ = read_traces([whole])
    two, inputs = read_traces(parts)
    key = ["trace_id", "span_id"]
    a, b = one.sort_values(key, ignore_index=True), two.sort_values(key, ignore_index=True)
    assert a["parent_id"].equals(b["parent_id"]) and np.allclose(a["exclusive_s"], b["exclusive_s"])
    assert int(two["parent_id"].isna().sum()) == len(work) and len(inputs) == 2
