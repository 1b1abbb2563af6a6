"""Do twin's sweeps find answers that are known exactly?  (issue 12's known-answer targets)

1. **M/M/c staffing.**  ``models/validation/mmc.yaml`` (exponential service, mean 0.2 s) with its
   ``workers`` made a tunable (2..14, searched exhaustively: one trial per value).  "Fewest workers"
   is the objective: maximise the server's utilisation, which under common random numbers falls
   strictly with every worker added (lambda E[S] / c), subject to one constraint:
   ``latency_p99_s <= 1.2`` s, or ``service.server.wait_mean_s <= 0.045`` s.  At 16 and 32
   requests/s Erlang C gives c = 5 and 8 (p99) and c = 5 and 9 (mean wait), none at a domain edge,
   and the bounds sit well between the exact values at c - 1 and c.
2. **LRU cache sizing.**  ``models/validation/lru_zipf.yaml`` (Zipf(0.8) over 20,000 one-KiB keys,
   200 requests/s) with its capacity a tunable; the smallest capacity with hit ratio >= the target
   is the cheapest (memory priced per GiB-hour, minimise ``cost``) subject to the store seeing at
   most 200 (1 - target) requests/s (the misses: sweep constraints are upper bounds).  Caches
   start warm (``sweep.warm_caches``).  The answer is compared with Che's approximation.

Every sweep runs through twin's own code: ``twin.sweep.study.run_study`` then ``finish`` (the
finalists re-run on independent loads with 95% intervals, the winner chosen there), on a SQLite
study file in a temporary folder.  Per seed and load: the winner's workers against Erlang C's c;
per seed, the winner's capacity against Che's.

    python benchmarks/sweep_known_answers.py [--seeds 10 --window 300 --cache-seeds 5 --jobs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import optuna

from twin.spec import load_model
from twin.spec.experiment import Sweep
from twin.sweep.study import finish, run_study
from twin.sweep.task import SweepTask, window_profile
from twin.validation.theory import che_hit_ratio, mmc, mmc_sojourn_quantile

ROOT = Path(__file__).resolve().parent.parent
MU = 5.0  # mmc.yaml: exponential service, mean 0.2 s
LOADS = (16.0, 32.0)
WORKERS = (2, 14)
BOUNDS = {"latency_p99_s": 1.2, "service.server.wait_mean_s": 0.045}
CACHE_RATE, CACHE_TARGET = 200.0, 0.5


def exact_c(metric: str, lam: float, bound: float) -> int:
    """The fewest workers whose exact metric (Erlang C) is within the bound."""
    c = int(lam // MU) + 1
    while True:
        value = mmc_sojourn_quantile(lam, MU, c, 0.99) if metric == "latency_p99_s" else mmc(lam, MU, c).wait_mean_s
        if value <= bound:
            return c
        c += 1


def staffing_task(lam: float, metric: str, seed: int, window: float, replications: int) -> SweepTask:
    model = load_model(ROOT / "models" / "validation" / "mmc.yaml").model_dump(by_alias=True)
    model["tunables"] = {"workers": {"type": "int", "low": WORKERS[0], "high": WORKERS[1],
                                     "targets": "services.server.workers"}}
    sweep = Sweep(minimize=[], maximize=["service.server.utilisation"], constraints={metric: BOUNDS[metric]},
                  trials=WORKERS[1] - WORKERS[0] + 1, window=window, warmup=min(60.0, window / 5),
                  replications=replications, warm_start=0)
    return SweepTask(study=f"mmc-{lam:g}-{metric}-{seed}", model=model, profile=window_profile(
        {"requests_per_s": lam}, window), settings=sweep.model_dump(mode="json"), seed=seed)


def cache_model(kib_low: int, kib_high: int, kib_step: int) -> dict:
    model = load_model(ROOT / "models" / "validation" / "lru_zipf.yaml").model_dump(by_alias=True)
    model["caches"]["objects"]["price_per_gib_hour"] = 1000.0
    model["caches"]["objects"]["capacity_bytes"] = kib_low * 1024  # the current value, inside the domain
    model["tunables"] = {"capacity": {"type": "int", "low": kib_low * 1024, "high": kib_high * 1024,
                                      "step": kib_step * 1024, "targets": "caches.objects.capacity_bytes"}}
    return model


def che_capacity_bytes(target: float) -> tuple[float, int]:
    """The smallest LRU capacity (bytes, and objects) whose hit ratio by Che's approximation
    reaches the target, with twin's own entry size (value plus per-entry overhead)."""
    model = load_model(ROOT / "models" / "validation" / "lru_zipf.yaml")
    cache = model.caches["objects"]
    cls = model.classes["get"]
    entry = int(cls.payload_bytes.mean()) + cache.entry_overhead_bytes
    p = np.arange(1, cls.keys.count + 1, dtype=float) ** -cls.keys.zipf_exponent
    lo, hi = 1, cls.keys.count
    while lo < hi:
        mid = (lo + hi) // 2
        if che_hit_ratio(p, mid) >= target:
            hi = mid
        else:
            lo = mid + 1
    return float(lo * entry), lo


def cache_task(seed: int, window: float, replications: int, grid: tuple[int, int, int]) -> SweepTask:
    sweep = Sweep(minimize=["cost"], constraints={"service.store.throughput_per_s": CACHE_RATE * (1 - CACHE_TARGET)},
                  trials=64, window=window, warmup=min(60.0, window / 5), replications=replications,
                  warm_caches=True, warm_start=0)
    return SweepTask(study=f"lru-{seed}", model=cache_model(*grid), profile=window_profile(
        {"requests_per_s": CACHE_RATE}, window), settings=sweep.model_dump(mode="json"), seed=seed)


def sweep(task: SweepTask, folder: Path, jobs: int) -> dict | None:
    url = f"sqlite:///{folder / (task.study + '.db')}"
    run_study(url, task, workers=jobs)
    result = finish(url, task, jobs=jobs)
    return result.winner.params if result.winner else None


def staffing(seeds: int, window: float, replications: int, jobs: int, folder: Path) -> dict:
    out = {}
    for metric, bound in BOUNDS.items():
        for lam in LOADS:
            c = exact_c(metric, lam, bound)
            assert WORKERS[0] < c < WORKERS[1], (metric, lam, c)
            found = []
            for seed in range(seeds):
                params = sweep(staffing_task(lam, metric, seed, window, replications), folder, jobs)
                found.append(None if params is None else int(params["workers"]))
            out[f"{metric}<={bound:g} @ {lam:g}/s"] = {"exact_c": c, "found": found,
                                                       "hits": sum(f == c for f in found), "seeds": seeds}
    return out


def cache_grid(che_bytes: float) -> tuple[int, int, int]:
    """A capacity grid around Che's answer (in KiB): +-40% in 2.5% steps, at most 33 values."""
    kib = che_bytes / 1024
    step = max(1, round(0.025 * kib))
    low = max(step, round(0.6 * kib / step) * step)
    return low, low + 32 * step, step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="staffing sweeps: seeds per load and constraint")
    parser.add_argument("--cache-seeds", type=int, default=5)
    parser.add_argument("--window", type=float, default=300.0, help="each trial's window, seconds")
    parser.add_argument("--cache-window", type=float, default=120.0)
    parser.add_argument("--replications", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        staff = staffing(args.seeds, args.window, args.replications, args.jobs, folder)
        t_staff = time.perf_counter() - t0
        che_bytes, che_objects = che_capacity_bytes(CACHE_TARGET)
        grid = cache_grid(che_bytes)
        caps = []
        for seed in range(args.cache_seeds):
            params = sweep(cache_task(seed, args.cache_window, args.replications, grid), folder, args.jobs)
            caps.append(None if params is None else int(params["capacity"]))
    errors = [None if c is None else round(c / che_bytes - 1, 4) for c in caps]
    both = {}
    for metric, bound in BOUNDS.items():  # per seed: the exact c at both loads
        rows = [v for k, v in staff.items() if k.startswith(metric)]
        both[f"{metric}<={bound:g}"] = f"{sum(all(r['found'][s] == r['exact_c'] for r in rows) for s in range(args.seeds))}/{args.seeds}"
    print(json.dumps({
        "machine": f"{platform.machine()} {os.cpu_count()} cpus", "window_s": args.window,
        "replications": args.replications,
        "staffing": staff, "seeds_exact_at_both_loads": both,
        "cache": {"target_hit_ratio": CACHE_TARGET, "che_capacity_bytes": che_bytes, "che_objects": che_objects,
                  "grid_kib": {"low": grid[0], "high": grid[1], "step": grid[2]}, "window_s": args.cache_window,
                  "found_bytes": caps, "relative_error": errors,
                  "within_5pct": f"{sum(e is not None and abs(e) <= 0.05 for e in errors)}/{len(errors)}"},
        "seconds": {"staffing": round(t_staff, 1), "total": round(time.perf_counter() - t0, 1)}}, indent=2))


if __name__ == "__main__":
    main()
