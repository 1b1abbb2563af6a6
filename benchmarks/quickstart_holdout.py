"""Does the quickstart's schedule hold up?  (issue 12's quickstart targets)

For each of ``--seeds`` seeds, ``experiments/quickstart.yaml`` runs end to end with that seed
(``twin run``), then every regime's recommended setting is re-run on ``--windows`` hold-out
windows of ``--window`` seconds (``twin verify``: the regime's load and edge cases on loads and
seeds the sweep never ran) and each SLO is counted per window.  Prints one JSON document:

- per seed and regime: the recommended setting, each constraint's windows met, and whether it
  holds (met in at least 7 of 8);
- whether the capacity settings (tunables that are capacities: instances, workers, sizes) are
  the same for every seed, per regime;
- the parameters reported with no measurable (or a negligible) effect.

    python benchmarks/quickstart_holdout.py [--seeds 7 8 9 10 11 --windows 8 --window 900 --jobs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import yaml

from twin.pipeline import load_experiment, run
from twin.spec import load_model
from twin.sweep.study import CAPACITY_FIELDS
from twin.verify import verify

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENT = ROOT / "experiments" / "quickstart.yaml"


def with_seed(seed: int, folder: Path) -> Path:
    """The quickstart with another seed, its paths made absolute."""
    doc = yaml.safe_load(EXPERIMENT.read_text())
    doc["seed"] = seed
    doc["model"] = str((EXPERIMENT.parent / doc["model"]).resolve())
    doc["history"]["series"] = str((EXPERIMENT.parent / doc["history"]["series"]).resolve())
    path = folder / f"quickstart-{seed}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def capacities(model) -> list[str]:
    return [n for n, t in model.tunables.items() if t.type != "categorical"
            and (t.monotone is not None or t.targets[0].rsplit(".", 1)[-1] in CAPACITY_FIELDS)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[7, 8, 9, 10, 11])
    p.add_argument("--windows", type=int, default=8)
    p.add_argument("--window", type=float, default=900.0)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--keep", type=Path, help="keep the run folders here")
    a = p.parse_args()
    t0 = time.perf_counter()
    rows, runs_s = [], []
    with tempfile.TemporaryDirectory() as tmp:
        base = a.keep or Path(tmp)
        base.mkdir(parents=True, exist_ok=True)
        for seed in a.seeds:
            path = with_seed(seed, base)
            folder = base / f"run-{seed}"
            t = time.perf_counter()
            run(path, out=folder, say=lambda *_: None)
            runs_s.append(round(time.perf_counter() - t, 1))
            exp = load_experiment(path)
            model = load_model(folder / "model.yaml")
            caps = capacities(model)
            for v in verify(exp, folder, windows=a.windows, window_s=a.window, jobs=a.jobs):
                doc = json.loads((folder / "sweep" / f"{v.regime}.json").read_text())
                effects = doc["result"].get("effects", {})
                rows.append({"seed": seed, "regime": v.regime,
                             "rate": doc["regime"]["representative"]["requests_per_s"],
                             "params": v.params, "capacity": {k: v.params.get(k) for k in caps},
                             "met": {m: f"{v.met(m)}/{v.windows}" for m in v.constraints}, "holds": v.holds,
                             "no_effect": sorted(k for k, e in effects.items()
                                                 if e["verdict"] in ("no measurable effect", "negligible effect")),
                             "effects": {k: e["verdict"] for k, e in effects.items()}})
                print(json.dumps(rows[-1]), flush=True)
    regimes = sorted({r["regime"] for r in rows})
    same = {g: len({json.dumps(r["capacity"], sort_keys=True) for r in rows if r["regime"] == g}) == 1
            for g in regimes}
    print(json.dumps({
        "machine": f"{platform.machine()} {os.cpu_count()} cpus", "seeds": a.seeds, "windows": a.windows,
        "window_s": a.window,
        "settings_holding": f"{sum(r['holds'] for r in rows)}/{len(rows)}",
        "same_capacity_settings_per_regime": same,
        "run_seconds": runs_s, "total_seconds": round(time.perf_counter() - t0, 1)}, indent=2))


if __name__ == "__main__":
    main()
