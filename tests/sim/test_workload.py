"""Arrival tables: Poisson streams, class mix, sizes and Zipf keys, and replayed tables."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from tests.sim.helpers import model
from twin.sim import PoissonArrivals, Workload, zipf_keys
from twin.sim.workload import key_space_offsets
from twin.spec import SpecError

SHOPLIKE = dict(
    services={"api": {"service_time_s": 0.01}},
    classes={"a": {"share": 0.7, "entry": "api", "payload_bytes": {"dist": "lognormal", "mean": 2000, "cv": 1.0},
                   "keys": {"count": 1000, "zipf_exponent": 1.1}},
             "b": {"share": 0.3, "entry": "api", "keys": {"count": 1000, "space": "a"}}},
)


def test_poisson_stream_statistics():
    m = model(**SHOPLIKE)
    w = PoissonArrivals(50.0, 2000.0).generate(m, np.random.default_rng(11))
    n = len(w)
    # count: Poisson(100000); 99.9% interval
    assert abs(n - 100_000) < 3.3 * np.sqrt(100_000)
    gaps = np.diff(w.time_s)
    assert np.all(gaps >= 0)
    assert stats.kstest(gaps, "expon", args=(0, 1 / 50.0)).pvalue > 0.001
    share_a = np.mean(w.cls == 0)
    assert abs(share_a - 0.7) < 3.3 * np.sqrt(0.21 / n)
    sizes = w.size_bytes[w.cls == 0]
    assert abs(sizes.mean() / 2000 - 1) < 0.03
    assert np.all(w.size_bytes[w.cls == 1] == 0)


def test_same_generator_state_same_table():
    m = model(**SHOPLIKE)
    a = PoissonArrivals(5.0, 100.0).generate(m, np.random.default_rng(1))
    b = PoissonArrivals(5.0, 100.0).generate(m, np.random.default_rng(1))
    assert a.to_frame().equals(b.to_frame())


def test_zipf_keys_follow_the_law():
    rng = np.random.default_rng(2)
    keys = zipf_keys(100, 1.2, 200_000, rng)
    counts = np.bincount(keys, minlength=100)
    expected = np.arange(1, 101) ** -1.2
    expected = expected / expected.sum() * len(keys)
    assert stats.chisquare(counts, expected).pvalue > 0.001
    assert keys.min() >= 0 and keys.max() < 100


def test_shared_key_space():
    m = model(**SHOPLIKE)
    assert key_space_offsets(m) == {"a": 0}
    w = PoissonArrivals(20.0, 200.0).generate(m, np.random.default_rng(3))
    assert w.key.min() >= 0 and w.key.max() < 1000


def test_rates_and_durations_are_checked():
    with pytest.raises(SpecError, match="rate_per_s: expected a rate > 0"):
        PoissonArrivals(-1.0, 10.0)
    with pytest.raises(SpecError, match="duration_s"):
        PoissonArrivals(1.0, float("nan"))


def test_replayed_table_is_checked():
    m = model(**SHOPLIKE)
    ok = Workload.from_frame(pd.DataFrame({"time_s": [0.0, 1.0], "class": ["b", "a"]}), m, duration_s=5)
    assert list(ok.cls) == [1, 0] and ok.duration_s == 5
    bad = [
        (pd.DataFrame({"time_s": [1.0, 0.5], "class": ["a", "a"]}), "row 1 goes back in time"),
        (pd.DataFrame({"time_s": [0.0], "class": ["zzz"]}), "unknown request classes zzz"),
        (pd.DataFrame({"time_s": [0.0], "class": ["a"], "colour": [1]}), "unknown columns colour"),
        (pd.DataFrame({"class": ["a"]}), "missing time_s"),
        (pd.DataFrame({"time_s": [0.0], "class": ["a"], "size_bytes": [-4]}), "size_bytes: expected whole numbers >= 0"),
        (pd.DataFrame({"time_s": [0.0, 1.0], "class": ["a", "a"], "size_bytes": [1, 1.7]}), "row 2 holds 1.7"),
        (pd.DataFrame({"time_s": [0.0, 1.0], "class": ["a", "a"], "key": [3, None]}), "key: expected whole numbers"),
    ]
    for frame, message in bad:
        with pytest.raises(SpecError, match=message):
            Workload.from_frame(frame, m, source="trace.csv")
