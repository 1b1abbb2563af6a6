"""Engine semantics, checked on small cases whose exact outcome is known."""

import numpy as np
import pytest

from tests.sim.helpers import det, fixed, model
from twin.sim import STATUS_NAMES, PoissonArrivals, run_replication, run_replications, summarize
from twin.spec import SpecError

OK, REJECTED, TIMEOUT, ERROR, UNAVAILABLE, INCOMPLETE = range(6)


def run(m, w, **kw):
    kw.setdefault("warmup_s", 0.0)
    return run_replication(m, w, seed=kw.pop("seed", 1), **kw)


def test_same_seed_same_numbers_bit_for_bit():
    m = model({"api": {"workers": 2, "service_time_s": {"dist": "lognormal", "mean": 0.1, "cv": 1.2},
                       "calls": [{"to": "db", "probability": 0.5}]},
               "db": {"service_time_s": {"dist": "exponential", "mean": 0.02}}})
    w = PoissonArrivals(15, 300).generate(m, np.random.default_rng(3))
    a, b = run(m, w, seed=7), run(m, w, seed=7)
    assert np.array_equal(a.requests.latency_s, b.requests.latency_s, equal_nan=True)
    assert a.metrics() == b.metrics()
    c = run(m, w, seed=8)
    assert not np.array_equal(a.requests.latency_s, c.requests.latency_s, equal_nan=True)


def test_replications_do_not_depend_on_process_count():
    m = model({"api": {"workers": 1, "service_time_s": {"dist": "exponential", "mean": 0.05}}})
    src = PoissonArrivals(10, 200)
    one = summarize(run_replications(m, src, replications=3, seed=5, jobs=1, warmup_s=10))
    two = summarize(run_replications(m, src, replications=3, seed=5, jobs=2, warmup_s=10))
    assert one.per_replication.equals(two.per_replication)
    assert len(set(one.per_replication["latency_mean_s"])) == 3  # independent streams


def test_results_are_immutable_and_inputs_untouched():
    m = model({"api": {"service_time_s": 0.01}})
    before = m.model_dump()
    w = fixed(m, [0.0, 1.0])
    r = run(m, w)
    assert m.model_dump() == before
    for arr in (r.requests.latency_s, r.requests.status, w.time_s, r.timeseries.time_s):
        with pytest.raises(ValueError):
            arr[0] = 1
    with pytest.raises(TypeError):
        r.services["api"] = None


def test_service_time_and_network_delay_add_up_exactly():
    m = model({"api": {"service_time_s": det(0.010), "calls": [{"to": "db"}]},
               "db": {"service_time_s": det(0.030)}},
              network={"delay_s": det(0.002), "links": {"api->db": det(0.005)}})
    r = run(m, fixed(m, [0.0, 1.0, 2.0]))
    assert np.allclose(r.requests.latency_s, 0.010 + 2 * 0.005 + 0.030)
    assert r.requests.visited_nodes(int(r.requests.visited[0])) == ("api", "db")


@pytest.mark.parametrize("fanout,expected", [("parallel", 0.1), ("sequential", 0.3)])
def test_fan_out_parallel_or_sequential(fanout, expected):
    m = model({"api": {"service_time_s": 0.0, "calls": [{"to": "db", "count": 3, "fanout": fanout}]},
               "db": {"workers": 3, "service_time_s": det(0.1)}})
    r = run(m, fixed(m, [0.0]))
    assert r.requests.latency_s[0] == pytest.approx(expected)
    assert r.services["db"].completed == 3


@pytest.mark.parametrize("mode,expected", [("parallel", 0.2), ("sequential", 0.3)])
def test_call_mode(mode, expected):
    m = model({"api": {"service_time_s": 0.0, "call_mode": mode, "calls": [{"to": "a"}, {"to": "b"}]},
               "a": {"service_time_s": det(0.1)}, "b": {"service_time_s": det(0.2)}})
    assert run(m, fixed(m, [0.0])).requests.latency_s[0] == pytest.approx(expected)


@pytest.mark.parametrize("hold,second", [(True, 0.6 + 0.6), (False, 0.1 + 0.1 + 0.5)])
def test_worker_held_during_calls_or_not(hold, second):
    # Two requests at once on a one-worker api whose call to db takes 0.5 s (db has room for both):
    # a thread-per-request api makes the second wait for the whole first request.
    m = model({"api": {"service_time_s": det(0.1), "calls_hold_worker": hold, "calls": [{"to": "db"}]},
               "db": {"workers": 2, "service_time_s": det(0.5)}})
    r = run(m, fixed(m, [0.0, 0.0]))
    assert sorted(r.requests.latency_s) == pytest.approx([0.6, second])


def test_full_queue_rejects():
    m = model({"api": {"workers": 1, "queue_capacity": 1, "service_time_s": det(1.0)}})
    r = run(m, fixed(m, [0.0, 0.0, 0.0, 0.0]))
    assert list(r.requests.status) == [OK, OK, REJECTED, REJECTED]
    assert r.metrics()["rejection_rate"] == 0.5
    assert r.services["api"].blocking_probability == 0.5


def test_client_timeout_and_retries_with_backoff():
    m = model({"api": {"workers": 10, "service_time_s": det(2.0)}},
              classes={"get": {"share": 1.0, "entry": "api", "client": {
                  "timeout_s": 1.0, "retries": 2, "backoff": {"initial_s": 0.1, "multiplier": 2, "jitter": "none"}}}})
    r = run(m, fixed(m, [0.0], duration=20))
    assert r.requests.status[0] == TIMEOUT
    assert r.requests.attempts[0] == 3
    assert r.requests.latency_s[0] == pytest.approx(3 * 1.0 + 0.1 + 0.2)
    # every abandoned attempt kept a worker busy until its service ended: wasted work is modelled
    assert r.services["api"].completed == 3
    assert r.services["api"].timeouts == 3


def test_call_timeout_then_success_on_retry():
    # Three calls at once queue at a one-worker db (0.4 s each). The third would finish at 1.2 s,
    # past its 1 s timeout: the caller gives up at 1.0 and retries at once; the abandoned attempt
    # still runs to 1.2 (wasted work), and the retry is served from 1.2 to 1.6.
    m = model({"api": {"workers": 3, "service_time_s": 0.0,
                       "calls": [{"to": "db", "timeout_s": 1.0, "retries": 1,
                                  "backoff": {"initial_s": 0.0, "jitter": "none"}}]},
               "db": {"service_time_s": det(0.4)}})
    r = run(m, fixed(m, [0.0, 0.0, 0.0], duration=10))
    assert list(r.requests.status) == [OK, OK, OK]
    assert r.requests.latency_s == pytest.approx([0.4, 0.8, 1.6])
    db = r.services["db"]
    assert db.timeouts == 1 and db.served == 4


def test_instance_failures_and_recovery():
    # Up 10 s, down 5 s (recovery rate 0.2/s, deterministic), repeating: 30 s down in 100 s.
    m = model({"api": {"workers": 1, "service_time_s": det(1.0),
                       "failures": {"time_to_failure_s": det(10.0), "recovery_rate_per_s": 0.2,
                                    "recovery_time": "deterministic"}}})
    times = np.arange(0.0, 100.0, 0.5)
    r = run(m, fixed(m, times, duration=100.0))
    assert r.metrics()["service.api.availability"] == pytest.approx(0.7)
    status = r.requests.status
    down = ((times % 15) >= 10)
    assert np.all(status[down] == UNAVAILABLE)
    # the request in service when the instance fails gets an error at the moment of failure
    assert np.any(status == ERROR)
    failed = np.flatnonzero(status == ERROR)
    assert np.allclose((r.requests.arrival_s[failed] + r.requests.latency_s[failed]) % 15, 10.0)


def test_faster_recovery_means_higher_availability():
    def availability(rate):
        m = model({"api": {"instances": 3, "workers": 1, "service_time_s": det(0.01),
                           "failures": {"time_to_failure_s": {"dist": "exponential", "mean": 50},
                                        "recovery_rate_per_s": rate}}})
        res = run_replications(m, PoissonArrivals(5, 2000), replications=3, seed=2, warmup_s=0)
        return summarize(res)["service.api.availability"]
    slow, fast = availability(0.02), availability(0.5)
    # closed form for an alternating renewal process: up/(up + down)
    assert slow.contains(50 / (50 + 50)) or abs(slow.mean - 0.5) < 0.08
    assert fast.mean > slow.mean + 0.3


def test_connection_pool_limits_concurrency():
    m = model({"api": {"workers": 4, "service_time_s": 0.0, "pools": {"db": {"target": "db", "size": 1}},
                       "calls": [{"to": "db"}]},
               "db": {"workers": 4, "service_time_s": det(0.1)}})
    r = run(m, fixed(m, [0.0, 0.0, 0.0]))
    assert sorted(r.requests.latency_s) == pytest.approx([0.1, 0.2, 0.3])


def test_round_robin_and_least_outstanding():
    for lb, expected in (("round_robin", [0.5, 0.5, 1.0, 1.0]), ("least_outstanding", [0.5, 0.5, 1.0, 1.0])):
        m = model({"api": {"instances": 2, "workers": 1, "load_balancer": lb, "service_time_s": det(0.5)}})
        r = run(m, fixed(m, [0.0, 0.0, 0.0, 0.0]))
        assert sorted(r.requests.latency_s) == pytest.approx(expected)


def test_cache_hits_emerge_from_the_key_stream():
    m = model({"db": {"service_time_s": det(0.01)}},
              classes={"get": {"share": 1.0, "entry": "c", "payload_bytes": 100, "keys": {"count": 10}}},
              caches={"c": {"capacity_bytes": "1MiB", "backend": "db", "hit_time_s": det(0.001)}})
    keys = np.arange(1000) % 10
    r = run(m, fixed(m, np.arange(1000) * 0.1, keys=keys, sizes=[100] * 1000))
    assert r.caches["c"].hits == 990 and r.caches["c"].entries == 10
    lat = r.requests.latency_s
    assert np.allclose(lat[:10], 0.001 + 0.01) and np.allclose(lat[10:], 0.001)


def test_bigger_cache_higher_hit_ratio_and_lower_latency():
    def summary(capacity):
        m = model({"db": {"workers": 8, "service_time_s": {"dist": "exponential", "mean": 0.02}}},
                  classes={"get": {"share": 1.0, "entry": "c", "payload_bytes": 1000,
                                   "keys": {"count": 5000, "zipf_exponent": 0.9}}},
                  caches={"c": {"capacity_bytes": capacity, "backend": "db", "hit_time_s": det(0.0005)}})
        return summarize(run_replications(m, PoissonArrivals(100, 300), replications=3, seed=4, warmup_s=60))
    small, large = summary("100KiB"), summary("2MiB")
    assert large["cache_hit_ratio"].low > small["cache_hit_ratio"].high
    assert large["latency_mean_s"].high < small["latency_mean_s"].low


def _structure_model(structure, method=None):
    return model({"db": {"workers": 64, "service_time_s": det(0.0)}},
                 classes={"get": {"share": 1.0, "entry": "c", "payload_bytes": 1000, "keys": {"count": 4000}}},
                 caches={"c": {"capacity_bytes": "10MiB", "backend": "db", "data_structure": structure,
                               "structure_cost_s": {"hash": 1e-6, "tree": 1e-6, "list": 1e-6},
                               "serialization_method": method}},
                 serialization={"json": {"encode_s_per_byte": 1e-6, "decode_s_per_byte": 2e-6, "size_ratio": 1.5}})


def test_data_structure_cost_grows_with_live_entries():
    keys = np.arange(8000) % 4000  # second pass: every lookup hits, 4000 live entries
    lat = {}
    for s in ("hash", "tree", "list"):
        m = _structure_model(s)
        r = run(m, fixed(m, np.arange(8000) * 0.01, keys=keys, sizes=[1000] * 8000))
        lat[s] = r.requests.latency_s[-1]
    assert lat["hash"] == pytest.approx(1e-6)
    assert lat["tree"] == pytest.approx(1e-6 * np.log2(4001))
    assert lat["list"] == pytest.approx(1e-6 * 4000 / 2)


def test_serialization_costs_and_stored_size():
    m = _structure_model("hash", "json")
    r = run(m, fixed(m, [0.0, 1.0], keys=[7, 7], sizes=[1000, 1000]))
    miss, hit = r.requests.latency_s
    assert miss == pytest.approx(1e-6 + 1e-6 * 1000 + 1e-6)  # lookup + encode + insert
    assert hit == pytest.approx(1e-6 + 2e-6 * 1000)  # lookup + decode
    assert r.caches["c"].used_bytes == 1500


def test_spans_mirror_the_requests():
    m = model({"api": {"service_time_s": {"dist": "exponential", "mean": 0.01},
                       "calls": [{"to": "db", "probability": 0.5}, {"to": "auth"}]},
               "db": {"service_time_s": {"dist": "exponential", "mean": 0.005}},
               "auth": {"service_time_s": det(0.002)}})
    w = PoissonArrivals(20, 50).generate(m, np.random.default_rng(0))
    r = run(m, w, record_spans=True)
    spans = r.spans.to_frame()
    roots = spans[spans.parent == -1].set_index("request")
    assert len(roots) == len(w)
    assert np.allclose((roots.end_s - roots.arrive_s).sort_index(), r.requests.latency_s)
    children = spans[spans.parent != -1]
    assert set(children.parent) <= set(spans.span)
    assert (children.node == "auth").sum() == len(w)
    assert 0.4 < (children.node == "db").sum() / len(w) < 0.6


def test_cost_is_instance_seconds_and_memory_times_price():
    m = model({"api": {"instances": 3, "service_time_s": 0.0}, "db": {"instances": 2, "service_time_s": 0.0,
                                                                      "price_per_instance_hour": 1.0}},
              classes={"get": {"share": 1.0, "entry": "c", "keys": {"count": 5}}},
              caches={"c": {"capacity_bytes": "2GiB", "backend": "api"}},
              cost={"instance_per_hour": 0.5, "memory_gib_per_hour": 0.25})
    r = run(m, fixed(m, [0.0], duration=3600 + 600), warmup_s=600)
    assert r.cost == pytest.approx(3 * 0.5 + 2 * 1.0 + 2 * 0.25)


def test_warm_up_is_discarded():
    m = model({"api": {"service_time_s": det(0.1)}})
    r = run(m, fixed(m, np.arange(0, 100.0), duration=100.0), warmup_s=50.0)
    assert r.requests.in_window().sum() == 50
    assert r.services["api"].arrivals == 50
    assert r.metrics()["throughput_per_s"] == pytest.approx(1.0)
    assert r.services["api"].busy_s == pytest.approx(50 * 0.1)


def test_unfinished_requests_are_incomplete_not_dropped():
    m = model({"api": {"service_time_s": det(5.0)}})
    r = run(m, fixed(m, [0.0, 9.0], duration=10.0), drain_s=1.0)
    assert list(r.requests.status) == [OK, INCOMPLETE]
    assert np.isnan(r.requests.latency_s[1])
    assert r.metrics()["error_rate"] == 0.5
    assert STATUS_NAMES[INCOMPLETE] == "incomplete"


def test_warm_up_must_fit_the_workload():
    m = model({"api": {"service_time_s": 0.0}})
    with pytest.raises(SpecError, match="warmup_s: expected a warm-up in"):
        run_replication(m, fixed(m, [0.0], duration=10), warmup_s=10)


def test_requests_table_names_classes_statuses_and_paths():
    m = model({"api": {"service_time_s": 0.0, "calls": [{"to": "db", "classes": ["put"]}]},
               "db": {"service_time_s": 0.0}},
              classes={"get": {"share": 0.5, "entry": "api"}, "put": {"share": 0.5, "entry": "api"}})
    r = run(m, fixed(m, [0.0, 1.0], cls=["get", "put"]))
    df = r.requests.to_frame()
    assert list(df["class"]) == ["get", "put"]
    assert list(df["services_visited"]) == ["api", "api;db"]
    assert list(df["status"]) == ["ok", "ok"]


def test_availability_counts_only_the_window():
    # up 10 s, down 100 s, repeating: down [10, 110) and [120, 220); the window [100, 200) holds
    # 10 + 80 = 90 s of it. Counting from t=0 instead would give 190 s down, a negative availability.
    m = model({"api": {"service_time_s": 0.0,
                       "failures": {"time_to_failure_s": det(10.0), "recovery_rate_per_s": 0.01,
                                    "recovery_time": "deterministic"}}})
    r = run(m, fixed(m, [150.0], duration=200.0), warmup_s=100.0)
    assert r.metrics()["service.api.availability"] == pytest.approx(0.1)


def test_utilisation_series_is_exact_per_interval():
    # one worker, a 5 s job every 10 s starting at 0: busy 50% of every 10 s, sampled every 1 s
    m = model({"api": {"service_time_s": det(5.0)}})
    r = run(m, fixed(m, np.arange(0.0, 100.0, 10.0), duration=100.0), sample_interval_s=1.0)
    u = r.timeseries.values["api.utilisation"]
    assert len(u) == 100 and u.max() == pytest.approx(1.0) and u.min() == 0.0
    assert u.mean() == pytest.approx(0.5)
    assert r.services["api"].utilisation == pytest.approx(0.5)


def test_requests_without_a_key_bypass_the_cache():
    m = model({"db": {"service_time_s": det(0.01)}},
              classes={"get": {"share": 0.5, "entry": "c", "keys": {"count": 3}},
                       "scan": {"share": 0.5, "entry": "c"}},
              caches={"c": {"capacity_bytes": "1MiB", "backend": "db"}})
    r = run(m, fixed(m, [0.0, 1.0, 2.0, 3.0], cls=["get", "get", "scan", "scan"], keys=[1, 1, -1, -1]))
    assert r.caches["c"].lookups == 2 and r.caches["c"].hits == 1
    assert r.services["db"].arrivals == 3


def test_replications_in_processes_after_jax_is_loaded_and_errors_cross_processes():
    """With JAX (threads) loaded, workers start from a fork server; results do not change, and a
    user's mistake raised in a worker arrives whole."""
    import importlib
    import pickle

    from twin.sim import PoissonArrivals, run_replications
    from twin.spec import Problem, SpecError, load_model

    importlib.import_module("jax")  # loaded in this process, as the forecaster loads it
    m = load_model("models/validation/mm1.yaml")
    a = run_replications(m, PoissonArrivals(7.0, 100.0), replications=2, jobs=2, warmup_s=10)
    b = run_replications(m, PoissonArrivals(7.0, 100.0), replications=2, jobs=1, warmup_s=10)
    assert all(np.array_equal(x.requests.latency_s, y.requests.latency_s, equal_nan=True) for x, y in zip(a, b))
    assert str(pickle.loads(pickle.dumps(SpecError([Problem("warmup_s", "too long")])))) == "warmup_s: too long"
    with pytest.raises(SpecError, match=r"^warmup_s: expected a warm-up"):
        run_replications(m, PoissonArrivals(7.0, 100.0), replications=2, jobs=2, warmup_s=500)
