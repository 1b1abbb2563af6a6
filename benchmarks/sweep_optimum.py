"""Does the sweep find the optimum?  TPE (twin's default sampler) against random search, both
judged against an exhaustive grid on the twin.

The reference model is ``models/reference/cache_tier.yaml``: a read-through cache in front of a
database, where memory and database instances both cost money.  The question is the sweep's:
the cheapest (db_instances, cache_size, data_structure) that keeps the p95 latency under 50 ms
at 200 requests/s.  Every point of the grid (8 x 16 x 3 = 384) is run on the twin under the same
workload and seed that every trial of a study sees (common random numbers), in ``--jobs``
processes; the optimum is the cheapest feasible point.  A trial's result is then exactly the
grid's result for its parameters, so studies of any sampler and seed replay from the grid with
twin's own trial code (``twin.sweep.study.run_trial``) and cost nothing more.

For each of ``--seeds`` seeds and each sampler, the number of trials until the best feasible
trial is within 2% of the optimum's cost (at most ``--trials``), and the best cost after
``--trials`` trials.

    python benchmarks/sweep_optimum.py [--seeds 21 --trials 60 --jobs 2]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import optuna

from twin.spec import load_model
from twin.spec.experiment import Sweep
from twin.sweep.study import distributions, make_sampler, run_trial
from twin.sweep.task import Evaluator, SweepTask, window_profile

ROOT = Path(__file__).resolve().parent.parent
SLO = {"latency_p95_s": 0.05}


def task(seed: int = 0, sampler: str = "tpe", trials: int = 60) -> SweepTask:
    model = load_model(ROOT / "models" / "reference" / "cache_tier.yaml")
    sweep = Sweep(minimize=["cost"], constraints=SLO, trials=trials, window=120, warmup=30, prune=False,
                  sampler=sampler)
    return SweepTask(study=f"optimum-{sampler}-{seed}", model=model.model_dump(by_alias=True),
                     profile=window_profile({"requests_per_s": 200.0}, 120), settings=sweep.model_dump(), seed=seed)


_EV = {}


def evaluate(params: dict) -> dict:
    ev = _EV.get("ev") or _EV.setdefault("ev", Evaluator(task()))
    return ev.run(params)


class Replay(Evaluator):
    """The grid's result for the parameters: what the twin gives for them under the study's CRN."""

    def __init__(self, t, grid):
        super().__init__(t)
        self.grid = grid

    def run(self, params, r=0, *, fraction=1.0):
        return self.grid[key(params)]


def key(params: dict) -> tuple:
    return (int(params["db_instances"]), int(params["cache_size"]), str(params["data_structure"]))


def study(t: SweepTask, grid: dict) -> list[float]:
    """Best feasible cost after each trial (inf until one is feasible)."""
    s = optuna.create_study(directions=["minimize"], sampler=make_sampler(t))
    ev = Replay(t, grid)
    dists = distributions(ev.model, None)
    best, out = float("inf"), []
    for _ in range(t.sweep.trials):
        trial = s.ask(dists)
        run_trial(s, trial, ev, dists)
        frozen = s.trials[-1]
        if frozen.values and all(c <= 0 for c in frozen.user_attrs["constraints"]):
            best = min(best, frozen.values[0])
        out.append(best)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=21)
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    model = load_model(ROOT / "models" / "reference" / "cache_tier.yaml")
    t = model.tunables
    points = [{"db_instances": d, "cache_size": c, "data_structure": s}
              for d, c, s in itertools.product(range(int(t["db_instances"].low), int(t["db_instances"].high) + 1),
                                               range(int(t["cache_size"].low), int(t["cache_size"].high) + 1,
                                                     int(t["cache_size"].step)),
                                               t["data_structure"].choices)]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(args.jobs) as pool:
        results = list(pool.map(evaluate, points, chunksize=4))
    grid_s = time.perf_counter() - t0
    grid = {key(p): r for p, r in zip(points, results)}
    feasible = {k: r["cost"] for k, r in grid.items() if r["latency_p95_s"] <= SLO["latency_p95_s"]}
    best_key = min(feasible, key=feasible.get)
    optimum = feasible[best_key]
    summary = {}
    for sampler in ("tpe", "random"):
        reach, final = [], []
        for seed in range(args.seeds):
            curve = study(task(seed, sampler, args.trials), grid)
            hit = [i + 1 for i, v in enumerate(curve) if v <= 1.02 * optimum]
            reach.append(hit[0] if hit else None)
            final.append(curve[-1] / optimum)
        got = [r for r in reach if r is not None]
        summary[sampler] = {
            "reached_within_2pct": f"{len(got)}/{args.seeds}",
            "median_trials_to_2pct": float(np.median([r if r is not None else np.inf for r in reach])),
            "median_best_over_optimum_at_end": float(np.median(final)),
            "mean_best_over_optimum_at_end": float(np.mean(final)),
        }
    print(json.dumps({"machine": f"{platform.machine()} {os.cpu_count()} cpus", "grid_points": len(points),
                      "feasible_points": len(feasible), "grid_seconds": round(grid_s, 1),
                      "optimum": {"params": dict(zip(("db_instances", "cache_size_MiB", "data_structure"),
                                                     (best_key[0], best_key[1] // 2**20, best_key[2]))),
                                  "cost": optimum, "latency_p95_s": grid[best_key]["latency_p95_s"]},
                      "trials": args.trials, "seeds": args.seeds, "samplers": summary}, indent=2))


if __name__ == "__main__":
    main()
