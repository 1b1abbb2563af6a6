"""How often the 95% intervals that ``twin simulate`` reports cover the exact value (issue 12).

For M/M/1 (models/validation/mm1.yaml) and M/M/4 (mmc.yaml) at their default loads, with 60 s
and 600 s windows after the warm-up: ``--macro`` independent macro-repetitions of
``--replications`` replications each, summarized as ``twin simulate`` does (pooled latency
quantiles and means, sectioning intervals), and the share of intervals that contain the closed
form's mean, p50, p95 and p99 of the sojourn time.  Prints a Markdown table for RESULTS.md.

    python benchmarks/interval_coverage.py --macro 200 --replications 20 --jobs 2
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from twin.spec import load_model
from twin.validation.coverage import measure, tail_replications

ROOT = Path(__file__).resolve().parent.parent
WINDOWS = {60.0: 12.0, 600.0: 60.0}  # window -> warm-up (s)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--macro", type=int, default=200, help="macro-repetitions per model and window")
    p.add_argument("--replications", default="20",
                   help="replications per macro-repetition, or 'tail': enough for TAIL_SAMPLES beyond the p99")
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--models", nargs="+", default=["mm1", "mmc"])
    p.add_argument("--windows", nargs="+", type=float, default=sorted(WINDOWS))
    a = p.parse_args()
    print("| model | window (warm-up) | n x K | metric | exact (s) | covered | 99% acceptance | mean half-width |")
    print("|---|---|---|---|---:|---:|---|---:|")
    for name in a.models:
        model = load_model(ROOT / "models" / "validation" / f"{name}.yaml")
        for window in a.windows:
            t = time.perf_counter()
            n = tail_replications(model, window) if a.replications == "tail" else int(a.replications)
            rows = measure(model, window_s=window, warmup_s=WINDOWS.get(window, window / 5), macro=a.macro,
                           replications=n, seed=a.seed, jobs=a.jobs)
            for c in rows:
                lo, hi = c.acceptance()
                print(f"| {name} | {window:g} s ({WINDOWS.get(window, window / 5):g} s) | {n} x {a.macro} "
                      f"| {c.metric} | {c.exact:.4f} | {c.covered}/{c.macro} = {c.share:.1%} | {lo}-{hi} "
                      f"| ±{c.mean_half_width:.1%} |", flush=True)
            print(f"<!-- {name} {window:g} s: {time.perf_counter() - t:.0f} s wall -->", flush=True)


if __name__ == "__main__":
    main()
