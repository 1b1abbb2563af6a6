"""A sweep's finalists are estimated as ``twin simulate`` estimates: latencies pooled over the
replications, with sectioning intervals (issue 12)."""

from types import SimpleNamespace

import numpy as np
import pytest

from tests.sweep.test_study import MMC, task
from twin.sim.stats import pooled_mean, pooled_quantile
from twin.spec import load_model
from twin.sweep.study import _replicate_batch, replication_load
from twin.sweep.task import Evaluator


def test_finalists_pool_their_replications_latencies(tmp_path):
    path = tmp_path / "mmc.yaml"
    path.write_text(MMC)
    t = task(load_model(path), window=120, warmup=20, replications=3)
    finalist = SimpleNamespace(number=0, params={"workers": 4}, user_attrs={})
    [c] = _replicate_batch(t, [finalist], 1, lambda *a: None)
    ev = Evaluator(t)
    runs = [ev.run({"workers": 4}, replication_load(r)) for r in range(3)]
    samples = [m.latencies for m in runs]
    assert [rep["latency_p99_s"] for rep in c.replications] == [m["latency_p99_s"] for m in runs]
    p99 = pooled_quantile(samples, 0.99)
    assert (c.estimates["latency_p99_s"].mean, c.estimates["latency_p99_s"].high) == (p99.mean, p99.high)
    assert c.estimates["latency_p99_s"].mean != pytest.approx(np.mean([m["latency_p99_s"] for m in runs]))
    assert c.estimates["latency_mean_s"].mean == pooled_mean(samples).mean
