"""The closed forms themselves, against textbook values and each other."""

import math

import numpy as np
import pytest

from tests.sim.helpers import model
from twin.validation import NotAnalytic, che_hit_ratio, erlang_b, erlang_c, mg1, mm1_sojourn_quantile, mmc, mmck, predict


def test_erlang_textbook_values():
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)
    assert erlang_b(1, 1.0) == pytest.approx(0.5)
    assert erlang_b(10, 5.0) == pytest.approx(0.018385, abs=1e-6)  # Erlang B table
    with pytest.raises(ValueError, match="unstable"):
        erlang_c(2, 2.0)


def test_mmc_with_one_server_is_mm1():
    q = mmc(7.0, 10.0, 1)
    assert q.wait_mean_s == pytest.approx(0.7 / 3)
    assert q.sojourn_mean_s == pytest.approx(1 / 3)
    assert q.wait_probability == pytest.approx(0.7)


def test_pk_with_exponential_service_is_mm1():
    q = mg1(7.0, 0.1, 2 * 0.1**2)
    assert q.wait_mean_s == pytest.approx(mmc(7.0, 10.0, 1).wait_mean_s)
    # M/D/1 waits half as long as M/M/1
    assert mg1(7.0, 0.1, 0.01).wait_mean_s == pytest.approx(q.wait_mean_s / 2)


def test_mmck_limits():
    big = mmck(3.0, 1.0, 4, 400)
    small = mmc(3.0, 1.0, 4)
    assert big.wait_mean_s == pytest.approx(small.wait_mean_s, rel=1e-9)
    assert big.blocking_probability < 1e-12
    loss = mmck(3.0, 1.0, 4, 4)
    assert loss.blocking_probability == pytest.approx(erlang_b(4, 3.0))
    assert loss.wait_mean_s == 0


def test_mm1_quantiles():
    assert mm1_sojourn_quantile(7, 10, 0.5) == pytest.approx(math.log(2) / 3)


def test_che():
    uniform = np.ones(1000)
    assert che_hit_ratio(uniform, 250) == pytest.approx(0.25, rel=1e-9)
    zipf = np.arange(1, 5001) ** -0.9
    ratios = [che_hit_ratio(zipf, c) for c in (10, 100, 1000, 4999)]
    assert ratios == sorted(ratios) and ratios[0] > 10 / 5000
    assert che_hit_ratio(zipf, 5000) == 1.0


def test_predict_refuses_what_it_cannot_answer():
    base = {"api": {"workers": 2, "service_time_s": {"dist": "exponential", "mean": 0.1}, "calls": [{"to": "db"}]},
            "db": {"service_time_s": {"dist": "exponential", "mean": 0.05}}}
    with pytest.raises(NotAnalytic, match="holds its worker"):
        predict(model(base), 5.0)
    base["api"]["calls_hold_worker"] = False
    assert any(c.metric == "latency_mean_s" for c in predict(model(base), 5.0))
    base["db"]["service_time_s"] = {"dist": "lognormal", "mean": 0.05, "cv": 2}
    with pytest.raises(NotAnalytic, match="lone M/G/1"):
        predict(model(base), 5.0)
    with pytest.raises(NotAnalytic, match="unstable"):
        predict(model({"api": {"service_time_s": {"dist": "exponential", "mean": 1.0}}}), 2.0)


def test_feedback_keeps_only_what_stays_exact():
    fb = {"s": {"service_time_s": {"dist": "exponential", "mean": 0.05}, "calls_hold_worker": False,
                "calls": [{"to": "s", "probability": 0.3}]}}
    checks = {c.metric: c for c in predict(model(fb), 5.0)}
    # Jackson still holds: lambda = 5 / 0.7 at the node, E[T] = visits x W
    assert checks["service.s.utilisation"].expected == pytest.approx(5 / 0.7 * 0.05)
    assert "service.s.sojourn_mean_s" in checks and "latency_p50_s" not in checks
    assert checks["latency_mean_s"].expected == pytest.approx(checks["service.s.sojourn_mean_s"].expected / 0.7)
    for service_time in ({"dist": "deterministic", "value": 0.05}, {"dist": "empirical", "samples": [0.04, 0.06]}):
        fb["s"]["service_time_s"] = service_time
        with pytest.raises(NotAnalytic, match="without feedback"):
            predict(model(fb), 5.0)
    fb["s"]["service_time_s"] = {"dist": "exponential", "mean": 0.05}
    fb["s"]["queue_capacity"] = 3
    with pytest.raises(NotAnalytic, match="feedback"):
        predict(model(fb), 5.0)


def test_percentiles_follow_the_class_service_time():
    m = model({"s": {"service_time_s": {"dist": "exponential", "mean": 1.0},
                     "service_time_s_by_class": {"get": {"dist": "exponential", "mean": 0.1}}}})
    checks = {c.metric: c.expected for c in predict(m, 7.0)}
    assert checks["latency_p50_s"] == pytest.approx(math.log(2) / 3)


def test_empirical_lone_node_is_pollaczek_khinchine():
    m = model({"s": {"service_time_s": {"dist": "empirical", "samples": [0.05, 0.15]}}})
    checks = {c.metric: c.expected for c in predict(m, 5.0)}
    assert checks["service.s.wait_mean_s"] == pytest.approx(5 * 0.0125 / (2 * 0.5))


def test_che_needs_one_key_space():
    two = model({"db": {"service_time_s": 0.001}},
                classes={"a": {"share": 0.5, "entry": "c", "payload_bytes": 10, "keys": {"count": 100}},
                         "b": {"share": 0.5, "entry": "c", "payload_bytes": 10, "keys": {"count": 100}}},
                caches={"c": {"capacity_bytes": 100, "backend": "db"}})
    with pytest.raises(NotAnalytic, match="one Zipf key space"):
        predict(two, 5.0)


def test_mmc_sojourn_percentiles():
    m = model({"s": {"workers": 4, "service_time_s": {"dist": "exponential", "mean": 0.2}}})
    checks = {c.metric: c.expected for c in predict(m, 16.0)}
    # checked against 2 million sojourns sampled from the Erlang C wait plus the service time
    assert checks["latency_p50_s"] == pytest.approx(0.26924, rel=1e-4)
    assert checks["latency_p99_s"] == pytest.approx(1.37864, rel=1e-4)
