"""The shortest trustworthy sweep window, from the model's failure, cache-filling and queueing times."""

import math

import numpy as np
import pytest
import yaml

from twin.sim import PoissonArrivals
from twin.spec import SpecError, load_model
from twin.spec.experiment import Sweep
from twin.sweep.window import decide, derive, fill_time, for_load

FAILING = ["services.server.instances=2",
           "services.server.failures={time_to_failure_s: {dist: exponential, mean: 100}, recovery_rate_per_s: 0.1}"]


def test_failures_need_several_cycles_at_the_fewest_instances_the_sweep_may_set(tmp_path):
    m = load_model("models/validation/mm1.yaml", sets=FAILING)
    (p,) = derive(m).processes  # without a load: only what does not depend on it
    assert p.time_s == pytest.approx(110.0) and p.window_s == pytest.approx(3 * 110 / 2)
    assert "'server'" in p.what
    with open("models/validation/mm1.yaml") as f:
        data = yaml.safe_load(f)
    data["tunables"] = {"servers": {"type": "int", "low": 1, "high": 4, "targets": "services.server.instances"}}
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(data))
    swept = load_model(path, sets=FAILING)
    assert derive(swept).processes[0].window_s == pytest.approx(3 * 110)  # one instance: a third of the failures
    assert derive(swept, tunables=[]).processes[0].window_s == pytest.approx(3 * 110 / 2)
    scripted = load_model("models/validation/mm1.yaml", sets=[FAILING[0], FAILING[1].replace("}, ", "}, end_s: 60, ")])
    assert derive(scripted).processes[0].window_s == pytest.approx(70)  # failures only until 60 s, 10 s to recover


def test_fill_time_of_uniform_keys_is_the_coupon_collector_closed_form():
    # N equally likely keys at rate r: E[distinct by t] = N (1 - exp(-r t / N)) = C at t = -N/r ln(1 - C/N)
    assert fill_time(np.ones(1000), 10.0, 500) == pytest.approx(-1000 / 10 * math.log(0.5), rel=1e-6)
    # a space that fits whole: full at 99% of it
    assert fill_time(np.ones(1000), 10.0, 5000) == pytest.approx(-100 * math.log(0.01), rel=1e-6)


def test_cache_fill_time_matches_the_distinct_keys_of_a_real_key_stream():
    m = load_model("models/validation/lru_zipf.yaml", sets=["caches.objects.capacity_bytes=8000KiB"])
    (fill,) = [p for p in derive(m, 200.0).processes if "cache" in p.what]
    capacity = 8000 * 1024 // (1024 + m.caches["objects"].entry_overhead_bytes)
    w = PoissonArrivals(rate_per_s=200.0, duration_s=2 * fill.time_s).generate(m, np.random.default_rng(4))
    distinct = len(np.unique(w.key[w.time_s < fill.time_s]))
    assert distinct == pytest.approx(capacity, rel=0.03)
    assert fill.window_s == pytest.approx(2 * fill.time_s) and fill.warmup_s == pytest.approx(fill.time_s)
    assert not [p for p in derive(m, 200.0, warm_caches=True).processes if "cache" in p.what]


def test_relaxation_time_of_the_bottleneck():
    m = load_model("models/validation/mm1.yaml")  # mu = 10/s
    (p,) = derive(m, 7.0).processes
    assert p.time_s == pytest.approx(1 / (10 * (1 - math.sqrt(0.7)) ** 2))
    assert "utilisation 0.70" in p.what
    assert derive(m, 12.0).processes == ()  # saturated as configured: no steady state to relax to


def test_the_window_policy_warns_lengthens_or_refuses():
    m = load_model("models/validation/mm1.yaml", sets=FAILING)
    need = derive(m, 7.0)
    warn = decide(Sweep(window=60, warmup=10), need, source="e.yaml", label="quiet")
    assert (warn.window_s, warn.warmup_s) == (60, 10)
    assert len(warn.messages) == 1 and "sweep.window (quiet): 60 s is shorter than the 165 s" in warn.messages[0]
    assert "failures of service 'server'" in warn.messages[0]
    longer = decide(Sweep(window=60, warmup=10, window_policy="lengthen"), need, source="e.yaml")
    assert longer.window_s == pytest.approx(165) and longer.warmup_s == 10  # relaxation at rho 0.35: a few seconds
    with pytest.raises(SpecError, match=r"e\.yaml: sweep\.window: .*failures of service 'server'"):
        decide(Sweep(window=60, warmup=10, window_policy="refuse"), need, source="e.yaml")
    assert decide(Sweep(window=200, warmup=10, window_policy="refuse"), need, source="e.yaml").messages == ()
    relax = 1 / (10 * (1 - math.sqrt(0.7)) ** 2)  # 3.75 s: a window of 100 of them, a warm-up of 5
    slow = decide(Sweep(window=60, warmup=10, window_policy="lengthen"), derive(load_model(
        "models/validation/mm1.yaml"), 7.0), source="e.yaml")
    assert slow.window_s == pytest.approx(100 * relax) and slow.warmup_s == pytest.approx(5 * relax)


def test_the_quickstarts_windows_hold_its_failures_and_a_one_minute_window_is_warned():
    from twin.pipeline import load_experiment

    exp = load_experiment("experiments/quickstart.yaml")
    model = load_model(exp.model)
    load = {"requests_per_s": 140.0, "mix_browse": 0.65, "mix_search": 0.27, "mix_checkout": 0.08}
    # 15-minute SLO windows judged one by one (compliance), caches warm: 4 x 900 s hold 3 x 620 s of failures
    assert exp.sweep.window == 900 and exp.sweep.compliance > 0 and exp.sweep.warm_caches
    assert for_load(exp.sweep, model, load, source="quickstart.yaml").messages == ()
    alone = exp.sweep.model_copy(update={"compliance": 0.0})  # means only: one window must hold them
    assert any("failures of service 'search'" in m for m in for_load(alone, model, load, source="q").messages)
    short = exp.sweep.model_copy(update={"window": 60.0, "warmup": 10.0, "warm_caches": False})
    decision = for_load(short, model, load, source="quickstart.yaml", label="quiet")
    assert decision.window_s == 60 and any("failures of service 'search'" in m for m in decision.messages)
    assert any("filling cache 'product_cache'" in m and "sweep.warm_caches: true" in m for m in decision.messages)
    warm = short.model_copy(update={"warm_caches": True, "window_policy": "lengthen", "compliance": 0.0})
    decided = for_load(warm, model, load, source="quickstart.yaml")
    assert decided.window_s == pytest.approx(3 * 620)  # search at its fewest instances (1): three failures


FAILING_MODEL = """name: failing
classes:
  job: {share: 1.0, entry: server}
services:
  server:
    instances: 2
    workers: 4
    service_time_s: {dist: exponential, mean: 0.2}
    failures: {time_to_failure_s: {dist: exponential, mean: 100}, recovery_rate_per_s: 0.1}
tunables:
  workers: {type: int, low: 1, high: 8, targets: services.server.workers}
"""

TINY = """name: tiny
model: failing.yaml
history: {series: load.csv}
sweep: {maximize: [service.server.utilisation], minimize: [], trials: 4, window: 1min, warmup: 10s,
        window_policy: POLICY}
"""


@pytest.fixture
def tiny(tmp_path):
    (tmp_path / "failing.yaml").write_text(FAILING_MODEL)
    (tmp_path / "load.csv").write_text("timestamp,value\n2026-03-02 00:00:00,5\n2026-03-02 01:00:00,6\n")

    def write(policy):
        path = tmp_path / "tiny.yaml"
        path.write_text(TINY.replace("POLICY", policy))
        return path
    return write


def test_twin_run_refuses_a_window_without_failures_before_any_work(tiny, tmp_path):
    from tests.test_cli import twin

    out = tmp_path / "run"
    r = twin("run", tiny("refuse"), "--out", out)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "tiny.yaml: sweep.window: 60 s is shorter than the 165 s that failures of service 'server'" in r.stderr
    assert not out.exists()


def test_a_lengthened_window_is_the_one_the_regimes_trials_face(tiny):
    from twin.pipeline import load_experiment, regime_task
    from twin.sweep.task import Evaluator

    regime = {"name": "quiet", "representative": {"requests_per_s": 5.0}}
    for policy, window in (("warn", 60.0), ("lengthen", 165.0)):
        exp = load_experiment(tiny(policy))
        task = regime_task(exp, load_model(exp.model), regime, 0)
        assert task.sweep.window == pytest.approx(window)
        assert Evaluator(task).workload(0).duration_s == pytest.approx(window)
