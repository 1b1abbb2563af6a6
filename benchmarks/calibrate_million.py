"""Calibrating one million requests: wall time, memory, and our fitting against the obvious way.

1. Simulates the known shop (models/reference/traced_shop.yaml: five services and a
   cache) for one million requests with spans, and writes the span table as Parquet (the
   trace contract; about 3.5 spans a request).  Not timed; cached in --workdir.
2. Times what `twin calibrate` does before its fidelity check: read the Parquet trace, compute
   exclusive times, fit every service, the call graph, classes, sizes, keys and arrivals.
   Peak memory is the growth of VmHWM over the process after imports.
3. Times the fidelity check (replaying the held-out 30% five times, on --jobs processes).
4. Fits the largest service-time sample with `fit_distribution` (closed-form or Newton MLE,
   AIC, bootstrap KS on 5,000 points) and with the obvious way (`scipy.stats.<family>.fit` for
   the same four families, AIC, `scipy.stats.kstest`), in one run: the ratio.

    python benchmarks/calibrate_million.py [--requests 1000000] [--jobs 2] [--workdir /tmp/twin-bench]
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from twin.calibrate import fit_distribution
from twin.calibrate.calibrate import assess, calibrate
from twin.calibrate.skeleton import load_skeleton
from twin.sim import PoissonArrivals, run_replication
from twin.spec import load_model
from twin.traces import read_traces
from twin.traces.export import twin_spans_to_frame

HERE = Path(__file__).resolve().parent.parent / "models" / "reference"


def memory_kib(key: str) -> int:
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith(key))


def make_trace(path: Path, requests: int) -> None:
    model = load_model(HERE / "traced_shop.yaml")
    rate = 250.0
    work = PoissonArrivals(rate, requests / rate).generate(model, np.random.default_rng(7))
    result = run_replication(model, work, seed=7, warmup_s=0.0, record_spans=True)
    frame = twin_spans_to_frame(result, epoch=pd.Timestamp("2026-01-05T10:00:00Z"), workload=work)
    frame.to_parquet(path)


def scipy_way(x: np.ndarray) -> tuple[str, float]:
    """The obvious calibration of one sample: scipy's MLE per family, AIC, a KS test."""
    best = None
    for name, dist, k in (("exponential", stats.expon, 1), ("lognormal", stats.lognorm, 2),
                          ("gamma", stats.gamma, 2), ("weibull", stats.weibull_min, 2)):
        params = dist.fit(x, floc=0)
        aic = 2 * k - 2 * np.sum(dist.logpdf(x, *params))
        if best is None or aic < best[0]:
            best = (aic, name, dist, params)
    _, name, dist, params = best
    return name, stats.kstest(x, dist.cdf, args=params).statistic


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=1_000_000)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/twin-bench"))
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    path = args.workdir / f"shop-{args.requests}.parquet"
    if not path.exists():
        t = time.perf_counter()
        make_trace(path, args.requests)
        print(f"# made {path} in {time.perf_counter() - t:.0f} s (not part of the figures)")
    print(f"# {platform.machine()}, CPython {platform.python_version()}, {path.stat().st_size / 2**20:.0f} MiB "
          f"Parquet span table")
    skeleton = load_skeleton(HERE / "traced_shop.skeleton.yaml")
    base = memory_kib("VmRSS:")
    t = time.perf_counter()
    trace, inputs = read_traces([path])
    t_read = time.perf_counter() - t
    cal = calibrate(trace, skeleton, inputs=inputs)
    t_cal = time.perf_counter() - t
    peak = memory_kib("VmHWM:")
    requests = int(trace["parent_id"].isna().sum())
    print(f"calibration: {requests:,} requests, {len(trace):,} spans: read {t_read:.1f} s, total {t_cal:.1f} s "
          f"(target < 60 s); peak memory +{(peak - base) / 1024:.0f} MiB")
    t = time.perf_counter()
    fid, _ = assess(cal, replications=5, seed=0, jobs=args.jobs)
    print(f"fidelity check: {fid.verdict}, 5 replays of {cal.model.provenance['requests']['held_out']:,} held-out "
          f"requests on {args.jobs} processes: {time.perf_counter() - t:.1f} s")

    db = cal.trace.loc[cal.trace["service"].astype(str) == "db", "exclusive_s"].to_numpy()
    x = db[db > 0][:200_000]
    t = time.perf_counter()
    ours = fit_distribution(x, rng=np.random.default_rng(0))
    t_ours = time.perf_counter() - t
    t = time.perf_counter()
    name, ks = scipy_way(x)
    t_scipy = time.perf_counter() - t
    print(f"fitting {len(x):,} samples, 4 families: ours {t_ours:.2f} s ({ours.family}, KS {ours.ks_statistic:.4f}, "
          f"with bootstrap GoF), scipy.stats fit+AIC+kstest {t_scipy:.2f} s ({name}, KS {ks:.4f}): "
          f"{t_scipy / t_ours:.1f}x")


if __name__ == "__main__":
    main()
