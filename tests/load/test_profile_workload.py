"""A load profile becomes the arrivals the twin consumes: rates per step, quantile, class mix."""

import numpy as np
import pandas as pd
import pytest

from twin.load.arrivals import LoadError
from twin.load.profile_workload import workload
from tests.conftest import MODELS
from twin.spec import load_model

SHOP = MODELS / "reference" / "shop.yaml"


@pytest.fixture(scope="module")
def shop():
    return load_model(SHOP)


def profile(rates, q90=None, mix=None, step="5min"):
    idx = pd.date_range("2026-01-01", periods=len(rates), freq=step, tz="UTC")
    p = pd.DataFrame({"requests_per_s": rates}, index=idx)
    p["requests_per_s_q0.9"] = q90 if q90 is not None else np.asarray(rates) * 1.5
    for name, share in (mix or {}).items():
        p[f"mix_{name}"] = share
    return p


def test_each_step_gets_its_rate_and_the_same_seed_the_same_arrivals(shop):
    rates = np.array([20.0, 20.0, 60.0, 60.0, 60.0, 20.0, 20.0, 5.0])
    w = workload(profile(rates), shop, np.random.default_rng(0))
    counts = np.bincount((w.time_s // 300).astype(int), minlength=len(rates))
    # inner steps of a plateau keep their mean exactly; edges blur by half a step at most
    assert abs(counts[3] / (60 * 300) - 1) < 4 / np.sqrt(60 * 300)
    assert abs(counts.sum() / (rates.sum() * 300) - 1) < 0.02
    again = workload(profile(rates), shop, np.random.default_rng(0))
    assert np.array_equal(w.time_s, again.time_s) and np.array_equal(w.cls, again.cls)
    assert np.array_equal(w.size_bytes, again.size_bytes) and np.array_equal(w.key, again.key)


def test_a_quantile_of_the_forecast_drives_the_rate(shop):
    p = profile(np.full(6, 10.0), q90=np.full(6, 30.0))
    median = workload(p, shop, np.random.default_rng(1))
    busy = workload(p, shop, np.random.default_rng(1), quantile=0.9)
    assert abs(len(busy) / len(median) - 3) < 0.2
    with pytest.raises(LoadError, match="no column 'requests_per_s_q0.99'"):
        workload(p, shop, np.random.default_rng(1), quantile=0.99)


def test_the_class_mix_of_each_step_is_followed(shop):
    names = list(shop.classes)
    first, second = names[0], names[1]
    mix = {n: 0.0 for n in names}
    p = profile(np.full(4, 50.0), mix=mix)
    p[f"mix_{first}"] = [1.0, 1.0, 0.0, 0.0]
    p[f"mix_{second}"] = [0.0, 0.0, 1.0, 1.0]
    w = workload(p, shop, np.random.default_rng(2))
    step = (w.time_s // 300).astype(int)
    assert (np.array(w.class_names)[w.cls[step < 2]] == first).all()
    assert (np.array(w.class_names)[w.cls[step >= 2]] == second).all()


def test_bad_profiles_are_named(shop):
    p = profile([1.0, -2.0, 3.0])
    with pytest.raises(LoadError, match=r"requests_per_s at 2026-01-01 00:05:00\+00:00: expected a rate >= 0"):
        workload(p, shop, np.random.default_rng(0))
    p = profile([1.0, 2.0], mix={"nosuch": 1.0})
    with pytest.raises(LoadError, match="mix_nosuch: no such class"):
        workload(p, shop, np.random.default_rng(0))
    with pytest.raises(LoadError, match="no step in"):
        workload(profile([1.0, 2.0]), shop, np.random.default_rng(0), start="2027-01-01T00:00:00Z")


def test_sessions_keep_the_profiles_concurrency(shop):
    from twin.load.sessions import SessionModel

    graph = SessionModel(("browse", "checkout"), np.array([1.0, 0.0]), np.array([[0.7, 0.1, 0.2], [0.0, 0.0, 1.0]]),
                         np.array([10.0, 5.0]))
    p = profile([10.0] * 24)
    p["user_concurrency"] = 30.0
    w = workload(p, shop, np.random.default_rng(4), sessions=graph)
    assert (w.session >= 0).all() and len(np.unique(w.session)) > 100
    # Little's law: 30 users, each sending mean_requests per mean_session_s
    expected = 30 / graph.mean_session_s() * graph.mean_requests() * w.duration_s
    assert abs(len(w) / expected - 1) < 0.1
    assert set(np.array(w.class_names)[w.cls]) == {"browse", "checkout"}
    with pytest.raises(LoadError, match="user_concurrency"):
        workload(profile([10.0] * 4), shop, np.random.default_rng(4), sessions=graph)
