"""Two sweep workers against one: the same fixed study on the PostgreSQL server, wall time.

A study of ``--trials`` trials on the reference cache tier (models/reference/cache_tier.yaml,
200 requests/s, 2-minute windows, no pruning so that every trial costs the same) is created on
the PostgreSQL storage, then run to completion by one ``twin sweep --worker`` process; a fresh
copy of the study is then run by two worker processes started together.  The ratio of the two
wall times is the speed-up; both include the workers' start-up (imports, kernel loading), as a
user running workers pays it.

    python benchmarks/sweep_workers.py [--url postgresql://postgres@127.0.0.1:5432/test --trials 40]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
import uuid
from pathlib import Path

import optuna

from twin.spec import load_model
from twin.spec.experiment import Sweep
from twin.sweep.study import close_storage, create_study, open_storage
from twin.sweep.task import SweepTask, window_profile

ROOT = Path(__file__).resolve().parent.parent


def make(storage, trials: int) -> str:
    model = load_model(ROOT / "models" / "reference" / "cache_tier.yaml")
    sweep = Sweep(minimize=["cost"], constraints={"latency_p95_s": 0.05}, trials=trials, window=120, warmup=30,
                  prune=False)
    name = f"bench-workers-{uuid.uuid4().hex[:8]}"
    create_study(storage, SweepTask(study=name, model=model.model_dump(by_alias=True),
                                    profile=window_profile({"requests_per_s": 200.0}, 120),
                                    settings=sweep.model_dump(), seed=1))
    return name


def run(url: str, name: str, workers: int) -> float:
    t0 = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-m", "twin", "sweep", "--storage", url, "--study", name, "--worker",
                               "--worker-index", str(i)], stdout=subprocess.DEVNULL) for i in range(workers)]
    for p in procs:
        if p.wait() != 0:
            raise SystemExit(f"worker failed with status {p.returncode}")
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("TWIN_TEST_POSTGRES_URL",
                                                        "postgresql://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--trials", type=int, default=40)
    args = parser.parse_args()
    storage = open_storage(args.url)
    names = [make(storage, args.trials) for _ in range(2)]
    try:
        one = run(args.url, names[0], 1)
        two = run(args.url, names[1], 2)
        done = [len(optuna.load_study(study_name=n, storage=storage).get_trials(
            states=(optuna.trial.TrialState.COMPLETE,))) for n in names]
    finally:
        for n in names:
            optuna.delete_study(study_name=n, storage=storage)
        close_storage(storage)
    print(f"sweep_workers: {platform.machine()} {os.cpu_count()} cpus | {args.trials} trials on PostgreSQL "
          f"({args.url.split('@')[-1]}) | 1 worker {one:.1f} s, 2 workers {two:.1f} s: {one / two:.2f}x "
          f"| completed trials {done[0]} and {done[1]}")


if __name__ == "__main__":
    main()
