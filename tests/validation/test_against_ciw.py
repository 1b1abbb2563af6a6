"""The twin and Ciw, an independent simulator, on the same networks: same means within the CIs.

For each metric the Welch interval of (twin - Ciw) must contain 0, at a Bonferroni-adjusted
level over all comparisons, and be narrow enough (at most 15% of the value) to mean something.
"""

import math

import pytest

from tests.conftest import MODELS
from twin.validation.ciw import replication
from twin.sim import PoissonArrivals, run_replications, welch_difference
from twin.spec import load_model

MODELS_ = ["mm1", "mmc", "md1", "mg1_lognormal", "mmck", "jackson"]
CIW_REPLICATIONS = 10
TWIN_REPLICATIONS = 10
METRICS_PER_MODEL = 4
LEVEL = 1 - 0.05 / (len(MODELS_) * METRICS_PER_MODEL)


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS_)
def test_same_means_as_ciw(name):
    model = load_model(MODELS / "validation" / f"{name}.yaml")
    d = model.defaults
    ours = [r.metrics() for r in run_replications(model, PoissonArrivals(d.rate_per_s, d.duration_s),
                                                  replications=TWIN_REPLICATIONS, seed=101)]
    theirs = [replication(model, seed=1000 + i) for i in range(CIW_REPLICATIONS)]
    server = next(iter(model.services))
    metrics = ["latency_mean_s", f"service.{server}.utilisation", f"service.{server}.wait_mean_s",
               "throughput_per_s"]
    if "rejection_rate" in theirs[0]:
        metrics[-1] = "rejection_rate"
    if name == "jackson":
        metrics[-1] = "service.db.wait_mean_s"
    assert len(metrics) == METRICS_PER_MODEL
    problems = []
    for metric in metrics:
        a = [m[metric] for m in ours]
        b = [m[metric] for m in theirs]
        diff = welch_difference(a, b, LEVEL)
        scale = abs(sum(b) / len(b))
        if not diff.contains(0.0):
            problems.append(f"{metric}: twin - Ciw = {diff} (level {LEVEL:.4f})")
        if not math.isfinite(diff.half_width) or diff.half_width > 0.15 * scale:
            problems.append(f"{metric}: comparison too vague (±{diff.half_width:.3g} on {scale:.3g})")
    assert not problems, "\n".join(problems)
