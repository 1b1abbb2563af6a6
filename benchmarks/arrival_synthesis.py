"""Arrival synthesis: the numba kernel against the same process vectorised in numpy.

One day of a piecewise-linear rate curve (5-minute knots, a daily cycle averaging about 116
arrivals/s: ten million arrivals) is turned into arrival times by ``twin.load._kernels.nhpp_times``
(numba, on ``numba.get_num_threads()`` threads and then on one) and by ``nhpp_times_numpy`` (numpy: Poisson counts per piece, uniforms, a sort within
pieces, the same inverse), each best of ``--repeats`` in this process after a warm-up.  The
time of ``warm_up`` (compiling every kernel) is measured in a fresh process with an empty numba
cache, and with a warm on-disk cache in another.  Last, in a fresh process, the peak memory of
a whole ten-million-arrival workload (times, classes, sizes, keys, sessions) made by
``twin.load.profile_workload.workload`` from a day's profile for the reference shop.  And one
forward-backward pass of the MMPP fit (``hmm_forward_backward``) against its numpy reference,
which steps through the bins in Python as the fit did before.

    python benchmarks/arrival_synthesis.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

FIRST_CALL = """
import time
t0 = time.perf_counter()
from twin.load import _kernels
import numpy as np
t1 = time.perf_counter()
_kernels.warm_up()
print(time.perf_counter() - t1)
"""


MEMORY = """
import json, sys
import numpy as np, pandas as pd
from twin.load.profile_workload import workload
from twin.spec import load_model

def high_water():
    with open("/proc/self/status") as f:
        return int(f.read().split("VmHWM:")[1].split()[0]) * 1024

model = load_model(sys.argv[1])
idx = pd.date_range("2026-01-01", periods=288, freq="5min", tz="UTC")
rate = 116.0 * (1 + 0.6 * np.sin(2 * np.pi * (np.arange(288) / 288 - 0.3)))
profile = pd.DataFrame({"requests_per_s": rate}, index=idx)
workload(profile.iloc[:2], model, np.random.default_rng(1))  # imports and compilation are not its cost
base = high_water()
w = workload(profile, model, np.random.default_rng(0))
print(json.dumps({"arrivals": len(w), "growth": high_water() - base}))
"""


def curve(mean_rate: float = 116.0):
    t = np.arange(0, 86_400 + 1, 300.0)
    r = mean_rate * (1 + 0.6 * np.sin(2 * np.pi * (t / 86_400 - 0.3)))
    return t, r


def first_call(cache_dir: str) -> float:
    env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir}
    out = subprocess.run([sys.executable, "-c", FIRST_CALL], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def best(fn, repeats):
    times = []
    for i in range(repeats):
        rng = np.random.default_rng(i)
        t0 = time.perf_counter()
        out = fn(rng)
        times.append(time.perf_counter() - t0)
    return min(times), len(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from twin.load import _kernels

    with tempfile.TemporaryDirectory() as cache:
        cold = first_call(cache)
        warm = first_call(cache)
    t, r = curve()
    _kernels.warm_up()
    fast, n_fast = best(lambda rng: _kernels.nhpp_times(t, r, rng), args.repeats)
    slow, n_slow = best(lambda rng: _kernels.nhpp_times_numpy(t, r, rng), args.repeats)
    import numba

    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    single, _ = best(lambda rng: _kernels.nhpp_times(t, r, rng), args.repeats)
    numba.set_num_threads(threads)
    rng = np.random.default_rng(0)
    emit = rng.random((100_000, 3)) + 1e-3
    trans = rng.random((3, 3))
    trans /= trans.sum(axis=1, keepdims=True)
    pi = np.full(3, 1 / 3)
    fb_fast, _ = best(lambda _: _kernels.hmm_forward_backward(emit, trans, pi)[2], args.repeats)
    fb_slow, _ = best(lambda _: _kernels.hmm_forward_backward_reference(emit, trans, pi)[2], 1)
    import json
    from pathlib import Path

    shop = Path(__file__).resolve().parent.parent / "models" / "reference" / "shop.yaml"
    mem = json.loads(subprocess.run([sys.executable, "-c", MEMORY, str(shop)], capture_output=True, text=True,
                                    check=True).stdout)
    print(f"arrival_synthesis: {platform.machine()} {os.cpu_count()} cpus | {n_fast:,} arrivals over a day of "
          f"5-min knots | numba {n_fast / fast / 1e6:.1f} M arrivals/s ({fast:.3f} s), numpy {n_slow / slow / 1e6:.1f} "
          f"M/s ({slow:.3f} s): {slow / fast:.1f}x; numba on 1 thread {n_fast / single / 1e6:.1f} M/s: "
          f"{slow / single:.1f}x | warm_up (every kernel): compile {cold:.2f} s with an empty cache, "
          f"{warm:.2f} s from the on-disk cache | a workload of {mem['arrivals']:,} arrivals with classes, sizes, "
          f"keys and sessions: peak +{mem['growth'] / 2**20:,.0f} MiB | MMPP fit, one EM forward-backward over 100,000 "
          f"bins x 3 states: numba {fb_fast * 1e3:.1f} ms, numpy a bin at a time {fb_slow * 1e3:.0f} ms: "
          f"{fb_slow / fb_fast:.0f}x")


if __name__ == "__main__":
    main()
