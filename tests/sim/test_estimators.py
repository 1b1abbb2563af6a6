"""The estimators behind ``summarize``: pooled latency quantiles with sectioning intervals, and the
time-averaged queue length (exact, not sampled)."""

import numpy as np
import pytest

from twin.sim import run_replication, summarize
from twin.sim.stats import estimate, pooled_mean, pooled_quantile, sectioned

from .helpers import det, fixed, model


def test_queue_length_mean_is_the_exact_time_average():
    # one worker, 1 s each; arrivals at 0, 0.1, 0.2 wait 0.9 s and 1.8 s: 2.7 queue-seconds in [0, 3)
    m = model({"s": {"workers": 1, "service_time_s": det(1.0)}})
    r = run_replication(m, fixed(m, [0.0, 0.1, 0.2], duration=3.0), seed=0, warmup_s=0.0)
    assert r.metrics()["service.s.queue_length_mean"] == pytest.approx(2.7 / 3.0, rel=1e-12)
    # a window from 0.5 s: 0.5 + 1.5 queue-seconds inside [0.5, 3)
    r = run_replication(m, fixed(m, [0.0, 0.1, 0.2], duration=3.0), seed=0, warmup_s=0.5)
    assert r.metrics()["service.s.queue_length_mean"] == pytest.approx(2.0 / 2.5, rel=1e-12)


def test_queue_still_waiting_at_the_end_counts_up_to_the_end():
    # the third request still waits at the window's end (t = 1.5): 0.9 + 1.3 queue-seconds in [0, 1.5)
    m = model({"s": {"workers": 1, "service_time_s": det(1.0)}})
    r = run_replication(m, fixed(m, [0.0, 0.1, 0.2], duration=1.5), seed=0, warmup_s=0.0)
    assert r.metrics()["service.s.queue_length_mean"] == pytest.approx(2.2 / 1.5, rel=1e-12)


def test_pooled_quantile_is_the_quantile_of_all_samples_with_the_sectioning_interval():
    parts = [np.array([1.0, 2.0, 3.0]), np.array([10.0]), np.array([4.0, 5.0, 6.0, 7.0])]
    e = pooled_quantile(parts, 0.5)
    assert e.mean == 4.5  # the median of the eight samples, not the mean of the medians (5.83)
    # the interval: each replication's count <= 4.5 (3, 0, 1) less q times its size, over the mean size
    d = np.array([3 - 1.5, 0 - 0.5, 1 - 2.0]) / (8 / 3)
    h = estimate(d).half_width  # t_2 sd(d) / sqrt(3)
    pooled = np.concatenate(parts)
    assert h > 0.5 and (e.low, e.high) == (1.0, 10.0)  # three replications: the whole range
    e = pooled_quantile(parts * 4, 0.5)  # twelve: t_11 sd(d) / sqrt(12)
    h = estimate(np.tile(d, 4)).half_width
    assert h < 0.5 and (e.low, e.high) == pytest.approx((np.quantile(np.tile(pooled, 4), 0.5 - h),
                                                         np.quantile(np.tile(pooled, 4), 0.5 + h)))
    assert e.low < e.mean < e.high and e.n == 12 and e.half_width == pytest.approx((e.high - e.low) / 2)
    m = pooled_mean(parts)
    assert m.mean == pytest.approx(np.mean(np.concatenate(parts)))
    assert m.half_width == pytest.approx(estimate([2.0, 10.0, 5.5]).half_width)


def test_sectioning_degenerate_cases():
    assert np.isnan(pooled_quantile([], 0.5).mean)
    assert np.isnan(pooled_quantile([np.array([])], 0.5).mean)
    one = pooled_quantile([np.array([1.0, 3.0]), np.array([])], 0.5)
    assert one.mean == 2.0 and np.isnan(one.half_width) and one.n == 1
    assert sectioned(1.0, [float("nan"), 2.0, 4.0]).n == 2


def test_summarize_pools_latency_quantiles_and_keeps_the_per_replication_values():
    # two replications of one worker (1 s each); the p99 of each alone is below the pooled one
    m = model({"s": {"workers": 1, "service_time_s": det(1.0)}})
    a = run_replication(m, fixed(m, [0.0], duration=4.0), seed=0, warmup_s=0.0)  # latency 1
    b = run_replication(m, fixed(m, [0.0, 0.0, 0.0], duration=4.0), seed=1, warmup_s=0.0)  # 1, 2, 3
    s = summarize([a, b])
    assert s["latency_p50_s"].mean == pytest.approx(1.5)  # of [1, 1, 2, 3]
    assert s["latency_mean_s"].mean == pytest.approx(7 / 4)
    assert list(s.per_replication["latency_p50_s"]) == [1.0, 2.0]
    # shares <= 1.5 less a half: (1 - 0.5, 1 - 1.5) / 2; t_1 sd / sqrt(2) > 0.5 covers all samples
    assert (s["latency_p50_s"].low, s["latency_p50_s"].high) == (1.0, 3.0)
    assert s.to_dict()["metrics"]["latency_p50_s"]["mean"] == pytest.approx(1.5)


def test_metrics_carry_their_latencies_across_processes():
    import pickle

    m = model({"s": {"workers": 1, "service_time_s": det(1.0)}})
    metrics = run_replication(m, fixed(m, [0.0, 0.0], duration=3.0), seed=0, warmup_s=0.0).metrics()
    back = pickle.loads(pickle.dumps(metrics))  # as a sweep's worker process returns it
    assert list(back.latencies) == [1.0, 2.0] and list(back) == list(metrics) and dict(back)["latency_p50_s"] == 1.5


def test_summarize_pools_each_class_latencies_too():
    m = model({"s": {"workers": 1, "service_time_s": det(1.0)}},
              classes={"a": {"share": 0.5, "entry": "s"}, "b": {"share": 0.5, "entry": "s"}})
    one = run_replication(m, fixed(m, [0.0, 0.0], cls=["a", "b"], duration=4.0), seed=0, warmup_s=0.0)  # a 1, b 2
    two = run_replication(m, fixed(m, [0.0, 0.0, 0.0], cls=["b", "b", "a"], duration=4.0), seed=1,
                          warmup_s=0.0)  # b 1, 2; a 3
    s = summarize([one, two])
    assert s["class.b.latency_p50_s"].mean == pytest.approx(np.quantile([2.0, 1.0, 2.0], 0.5))
    assert s["class.a.latency_mean_s"].mean == pytest.approx(2.0)  # (1 + 3) / 2
    assert list(s.per_replication["class.a.latency_p50_s"]) == [1.0, 3.0]


def test_a_tail_quantile_on_few_samples_beyond_it_comes_with_a_caution():
    from pathlib import Path

    from twin.sim import PoissonArrivals, run_replications
    from twin.sim.stats import TAIL_SAMPLES
    from twin.spec import load_model

    mmc = load_model(Path(__file__).resolve().parents[2] / "models" / "validation" / "mmc.yaml")  # 16 req/s
    results = run_replications(mmc, PoissonArrivals(16.0, 72.0), replications=4, seed=0, warmup_s=12.0)
    s = summarize(results)
    total = sum(len(r.window_latencies()) for r in results)  # about 3840: 38 beyond the p99, 192 beyond the p95
    assert not s.warnings and len(s.cautions) == 1
    need = int(np.ceil(4 * TAIL_SAMPLES / (total * 0.01)))
    assert s.cautions[0].startswith("latency_p99_s and 1 more: the interval rests on "
                                    f"{total * 0.01:.0f} samples beyond the 99% quantile ({total} in 4 replications)")
    assert f"run about {need} replications" in s.cautions[0] and s.to_dict()["cautions"] == list(s.cautions)
    plenty = summarize(results * 30)  # 120 windows: more than TAIL_SAMPLES beyond the p99
    assert plenty.cautions == ()
