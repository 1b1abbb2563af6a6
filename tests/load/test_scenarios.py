"""Edge cases: each one's effect on the load and on the twin, composition, and clear errors."""

import numpy as np
import pytest

from tests.conftest import MODELS
from twin.load import scenarios
from twin.sim import PoissonArrivals, run_replication
from twin.spec import SpecError, load_model


@pytest.fixture(scope="module")
def shop():
    return load_model(MODELS / "reference" / "shop.yaml")


def base(model, rate=40.0, duration=1200.0, seed=0):
    return PoissonArrivals(rate, duration).generate(model, np.random.default_rng(seed))


def applied(shop, cases, w=None, seed=1):
    return scenarios.apply(scenarios.parse(cases), shop, base(shop) if w is None else w, np.random.default_rng(seed))


def test_flash_crowd_multiplies_the_load_in_its_window_and_queues_build(shop):
    w0 = base(shop)
    model, w = applied(shop, [{"kind": "flash_crowd", "at": "600s", "factor": 5, "rise": "10s", "hold": "120s",
                               "fall": "10s", "classes": ["browse"]}], w0)
    per_s = lambda x, a, b: ((x.time_s >= a) & (x.time_s < b)).sum() / (b - a)  # noqa: E731
    assert abs(per_s(w, 620, 730) / per_s(w0, 620, 730) - 5) < 0.5
    assert abs(per_s(w, 0, 590) / per_s(w0, 0, 590) - 1) < 0.01  # before it: untouched
    added = np.array(w.class_names)[w.cls[(w.time_s >= 620) & (w.time_s < 730)]]
    assert (added == "browse").mean() > 0.9
    # on an M/M/1 at 50% busy, a crowd of 3x for two minutes overloads it: the queue builds
    mm1 = load_model(MODELS / "validation" / "mm1.yaml")
    w0 = PoissonArrivals(5.0, 900.0).generate(mm1, np.random.default_rng(0))
    m, w = scenarios.apply(scenarios.parse([{"kind": "flash_crowd", "at": "300s", "factor": 3, "hold": "120s"}]),
                           mm1, w0, np.random.default_rng(1))
    calm = run_replication(mm1, w0, seed=3, warmup_s=60).metrics()
    crowd = run_replication(m, w, seed=3, warmup_s=60).metrics()
    assert crowd["latency_p99_s"] > 5 * calm["latency_p99_s"]


def test_ramp_up_and_down(shop):
    _, up = applied(shop, [{"kind": "ramp", "start": "300s", "end": "900s", "factor": 3}])
    _, down = applied(shop, [{"kind": "ramp", "start": "300s", "end": "900s", "factor": 0.25}])
    w0 = base(shop)
    late = lambda x: ((x.time_s >= 900)).sum()  # noqa: E731
    assert abs(late(up) / late(w0) - 3) < 0.2
    assert abs(late(down) / late(w0) - 0.25) < 0.05


def test_large_uploads_multiply_the_tail_of_sizes(shop):
    w0 = base(shop)
    _, w = applied(shop, [{"kind": "large_uploads", "share": 0.1, "factor": 50, "classes": ["checkout"]}], w0)
    checkout = np.array(w.class_names)[w.cls] == "checkout"
    grown = w.size_bytes != w0.size_bytes
    assert grown[~checkout].sum() == 0 and abs(grown[checkout].mean() - 0.1) < 0.03
    assert np.quantile(w.size_bytes[checkout], 0.99) > 10 * np.quantile(w0.size_bytes[checkout], 0.99)


def test_heavy_queries_shift_the_mix_not_the_volume(shop):
    w0 = base(shop)
    _, w = applied(shop, [{"kind": "heavy_queries", "to": "search", "share": 0.5, "start": "600s"}], w0)
    assert len(w) == len(w0)
    share = lambda x, m: (np.array(x.class_names)[x.cls[m]] == "search").mean()  # noqa: E731
    after = w.time_s >= 600
    assert abs(share(w, ~after) - share(w0, ~after)) < 1e-12
    assert abs(share(w, after) - (0.27 + 0.5 * 0.73)) < 0.03


def test_retry_storm_raises_the_offered_load(shop):
    w = base(shop, rate=60.0, duration=600.0)
    model, _ = scenarios.apply(scenarios.parse([{"kind": "retry_storm", "timeout": "30ms", "retries": 3}]), shop, w,
                               np.random.default_rng(0))
    assert model.classes["browse"].client.retries == 3
    calm = run_replication(shop, w, seed=2, warmup_s=30).requests
    storm = run_replication(model, w, seed=2, warmup_s=30).requests
    assert calm.attempts.mean() == 1.0 and storm.attempts.mean() > 1.3  # every retry is offered load again


def test_slow_dependency_and_instance_failure_hurt(shop):
    w = base(shop, rate=30.0, duration=900.0)
    slow, _ = scenarios.apply(scenarios.parse([{"kind": "slow_dependency", "service": "catalog", "factor": 5}]),
                              shop, None, np.random.default_rng(0))
    assert slow.services["catalog"].service_time_s.mean() == pytest.approx(5 * shop.services["catalog"].service_time_s.mean())
    broken, _ = scenarios.apply(scenarios.parse([{"kind": "instance_failure", "service": "catalog",
                                                  "mean_time_to_failure": "60s", "recovery_rate": 0.02}]),
                                shop, None, np.random.default_rng(0))
    calm = run_replication(shop, w, seed=4, warmup_s=60).metrics()
    assert run_replication(slow, w, seed=4, warmup_s=60).metrics()["latency_p95_s"] > calm["latency_p95_s"]
    assert run_replication(broken, w, seed=4, warmup_s=60).metrics()["error_rate"] > calm["error_rate"]


def test_slow_dependency_and_instance_failure_in_a_window():
    """On an M/M/1 at 40% busy: a 3x slowdown in [300, 600) s pushes it to 120% there, so waits
    grow inside the window and are back to M/M/1 after the backlog drains; failures declared for
    [200, 400) s take the instance down only then."""
    mm1 = load_model(MODELS / "validation" / "mm1.yaml")
    rate = 0.4 / mm1.services["server"].service_time_s.mean()
    w = PoissonArrivals(rate, 1200.0).generate(mm1, np.random.default_rng(0))
    slow, _ = scenarios.apply(scenarios.parse([{"kind": "slow_dependency", "service": "server", "factor": 3,
                                                "start": "300s", "end": "600s"}]), mm1, None, np.random.default_rng(0))
    assert slow.services["server"].service_time_s == mm1.services["server"].service_time_s
    r = run_replication(slow, w, seed=2, warmup_s=0).requests
    mean = lambda a, b: np.nanmean(r.latency_s[(r.arrival_s >= a) & (r.arrival_s < b)])  # noqa: E731
    quiet = mm1.services["server"].service_time_s.mean() / (1 - 0.4)
    assert mean(450, 600) > 5 * quiet
    assert mean(0, 300) < 1.6 * quiet and mean(1000, 1200) < 1.6 * quiet

    broken, _ = scenarios.apply(scenarios.parse([{"kind": "instance_failure", "service": "server",
                                                  "mean_time_to_failure": "20s", "recovery_rate": 0.2,
                                                  "start": "200s", "end": "400s"}]), mm1, None,
                                np.random.default_rng(0))
    res = run_replication(broken, w, seed=2, warmup_s=0)
    up, t = res.timeseries.values["server.instances_up"], res.timeseries.time_s
    assert up[t < 200].min() == 1 and up[t >= 500].min() == 1  # a recovery takes 5 s on average
    assert up[(t >= 200) & (t < 400)].min() == 0


def test_same_seed_same_workload_and_edits_compose(shop):
    cases = [{"kind": "flash_crowd", "at": "100s", "factor": 3}, {"kind": "large_uploads", "share": 0.2, "factor": 4}]
    _, a = applied(shop, cases, seed=5)
    _, b = applied(shop, cases, seed=5)
    assert np.array_equal(a.time_s, b.time_s) and np.array_equal(a.size_bytes, b.size_bytes)


@pytest.mark.parametrize("cases,message", [
    ([{"kind": "tsunami"}], "scenarios[0].kind: expected one of flash_crowd"),
    ([{"kind": "flash_crowd", "at": 10, "factor": 0.5}], "scenarios[0].factor"),
    ([{"kind": "ramp", "start": 0, "end": 60, "factor": 2, "speed": 1}], "scenarios[0].speed: unknown field"),
    ([{"kind": "slow_dependency", "service": "nosuch", "factor": 2}], "unknown service 'nosuch'"),
    ([{"kind": "instance_failure", "service": "catalog", "mean_time_to_failure": 60, "recovery_rate": 1,
       "start": "10min", "end": "5min"}], "scenarios[0].end: expected an end after the start (600 s), got 300 s"),
    ([{"kind": "retry_storm", "timeout": "1s"}, {"kind": "retry_storm", "timeout": "2s", "classes": ["browse"]}],
     "sets classes.browse.client, which scenarios[0] (retry_storm) also sets"),
    ([{"kind": "heavy_queries", "to": "search", "share": 0.2, "start": 0, "end": 100},
      {"kind": "heavy_queries", "to": "checkout", "share": 0.2, "start": 50, "end": 200}], "overlapping window"),
])
def test_bad_scenarios_are_named(shop, cases, message):
    with pytest.raises(SpecError) as e:
        scenarios.apply(scenarios.parse(cases), shop, base(shop, duration=300.0), np.random.default_rng(0))
    assert message in str(e.value)
