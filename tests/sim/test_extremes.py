"""The engine at the edges: windows of any length, work that is held and never done."""

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.sim.helpers import det, fixed, model
from twin.sim import run_replication, summarize


def run(m, w, **kw):
    kw.setdefault("warmup_s", 0.0)
    return run_replication(m, w, seed=1, **kw)


@pytest.mark.parametrize("duration", [0.9, 1.8, 20 / 3, 6.9])
def test_any_window_length_gives_one_utilisation_bin_per_sample(duration):
    # end / (end / 200) rounds to 199.99..: the utilisation bins and the samples once disagreed
    # (200 against 201) and the run died in a broadcast; a sweep's partial window hit it
    m = model({"api": {"service_time_s": det(0.001)}})
    r = run(m, fixed(m, [0.1, 0.5], duration=duration))
    u = r.timeseries.values["api.utilisation"]
    assert len(u) == len(r.timeseries.time_s) == 200
    assert r.timeseries.time_s[-1] < duration


def _self_calling(**service):
    return model({"api": {"workers": 2, "service_time_s": det(0.1), "calls": [{"to": "api", "probability": 0.5}],
                          **service}})


def test_a_deadlock_holds_every_worker_busy_and_says_so():
    # each visit calls api again half the time while holding its worker: once both workers wait
    # for a child queued behind them, nothing ever completes
    m = _self_calling()
    r = run(m, fixed(m, np.arange(0.0, 20.0, 0.5), duration=20.0))
    assert r.services["api"].utilisation > 0.9  # held workers are busy, not idle
    assert r.timeseries.values["api.utilisation"][-10:].min() == pytest.approx(1.0)
    assert r.metrics()["throughput_per_s"] < 0.1
    (warning,) = r.warnings
    assert "service 'api': all 2 workers held" in warning and "api -> api" in warning and "deadlock" in warning
    summary = summarize([r, r])
    assert summary.warnings == (warning + " (replication 0; 2 of 2 replications)",)
    assert summary.to_dict()["warnings"] == list(summary.warnings)


def test_a_call_timeout_is_a_way_out_and_a_healthy_busy_run_has_no_warning():
    m = _self_calling(calls=[{"to": "api", "probability": 0.5, "timeout_s": 1.0}])
    r = run(m, fixed(m, np.arange(0.0, 20.0, 0.5), duration=20.0))
    assert r.warnings == ()
    # saturated but moving: one worker, 5 s jobs every 4 s (a queue that grows and drains)
    m = model({"api": {"service_time_s": det(5.0)}})
    r = run(m, fixed(m, np.arange(0.0, 40.0, 4.0), duration=40.0), drain_s=100.0)
    assert r.warnings == () and r.services["api"].utilisation == pytest.approx(1.0)


def test_in_flight_work_counts_towards_utilisation():
    # one 30 s job from t=0 in a 10 s window with no drain: busy all of it
    m = model({"api": {"service_time_s": det(30.0)}})
    r = run(m, fixed(m, [0.0], duration=10.0), drain_s=0.0)
    assert r.services["api"].utilisation == pytest.approx(1.0)
    assert r.timeseries.values["api.utilisation"] == pytest.approx(np.ones(200))
    assert r.warnings == ()  # no drain: a long job at the end is not a stall


def test_simulate_reports_a_deadlock_and_exits_1(tmp_path):
    path = tmp_path / "loop.yaml"
    path.write_text("name: loop\nclasses: {get: {share: 1, entry: api}}\nservices:\n"
                    "  api: {workers: 2, service_time_s: 0.1, calls: [{to: api, probability: 0.5}]}\n")
    out = subprocess.run([sys.executable, "-m", "twin", "simulate", str(path), "--rate", "5", "--duration", "20",
                          "--warmup", "0", "--replications", "1", "--json"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1, out.stderr
    assert "warning: service 'api': all 2 workers held" in out.stderr and "Traceback" not in out.stderr
    assert json.loads(out.stdout)["warnings"]
