"""Warm-up detection (MSER-5) and caches filled before the run."""

import numpy as np

from twin.sim import PoissonArrivals, run_replication
from twin.sim.cache import LRUStore, key_sources, warm_fill
from twin.sim.warmup import detect_warmup, mser
from twin.spec import load_model
from twin.validation.theory import predict


def test_mser5_cuts_a_known_transient():
    rng = np.random.default_rng(3)
    t = np.arange(4000)
    x = 1.0 + 4.0 * np.exp(-t / 100.0) + rng.normal(0, 0.5, len(t))  # below the noise from about t = 300
    cut = mser(x)
    assert cut.settled and cut.index % 5 == 0
    assert 200 <= cut.index <= 800
    stationary = mser(rng.normal(0, 1, 4000))
    assert stationary.settled and stationary.index < 400


def test_mser5_says_when_a_series_has_not_settled():
    x = np.linspace(0, 10, 1000) + np.random.default_rng(1).normal(0, 0.1, 1000)  # a drift: no steady state
    assert not mser(x).settled
    assert not mser([1.0, 2.0, 3.0]).settled  # too short to tell


def test_detect_warmup_finds_a_slow_start_in_a_run():
    slow_minute = "services.server.slowdowns=[{start_s: 0, end_s: 60, factor: 1.8}]"  # utilisation 0.9, then 0.5
    m = load_model("models/validation/mm1.yaml", sets=[slow_minute])
    w = PoissonArrivals(rate_per_s=5.0, duration_s=600).generate(m, np.random.default_rng(2))
    found = detect_warmup(run_replication(m, w, seed=2, warmup_s=10.0))
    assert found.settled and 45 <= found.detected_s <= 90  # the slow minute, and its backlog
    assert found.longer_than_configured and "longer than" in found.describe()
    plain = load_model("models/validation/mm1.yaml")
    calm = detect_warmup(run_replication(plain, w, seed=2, warmup_s=10.0))
    assert calm.detected_s < 20


def test_warm_caches_give_the_steady_state_hit_ratio_in_a_short_window():
    # 8,000 one-KiB objects of 20,000 Zipf(0.8) keys: a cold cache is far from full after 20 s at 200/s
    m = load_model("models/validation/lru_zipf.yaml", sets=["caches.objects.capacity_bytes=8000KiB"])
    (che,) = predict(m, 200.0)
    w = PoissonArrivals(rate_per_s=200.0, duration_s=20.0).generate(m, np.random.default_rng(5))
    warm = run_replication(m, w, seed=5, warmup_s=0.0, warm_caches=True).metrics()["cache.objects.hit_ratio"]
    cold = run_replication(m, w, seed=5, warmup_s=0.0).metrics()["cache.objects.hit_ratio"]
    assert abs(warm - che.expected) < 0.03, (warm, che.expected)
    assert cold < che.expected - 0.2  # what a short cold window reports instead


def test_warm_fill_is_seeded_and_a_space_that_fits_is_held_whole():
    m = load_model("models/validation/lru_zipf.yaml")
    sources = key_sources(m, "objects")
    stores = [LRUStore(m.caches["objects"].capacity_bytes) for _ in range(2)]
    for s in stores:
        warm_fill(s, sources, np.random.default_rng(9))
    assert list(stores[0]._entries) == list(stores[1]._entries) and len(stores[0]) == 1000
    assert stores[0].evictions == 0  # the fill's own evictions are not counted
    whole = LRUStore(10**9)
    warm_fill(whole, sources, np.random.default_rng(9))
    assert len(whole) == 20_000


def test_a_fill_is_bounded_on_a_huge_key_space(monkeypatch):
    import twin.sim.cache as cache

    monkeypatch.setattr(cache, "WARM_MAX_INSERTS", 20_000)
    m = load_model("models/validation/lru_zipf.yaml", sets=["classes.get.keys.count=1000000"])
    store = LRUStore(10**12)  # room for every key: the fill would otherwise draw 4 million keys and walk all 10^6
    drawn = warm_fill(store, key_sources(m, "objects"), np.random.default_rng(1))
    assert drawn <= 20_000 + cache.WARM_CHUNK and len(store) <= drawn + 20_000
