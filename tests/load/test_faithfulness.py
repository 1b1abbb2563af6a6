"""Generated data resembles its source: keys recover their Zipf exponent, sizes their
distribution, classes their shares within sampling error, arrivals their rate and dispersion."""

import numpy as np
import pandas as pd
from scipy import stats

from tests.conftest import MODELS
from twin.calibrate.popularity import fit_zipf
from twin.load.fit import dispersion
from twin.load.profile_workload import workload
from twin.spec import load_model


def test_a_synthesized_day_is_faithful_to_the_model_it_came_from():
    shop = load_model(MODELS / "reference" / "shop.yaml")
    idx = pd.date_range("2026-01-01", periods=12, freq="5min", tz="UTC")
    w = workload(pd.DataFrame({"requests_per_s": np.full(12, 80.0)}, index=idx), shop, np.random.default_rng(0))
    names = np.array(w.class_names)[w.cls]
    n = len(w)
    # class mix within 4 standard errors of the model's shares
    for name, c in shop.classes.items():
        share = (names == name).mean()
        assert abs(share - c.share) < 4 * np.sqrt(c.share * (1 - c.share) / n), name
    # keys: the Zipf exponent recovered by the calibrator's own estimator
    browse = names == "browse"
    keys = shop.classes["browse"].keys
    fit = fit_zipf(w.key[browse], key_space=keys.count)
    assert abs(fit.exponent - keys.zipf_exponent) < 0.05
    # sizes: two-sample KS against fresh draws from the model's distribution
    reference = shop.classes["checkout"].payload_bytes.sample(np.random.default_rng(9), 20_000)
    assert stats.ks_2samp(w.size_bytes[names == "checkout"], np.rint(reference)).pvalue > 0.01
    # arrivals: Poisson at a flat rate has dispersion 1 at every window
    assert abs(n / w.duration_s / 80.0 - 1) < 4 / np.sqrt(80 * w.duration_s)
    for window in (1.0, 10.0):
        assert 0.85 < dispersion(w.time_s, window, w.duration_s) < 1.15
