"""The load profile's shape: class mix by time of day and burstiness, from a trace."""

import numpy as np
import pandas as pd

from twin.forecast.profile import shape_profile


def trace(days=3, seed=0, bursty=False):
    """Requests at 2/s; checkout is 40% of them from 18:00 to 24:00 and 10% otherwise; with
    ``bursty``, requests come in clumps of 5 at the same second."""
    rng = np.random.default_rng(seed)
    n = int(2 * 86400 * days / (5 if bursty else 1))
    t = np.sort(rng.uniform(0, 86400 * days, n))
    if bursty:
        t = np.repeat(np.floor(t), 5)
    hour = (t % 86400) // 3600
    share = np.where(hour >= 18, 0.4, 0.1)
    cls = np.where(rng.random(len(t)) < share, "checkout", "browse")
    return pd.DataFrame({"timestamp": pd.to_datetime(t, unit="s", utc=True), "class": cls})


def test_mix_follows_the_time_of_day_and_sums_to_one():
    future = pd.date_range("1970-01-04", periods=24, freq="h", tz="UTC")
    p = shape_profile(trace(), "1h", future)
    assert list(p.columns) == ["mix_browse", "mix_checkout", "burstiness"]
    np.testing.assert_allclose(p[["mix_browse", "mix_checkout"]].sum(axis=1), 1.0)
    np.testing.assert_allclose(p["mix_checkout"].iloc[:18], 0.1, atol=0.02)
    np.testing.assert_allclose(p["mix_checkout"].iloc[18:], 0.4, atol=0.02)


def test_burstiness_is_about_one_for_poisson_and_higher_for_clumps():
    future = pd.date_range("1970-01-04", periods=6, freq="h", tz="UTC")
    poisson = shape_profile(trace(), "1h", future)["burstiness"]
    clumps = shape_profile(trace(bursty=True), "1h", future)["burstiness"]
    np.testing.assert_allclose(poisson, 1.0, atol=0.1)
    assert (clumps > 4).all()
