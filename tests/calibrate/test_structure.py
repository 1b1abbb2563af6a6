"""Calibration on structures beyond the reference shop: the skeleton's call settings, exclusive
choices, fan-out vs call mode, rejections, network delay, coarse timestamps, thin data."""

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.calibrate.synthetic import EPOCH
from twin.calibrate.calibrate import assess, calibrate
from twin.calibrate.skeleton import load_skeleton
from twin.sim import PoissonArrivals, run_replication
from twin.spec import validate_model
from twin.traces import read_traces
from twin.traces.export import twin_spans_to_frame

EXP = lambda mean: {"dist": "exponential", "mean": mean}  # noqa: E731


def trace_of(truth: dict, tmp_path, *, rate=40.0, duration=600.0, seed=3):
    model = validate_model(truth)
    work = PoissonArrivals(rate, duration).generate(model, np.random.default_rng(seed))
    run = run_replication(model, work, seed=seed, warmup_s=0.0, record_spans=True)
    path = tmp_path / "trace.parquet"
    twin_spans_to_frame(run, epoch=EPOCH, workload=work).to_parquet(path)
    return read_traces([path])


def skeleton_of(truth: dict, tmp_path, keep_calls=False):
    """The truth without what calibration measures (service times, classes; calls unless kept)."""
    sk = {"name": truth["name"], "services": {}}
    for name, svc in truth["services"].items():
        sk["services"][name] = {k: v for k, v in svc.items()
                                if k not in ("service_time_s", "service_time_s_by_class")
                                and (keep_calls or k != "calls")}
    for key in ("caches", "network"):
        if key in truth:
            sk[key] = truth[key]
    path = tmp_path / "skeleton.yaml"
    path.write_text(yaml.safe_dump(sk))
    return load_skeleton(path)


def test_skeleton_call_settings_and_exclusive_choice_survive(tmp_path):
    truth = {"name": "t", "classes": {"get": {"share": 1.0, "entry": "gw"}},
             "services": {"gw": {"workers": 16, "service_time_s": EXP(0.002),
                                 "calls": [{"one_of": {"a": 0.5, "b": 0.3}},
                                           {"to": "slow", "timeout_s": 0.5, "on_error": "ignore"}]},
                          "a": {"workers": 8, "service_time_s": EXP(0.01)},
                          "b": {"workers": 8, "service_time_s": EXP(0.02)},
                          "slow": {"workers": 8, "service_time_s": EXP(0.03)}}}
    trace, inputs = trace_of(truth, tmp_path)
    cal = calibrate(trace, skeleton_of(truth, tmp_path, keep_calls=True), inputs=inputs)
    calls = cal.model.services["gw"].calls
    choice = next(c for c in calls if c.one_of)
    assert set(choice.one_of) == {"a", "b"}
    assert choice.one_of["a"] == pytest.approx(0.5, abs=0.03) and choice.one_of["b"] == pytest.approx(0.3, abs=0.03)
    slow = next(c for c in calls if c.to == "slow")
    assert slow.timeout_s == 0.5 and slow.on_error == "ignore"
    assert cal.services["gw"].pooled.dist.mean() == pytest.approx(0.002, rel=0.08)


def test_parallel_fan_out_is_not_parallel_calls(tmp_path):
    truth = {"name": "t", "classes": {"get": {"share": 1.0, "entry": "api"}},
             "services": {"api": {"workers": 32, "service_time_s": EXP(0.002),
                                  "calls": [{"to": "auth"}, {"to": "idx", "count": 3, "fanout": "parallel"}]},
                          "auth": {"workers": 16, "service_time_s": EXP(0.005)},
                          "idx": {"workers": 32, "service_time_s": EXP(0.01)}}}
    trace, inputs = trace_of(truth, tmp_path)
    cal = calibrate(trace, skeleton_of(truth, tmp_path), inputs=inputs)
    api = cal.model.services["api"]
    assert api.call_mode == "sequential"
    idx = next(c for c in api.calls if c.to == "idx")
    assert idx.count == 3 and idx.fanout == "parallel"


def test_rejected_requests_do_not_shorten_service_times(tmp_path):
    truth = {"name": "t", "classes": {"get": {"share": 1.0, "entry": "api"}},
             "services": {"api": {"workers": 32, "service_time_s": EXP(0.001), "calls": [{"to": "db"}]},
                          "db": {"workers": 1, "queue_capacity": 4, "service_time_s": EXP(0.02)}}}
    trace, inputs = trace_of(truth, tmp_path, rate=45.0)
    assert trace["error"].mean() > 0.03
    cal = calibrate(trace, skeleton_of(truth, tmp_path), inputs=inputs)
    assert cal.services["db"].pooled.family == "exponential"
    assert cal.services["db"].pooled.dist.mean() == pytest.approx(0.02, rel=0.05)


def test_network_delay_is_not_counted_twice(tmp_path):
    truth = {"name": "t", "classes": {"get": {"share": 1.0, "entry": "api"}},
             "services": {"api": {"workers": 16, "service_time_s": EXP(0.005), "calls": [{"to": "db", "count": 2,
                                                                                            "fanout": "sequential"}]},
                          "db": {"workers": 16, "service_time_s": EXP(0.01)}},
             "network": {"delay_s": {"dist": "deterministic", "value": 0.002}}}
    trace, inputs = trace_of(truth, tmp_path)
    cal = calibrate(trace, skeleton_of(truth, tmp_path), inputs=inputs)
    assert cal.services["api"].pooled.dist.mean() == pytest.approx(0.005, rel=0.06)
    fid, _ = assess(cal, replications=2, seed=0)
    assert fid.verdict != "not faithful", fid.failures()


def test_thin_data_warns_instead_of_failing(tmp_path):
    truth = {"name": "t", "classes": {"get": {"share": 1.0, "entry": "api"}},
             "services": {"api": {"workers": 16, "service_time_s": EXP(0.005), "calls": [{"to": "rare",
                                                                                            "probability": 0.002}]},
                          "rare": {"service_time_s": EXP(0.01)}}}
    trace, inputs = trace_of(truth, tmp_path, rate=20.0, duration=400.0)
    cal = calibrate(trace, skeleton_of(truth, tmp_path), inputs=inputs)
    assert any("rare:" in w and "too few to fit" in w for w in cal.warnings)
    assert cal.model.services["rare"].service_time_s.mean() == 0  # the skeleton's placeholder, said


def test_unseen_held_out_classes_are_left_out_and_counted(tmp_path):
    truth = {"name": "t", "classes": {"get": {"share": 1.0, "entry": "api"}},
             "services": {"api": {"workers": 8, "service_time_s": EXP(0.005)}}}
    trace, inputs = trace_of(truth, tmp_path)
    late = trace["timestamp"] > trace["timestamp"].iloc[-1] - pd.Timedelta(seconds=60)
    trace["class"] = trace["class"].astype(str).where(~late, "NEW /thing").astype("category")
    cal = calibrate(trace, skeleton_of(truth, tmp_path), inputs=inputs, max_classes=1)
    assert "other" not in cal.model.classes
    fid, _ = assess(cal, replications=1, seed=0)
    assert fid.left_out == int(late.sum())


def test_a_skeleton_with_far_too_many_workers_is_flagged(tmp_path):
    truth = {"name": "t", "classes": {"get": {"share": 1.0, "entry": "api"}},
             "services": {"api": {"workers": 4, "service_time_s": EXP(0.02)}}}
    trace, inputs = trace_of(truth, tmp_path, rate=190.0, duration=300.0)
    wrong = {**truth, "services": {"api": {**truth["services"]["api"], "workers": 64}}}
    cal = calibrate(trace, skeleton_of(wrong, tmp_path), inputs=inputs)
    assert any("real capacity looks like 4, the skeleton says 64" in w for w in cal.warnings)
    right = calibrate(trace, skeleton_of(truth, tmp_path), inputs=inputs)
    assert not any("capacity" in w for w in right.warnings)


CLF_D = '%h %l %u %t "%r" %>s %b %D'


def test_one_second_timestamps(tmp_path):
    # an Apache log: arrival to the second (%t), latency in microseconds (%D)
    truth = validate_model({"name": "t", "classes": {"get": {"share": 1.0, "entry": "web"}},
                            "services": {"web": {"workers": 2, "service_time_s": {"dist": "lognormal", "mean": 0.1,
                                                                                    "cv": 0.8}}}})
    phases = [(2.0, 600.0), (14.0, 600.0)] * 4
    from tests.calibrate.synthetic import phased_workload

    run = run_replication(truth, phased_workload(truth, phases), seed=2, warmup_s=0.0)
    req = run.requests
    lines = []
    for i in np.flatnonzero(req.status == 0):
        t = EPOCH + pd.Timedelta(seconds=float(req.arrival_s[i]))
        lines.append(f'10.0.0.1 - - [{t:%d/%b/%Y:%H:%M:%S} +0000] "GET /x HTTP/1.1" 200 100 '
                     f'{int(round(req.latency_s[i] * 1e6))}\n')
    log = tmp_path / "access.log"
    log.write_text("".join(lines))
    skeleton = tmp_path / "s.yaml"
    skeleton.write_text("name: t\nservices:\n  web: {workers: 2}\n")
    trace, inputs = read_traces([log], log_format=CLF_D, service="web")
    assert inputs[0]["time_resolution_s"] == 1.0
    cal = calibrate(trace, load_skeleton(skeleton), inputs=inputs)
    fit = cal.services["web"]
    assert fit.source == "quiet-period latency"
    assert fit.pooled.dist.mean() == pytest.approx(0.1, rel=0.08)
    # replayed with arrivals spread within their second: close; replayed as written (every second's
    # requests at its first instant): KS 0.46 and p50 off by 200% on this trace
    fid, _ = assess(cal, replications=2, seed=0)
    rows = {r.metric: r for r in fid.rows if r.scope == "all"}
    assert rows["latency KS"].error < 0.06 and rows["latency p50 (s)"].error < 0.15
