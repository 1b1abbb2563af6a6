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


def test_the_azure_llm_trace_is_reproduced_in_sizes_gaps_and_bursts(tmp_path):
    """The real trace (tests/fixtures/traces, CC BY 4.0): a model calibrated on its first 70%
    draws sizes that pass a two-sample KS against the held-out 30%; a 3-state MMPP fitted on its
    arrivals, driving a flat profile at its mean rate, keeps the inter-arrival law (KS distance
    under 0.05; with 5,000 gaps a p-value would reject any real trace that is not exactly an
    MMPP) and the index of dispersion at 1 s and 10 s within 2x, well above a plain Poisson's."""
    from tests.conftest import ROOT
    from twin.calibrate.calibrate import calibrate
    from twin.calibrate.skeleton import load_skeleton
    from twin.load.fit import fit_mmpp
    from twin.traces import read_traces

    skeleton = tmp_path / "skeleton.yaml"
    skeleton.write_text("name: llm\nservices:\n  llm: {instances: 2, workers: 16, service_time_s: 0.05}\n")
    trace, inputs = read_traces([ROOT / "tests" / "fixtures" / "traces" / "azure_llm_conv_5000.csv"],
                                time_zone="UTC", service="llm",
                                columns={"timestamp": "TIMESTAMP", "bytes_in": "ContextTokens",
                                         "bytes_out": "GeneratedTokens"})
    cal = calibrate(trace, load_skeleton(skeleton), inputs=inputs)
    held_out = trace["bytes_out"].iloc[cal.model.provenance["requests"]["train"]:].to_numpy()
    t = (trace["timestamp"] - trace["timestamp"].min()).dt.total_seconds().to_numpy()
    steps = int(np.ceil(t[-1] / 60))
    idx = pd.date_range("2023-11-16 18:15", periods=steps, freq="1min", tz="UTC")
    flat = pd.DataFrame({"requests_per_s": np.full(steps, len(t) / (steps * 60.0))}, index=idx)
    fit = fit_mmpp(t, t[-1], states=3)
    real = [dispersion(t, window, t[-1]) for window in (1.0, 10.0)]
    ratios, plain, distance = [], [], []
    for seed in range(8):
        w = workload(flat, cal.model, np.random.default_rng(seed), bursts=fit)
        if seed == 0:
            assert stats.ks_2samp(w.size_bytes, held_out).pvalue > 0.01
        distance.append(stats.ks_2samp(np.diff(w.time_s), np.diff(t)).statistic)
        ratios.append([dispersion(w.time_s, window, t[-1]) / r for window, r in zip((1.0, 10.0), real)])
        poisson = workload(flat, cal.model, np.random.default_rng(seed))
        plain.append(dispersion(poisson.time_s, 10.0, t[-1]) / real[1])
    assert np.median(distance) < 0.05
    assert 0.5 < np.median(ratios, axis=0).min() and np.median(ratios, axis=0).max() < 2
    assert np.median(ratios, axis=0)[1] > np.median(plain) + 0.15
