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
