"""An answer checked on the twin at the load asked: stable by the model's arithmetic (or a short
simulation), and the stored constraints met, each with its interval."""

import pytest

from tests.conftest import mmc_model
from twin.policy.check import check_answer, utilisation_bound
from twin.spec import load_model


@pytest.fixture(scope="module")
def mmc(tmp_path_factory):
    path = tmp_path_factory.mktemp("mmc") / "mmc.yaml"
    path.write_text(mmc_model(1, 80))
    return load_model(path)


def test_the_arithmetic_finds_the_reported_saturation(mmc):
    # the report: c=29 at 400/s with 0.2 s jobs
    assert utilisation_bound(mmc, {"requests_per_s": 400.0})["server"] == pytest.approx(20.0)
    c = check_answer(mmc, {"requests_per_s": 400.0}, {"workers": 29}, {"latency_mean_s": 0.25})
    assert not c["passed"] and not c["stable"] and c["replications"] == 0
    assert c["reason"] == "unstable: server would be 2.76 busy (utilisation >= 1)"


def test_a_stable_answer_meets_its_constraints_with_an_interval(mmc):
    c = check_answer(mmc, {"requests_per_s": 150.0}, {"workers": 44}, {"latency_mean_s": 0.25}, window_s=30)
    assert c["passed"] and c["stable"] and c["utilisation"]["server"] == pytest.approx(150 * 0.2 / 44)
    m = c["constraints"]["latency_mean_s"]
    assert m["met"] and m["ci_low"] <= m["mean"] <= m["ci_high"] < 0.25 and c["replications"] == 3


def test_a_stable_answer_that_misses_a_constraint_fails(mmc):
    # 150/s on 31 workers: 0.97 busy, stable, but the mean wait is far above 50 ms
    c = check_answer(mmc, {"requests_per_s": 150.0}, {"workers": 31}, {"latency_mean_s": 0.25}, window_s=30)
    assert c["stable"] and not c["passed"] and not c["constraints"]["latency_mean_s"]["met"]
    assert c["reason"].startswith("constraint missed: latency_mean_s ")


def test_parameters_that_do_not_fit_the_model_fail_the_check(mmc):
    c = check_answer(mmc, {"requests_per_s": 10.0}, {"threads": 4}, {})
    assert not c["passed"] and "do not fit mmc_sized's tunables" in c["reason"]


CACHED = """
name: cached
classes:
  get: {{share: 1.0, entry: objects, payload_bytes: 1024, keys: {{count: {keys}, zipf_exponent: {zipf}}}}}
caches:
  objects: {{capacity_bytes: 1000KiB, policy: lru, backend: store}}
services:
  store: {{workers: 1, service_time_s: {{dist: exponential, mean: 0.01}}}}
"""


@pytest.mark.parametrize("keys,zipf,stable", [(500, 1.2, True), (200000, 0.3, False)])
def test_where_caches_may_absorb_the_excess_a_short_simulation_decides(tmp_path, keys, zipf, stable):
    # every lookup a miss, the store would be 2.0 busy at 200/s; 500 keys all fit the cache, 200,000 flat ones do not
    path = tmp_path / "cached.yaml"
    path.write_text(CACHED.format(keys=keys, zipf=zipf))
    model = load_model(path)
    assert utilisation_bound(model, {"requests_per_s": 200.0})["store"] == pytest.approx(2.0)
    c = check_answer(model, {"requests_per_s": 200.0}, {}, {}, replications=2, window_s=20)
    assert c["stable"] is stable and c["passed"] is stable and c["how"].startswith("short simulation")
    assert (c["utilisation"]["store"] < 0.5) if stable else c["reason"].startswith("unstable: store was")
