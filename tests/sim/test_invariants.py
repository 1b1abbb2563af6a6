"""Everything at once (failures interrupting nested held workers, pools, timeouts, retries,
parallel fan-out, caches) must never leak a worker or a connection, nor lose a request."""

import numpy as np
import pytest

from tests.sim.helpers import model
from twin.sim import PoissonArrivals
from twin.sim.engine import _Engine

EXP = lambda mean: {"dist": "exponential", "mean": mean}  # noqa: E731

HOSTILE = model(
    {
        "front": {"instances": 2, "workers": 3, "queue_capacity": 5, "load_balancer": "least_outstanding",
                  "service_time_s": EXP(0.01), "call_mode": "parallel",
                  "pools": {"db": {"target": "db", "size": 2}},
                  "calls": [{"to": "mid", "timeout_s": 0.3, "retries": 2, "backoff": {"initial_s": 0.05}},
                            {"to": "db", "count": 3, "fanout": "parallel"},
                            {"to": "cache", "probability": 0.5}],
                  "failures": {"time_to_failure_s": EXP(20.0), "recovery_rate_per_s": 0.5}},
        "mid": {"instances": 3, "workers": 2, "load_balancer": "random", "service_time_s": EXP(0.05),
                "calls": [{"one_of": {"db": 0.5, "front": 0.1}, "on_error": "ignore"}],
                "failures": {"time_to_failure_s": EXP(10.0), "recovery_rate_per_s": 1.0}},
        # db never fails, so a worker or queue slot it loses is never handed back by a recovery
        "db": {"workers": 4, "queue_capacity": 20, "service_time_s": EXP(0.02)},
    },
    classes={"a": {"share": 0.8, "entry": "front", "payload_bytes": 100, "keys": {"count": 50},
                   "client": {"timeout_s": 2.0, "retries": 1}},
             "b": {"share": 0.2, "entry": "mid"}},
    caches={"cache": {"capacity_bytes": 2000, "backend": "db"}},
    network={"delay_s": EXP(0.001)},
)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_no_leaks_no_lost_requests(seed):
    w = PoissonArrivals(40.0, 300.0).generate(HOSTILE, np.random.default_rng(seed))
    eng = _Engine(HOSTILE, w, np.random.SeedSequence(seed), warmup_s=0.0, drain_s=600.0,
                  sample_interval_s=None, record_spans=True)
    result = eng.run()
    assert eng.in_flight == 0
    status = result.requests.status
    assert not np.any(status == 5)  # nothing left incomplete after a long drain
    names = ("ok", "rejected", "timeout", "error", "unavailable")
    counts = {n: int((status == i).sum()) for i, n in enumerate(names)}
    assert counts["ok"] > 0.3 * len(status) and counts["error"] + counts["unavailable"] > 0 and counts["timeout"] > 0
    # the hard path was taken: processes interrupted at db by a failure upstream
    assert result.services["db"].abandoned > 0
    # let abandoned (timed-out) work finish, then every healthy instance must be idle and whole
    eng.env.run(until=eng.env.now + 200.0)
    for name in HOSTILE.services:
        for inst in eng.nodes[name].instances:
            if inst.up:
                assert inst.free == inst.workers and not inst.waiting, (name, inst.index)
            assert not inst.in_service
            for pool in inst.pools.values():
                assert pool.free == 2 and not pool.waiting, (name, inst.index)
    spans = result.spans.to_frame()
    assert set(spans.request) <= set(range(len(w)))


def test_a_request_holding_two_workers_of_a_failing_instance():
    # s calls itself while holding its worker: one request can hold two workers of the same
    # instance when it fails. Neither may come back after the recovery.
    m = model({"s": {"workers": 4, "service_time_s": EXP(0.05),
                     "calls": [{"to": "s", "probability": 0.5, "on_error": "ignore"}, {"to": "slow"}],
                     "failures": {"time_to_failure_s": EXP(2.0), "recovery_rate_per_s": 5.0}},
               "slow": {"workers": 100, "service_time_s": EXP(1.0)}})
    for seed in range(3):
        w = PoissonArrivals(2.0, 300.0).generate(m, np.random.default_rng(seed))
        eng = _Engine(m, w, np.random.SeedSequence(seed), warmup_s=0.0, drain_s=600.0,
                      sample_interval_s=None, record_spans=False)
        inst = eng.nodes["s"].instances[0]
        seen = []

        def watch():
            while True:
                seen.append(inst.free)
                yield eng.env.timeout(0.01)
        eng.env.process(watch())
        eng.run()
        assert max(seen) <= inst.workers
        assert eng.in_flight == 0


def test_failures_replay_identically():
    m = model({"s": {"instances": 2, "workers": 3, "service_time_s": EXP(0.2),
                     "calls": [{"to": "t", "timeout_s": 0.5, "retries": 2}],
                     "failures": {"time_to_failure_s": EXP(5.0), "recovery_rate_per_s": 1.0}},
               "t": {"workers": 2, "service_time_s": EXP(0.2),
                     "failures": {"time_to_failure_s": EXP(3.0), "recovery_rate_per_s": 2.0}}})
    w = PoissonArrivals(8.0, 200.0).generate(m, np.random.default_rng(0))
    from twin.sim import run_replication
    runs = [run_replication(m, w, seed=5, warmup_s=0.0).requests.latency_s for _ in range(3)]
    assert all(np.array_equal(runs[0], r, equal_nan=True) for r in runs[1:])
