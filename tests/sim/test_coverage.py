"""The reported 95% intervals cover the exact value about 95% of the time (issue 12).

M/M/1 and M/M/4 (models/validation) at their default loads, with 60 s and 600 s windows: K
seeded macro-repetitions, each ``replications`` replications summarized as ``twin simulate``
does, and the number of intervals that contain the closed-form mean, p50, p95 and p99 of the
sojourn time must lie in the central 99% binomial acceptance interval of Binomial(K, 0.95).
Averaging each replication's own p99 (the old estimator) covered 63% at 60 s on M/M/1; the
pooled p99 with a plain t over the replications covered 85% on M/M/4 (the tail's heavy kurtosis).  Larger
runs for benchmarks/RESULTS.md: ``python benchmarks/interval_coverage.py``.
"""

from pathlib import Path

import pytest

from twin.spec import load_model
from twin.validation.coverage import METRICS, exact_sojourn, measure

MODELS = Path(__file__).resolve().parents[2] / "models" / "validation"

# (model, window s, warm-up s, replications, macro-repetitions): about 5 million requests in all.
# M/M/4 at 60 s runs the 105 replications that twin simulate's caution asks for (1000 samples
# beyond the p99): with 20 its p99 interval covers about 87% (benchmarks/RESULTS.md), as the
# caution says.
CASES = [("mm1", 60.0, 12.0, 20, 60), ("mmc", 60.0, 12.0, 105, 30),
         ("mm1", 600.0, 60.0, 5, 30), ("mmc", 600.0, 60.0, 5, 20)]


@pytest.mark.slow
@pytest.mark.parametrize("name, window, warmup, replications, macro", CASES,
                         ids=[f"{c[0]}-{c[1]:g}s" for c in CASES])
def test_intervals_hold_their_coverage(name, window, warmup, replications, macro):
    model = load_model(MODELS / f"{name}.yaml")
    rows = measure(model, window_s=window, warmup_s=warmup, macro=macro, replications=replications, seed=12)
    assert [c.metric for c in rows] == list(METRICS)
    for c in rows:
        lo, hi = c.acceptance(0.99, 0.95)
        assert lo <= c.covered <= hi, f"{c.metric}: {c.covered}/{c.macro} intervals cover {c.exact:.4g}, " \
                                      f"expected {lo} to {hi}"


def test_exact_sojourn_quantiles():
    mm1 = exact_sojourn(load_model(MODELS / "mm1.yaml"))  # Exp(mu - lambda = 3)
    assert mm1["latency_p99_s"] == pytest.approx(1.5350567, rel=1e-6)
    assert mm1["latency_mean_s"] == pytest.approx(1 / 3)
    mmc = exact_sojourn(load_model(MODELS / "mmc.yaml"))  # checked against 2 million sampled sojourns
    assert mmc["latency_p50_s"] == pytest.approx(0.26924, rel=1e-4)
    assert mmc["latency_p99_s"] == pytest.approx(1.37864, rel=1e-4)
