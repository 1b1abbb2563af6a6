"""Calibration recovers known truth: simulate a model, write its trace, calibrate, compare.

Targets (issue 3): recovered mean service times within 5%, the right families and routing, and
a twin whose held-out latency KS statistic is at most 0.05 with p95 within 5%.
"""

import math

import pandas as pd
import pytest
import yaml

from tests.calibrate.synthetic import EPOCH, NGINX, nginx_log, otlp_trace, phased_workload
from tests.conftest import ROOT
from twin.calibrate.calibrate import assess, calibrate
from twin.calibrate.skeleton import load_skeleton
from twin.spec import load_model, validate_model
from twin.traces import read_traces

FIXTURES = ROOT / "models" / "reference"
TRUTH = load_model(FIXTURES / "traced_shop.yaml")


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    path = tmp_path_factory.mktemp("shop") / "trace.jsonl"
    otlp_trace(TRUTH, path, rate_per_s=60, duration_s=1200)
    trace, inputs = read_traces([path])
    cal = calibrate(trace, load_skeleton(FIXTURES / "traced_shop.skeleton.yaml"), inputs=inputs)
    fid, results = assess(cal, replications=5, seed=0)
    return cal.with_fidelity(fid), fid, results


@pytest.mark.slow
def test_service_times_families_and_means(shop):
    cal, _, _ = shop
    expected = {"frontend": "lognormal", "catalog": "gamma", "orders": "exponential", "payments": "weibull",
                "db": "exponential"}
    for name, family in expected.items():
        fit = cal.services[name].pooled
        true = TRUTH.services[name].service_time_s
        assert fit.family == family, (name, fit.describe())
        assert fit.dist.mean() == pytest.approx(true.mean(), rel=0.05), name
        assert math.sqrt(fit.dist.scv() + 1) == pytest.approx(math.sqrt(true.scv() + 1), rel=0.05), name
    hit = cal.model.caches["cache"].hit_time_s
    assert hit.mean() == pytest.approx(TRUTH.caches["cache"].hit_time_s.mean(), rel=0.05)


@pytest.mark.slow
def test_routing_and_structure(shop):
    cal, _, _ = shop
    edges = {(e.caller, e.target): e for e in cal.edges}
    assert set(edges) == {("frontend", "cache"), ("frontend", "orders"), ("catalog", "db"), ("orders", "db"),
                          ("orders", "payments")}
    assert edges[("frontend", "cache")].classes == ("browse",) and edges[("frontend", "cache")].probability == 1
    assert edges[("frontend", "orders")].classes == ("checkout",)
    for key, p in ((("catalog", "db"), 0.5), (("orders", "payments"), 0.8)):
        e = edges[key]
        assert abs(e.probability - p) < 4 * math.sqrt(p * (1 - p) / e.caller_spans), key
    orders = cal.model.services["orders"]
    db_call = next(c for c in orders.calls if c.to == "db")
    assert db_call.count == 2 and db_call.fanout == "sequential" and orders.call_mode == "sequential"
    assert cal.model.services["orders"].instances == 2  # structure comes from the skeleton


@pytest.mark.slow
def test_classes_sizes_keys(shop):
    cal, _, _ = shop
    m = cal.model
    assert set(m.classes) == {"browse", "checkout"}
    n = cal.model.provenance["requests"]["train"]
    assert abs(m.classes["browse"].share - 0.6) < 4 * math.sqrt(0.24 / n)
    browse, checkout = m.classes["browse"].payload_bytes, m.classes["checkout"].payload_bytes
    assert browse.dist == "lognormal" and browse.mean() == pytest.approx(2048, rel=0.05)
    assert checkout.dist == "gamma" and checkout.mean() == pytest.approx(800, rel=0.05)
    assert m.classes["browse"].keys.zipf_exponent == pytest.approx(0.9, abs=0.05)


@pytest.mark.slow
def test_held_out_fidelity_meets_the_targets(shop):
    cal, fid, _ = shop
    assert fid.verdict == "faithful", [r for r in fid.rows if r.passed is False]
    rows = {(r.scope, r.metric): r for r in fid.rows}
    assert rows[("all", "latency KS")].passed and rows[("all", "latency KS")].error <= 0.05
    assert rows[("all", "latency p95 (s)")].passed and rows[("all", "latency p95 (s)")].error <= 0.05
    assert rows[("cache", "cache hit ratio")].error < 0.02
    for s in ("frontend", "orders"):
        assert rows[(s, "utilisation (spans / skeleton workers)")].error < 0.02
    assert cal.model.provenance["fidelity"]["verdict"] == "faithful"


@pytest.mark.slow
def test_calibrated_model_round_trips_through_yaml(shop, tmp_path):
    cal, _, _ = shop
    text = yaml.safe_dump(cal.model.model_dump(by_alias=True, exclude_defaults=True), sort_keys=False)
    again = validate_model(yaml.safe_load(text))
    assert again == cal.model
    prov = again.provenance
    assert {"inputs", "time_range", "service_times", "routing", "classes", "arrivals", "fidelity"} <= set(prov)


SINGLE = {"name": "api", "classes": {"items": {"share": 0.7, "entry": "api"}, "orders": {"share": 0.3, "entry": "api"}},
          "services": {"api": {"workers": 2, "service_time_s": {"dist": "lognormal", "mean": 0.1, "cv": 0.8}}}}


@pytest.mark.slow
def test_latency_only_logs_separate_queueing_from_service(tmp_path):
    truth = validate_model(SINGLE)
    # quiet and busy phases: rho 0.1 and 0.75 on two workers
    phases = [(2.0, 600.0), (15.0, 600.0)] * 6
    log = tmp_path / "access.log"
    run = nginx_log(truth, phased_workload(truth, phases), log)
    skeleton = tmp_path / "skeleton.yaml"
    skeleton.write_text("name: api\nservices:\n  api: {workers: 2}\n")
    trace, inputs = read_traces([log], log_format=NGINX, service="api")
    # the utilisation a metrics system would have recorded, as a cross-check
    ts = run.timeseries
    util = pd.Series(ts.values["api.utilisation"], index=EPOCH + pd.to_timedelta(ts.time_s, unit="s"))
    cal = calibrate(trace, load_skeleton(skeleton), inputs=inputs, max_classes=4, utilisation={"api": util})
    fit = cal.services["api"]
    law = next(n for n in fit.notes if n.startswith("utilisation law"))
    assert float(law.split("mean service time ")[1].split(" s")[0]) == pytest.approx(0.1, rel=0.05)
    assert fit.source == "latency of unqueued requests" and fit.pooled.family == "lognormal"
    assert fit.pooled.dist.mean() == pytest.approx(0.1, rel=0.05)
    # the naive estimate (all latencies) would be far off: queueing in the busy phases
    assert trace["latency_s"].mean() > 0.115
    fid, _ = assess(cal, replications=5, seed=0)
    rows = {(r.scope, r.metric): r for r in fid.rows}
    assert rows[("all", "latency KS")].error <= 0.05
    assert rows[("all", "latency p95 (s)")].error <= 0.05
    assert set(cal.model.classes) == {"GET_items", "POST_orders"}
    assert cal.model.classes["GET_items"].share == pytest.approx(0.7, abs=0.02)


@pytest.mark.slow
def test_a_span_table_in_parquet_calibrates_the_same(shop, tmp_path):
    cal, _, _ = shop
    table = cal.trace.copy()
    table["timestamp"] = table["timestamp"].dt.tz_convert("Europe/Paris")  # zones are kept exact
    path = tmp_path / "spans.parquet"
    table.to_parquet(path)
    trace, _ = read_traces([path])
    skeleton = load_skeleton(FIXTURES / "traced_shop.skeleton.yaml")
    again = calibrate(trace, skeleton)
    for name, fit in cal.services.items():
        assert again.services[name].pooled.dist.mean() == pytest.approx(fit.pooled.dist.mean(), rel=1e-9)
    assert [e.to_dict() for e in again.edges] == [e.to_dict() for e in cal.edges]
    # without the column, only server spans are left to compute it from, and calibration says so
    table.drop(columns=["exclusive_s"]).to_parquet(path)
    trace, _ = read_traces([path])
    assert any("computed from server spans alone" in w for w in calibrate(trace, skeleton).warnings)


@pytest.mark.slow
def test_calibration_holds_under_load(tmp_path):
    # 200 req/s: the frontend holds its workers through its calls and runs near 80% busy, and
    # orders queues. Callee queue waits must not leak into callers' service times, and the twin
    # must be timed as the trace is (from the entry's handler start).
    import numpy as np

    from twin.sim import PoissonArrivals, run_replication
    from twin.traces.export import twin_spans_to_frame

    work = PoissonArrivals(200.0, 500.0).generate(TRUTH, np.random.default_rng(5))
    run = run_replication(TRUTH, work, seed=5, warmup_s=0.0, record_spans=True)
    assert run.services["frontend"].utilisation > 0.7
    path = tmp_path / "loaded.parquet"
    twin_spans_to_frame(run, epoch=EPOCH, workload=work).to_parquet(path)
    trace, inputs = read_traces([path])
    cal = calibrate(trace, load_skeleton(FIXTURES / "traced_shop.skeleton.yaml"), inputs=inputs)
    for name in ("frontend", "orders", "catalog"):
        true = TRUTH.services[name].service_time_s.mean()
        assert cal.services[name].pooled.dist.mean() == pytest.approx(true, rel=0.05), name
    fid, _ = assess(cal, replications=3, seed=0)
    rows = {(r.scope, r.metric): r for r in fid.rows}
    assert rows[("all", "latency KS")].error <= 0.05 and fid.verdict != "not faithful", fid.failures()
