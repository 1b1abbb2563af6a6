"""Hold-out check of a run's recommendations: each regime's recommended setting re-run on windows
the sweep never saw.

``twin run`` chose each regime's setting on trials of load 0 and finalists on loads 1..R (at most
``sweep.replication_cap``).  Here the setting runs again on ``windows`` further loads of the same
regime (its rate, mix, burstiness and edge cases; loads ``HOLDOUT_BASE`` + i, seeds likewise), each
``window_s`` long after its own warm-up, as an SLO is judged: per window.  For every constraint
the number of windows that met it, and the windows' values; a setting *holds* when each
constraint is met in at least ``require`` of the windows.  The figures are out of sample for the
sweep (other loads and seeds), though still on the twin.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .spec import Problem, SpecError, load_model
from .spec.experiment import Experiment

#: the first hold-out load: far above any replication a sweep runs (``max_replications`` <= 800)
HOLDOUT_BASE = 10_000


@dataclass(frozen=True)
class Verdict:
    regime: str
    params: dict
    constraints: dict[str, float]
    values: dict[str, list[float]]  # per constraint: each window's value
    require: float

    def met(self, metric: str) -> int:
        bound = self.constraints[metric]
        return sum(1 for v in self.values[metric] if math.isfinite(v) and v <= bound)

    @property
    def windows(self) -> int:
        return len(next(iter(self.values.values()), []))

    @property
    def holds(self) -> bool:
        return all(self.met(m) >= self.require * self.windows - 1e-9 for m in self.constraints)

    def to_dict(self) -> dict:
        return {"regime": self.regime, "params": self.params, "windows": self.windows, "require": self.require,
                "holds": self.holds,
                "constraints": {m: {"bound": b, "met": self.met(m), "values": self.values[m]}
                                for m, b in self.constraints.items()}}


def _run_window(task_json: str, params: dict, r: int) -> dict:
    from .sweep.task import Evaluator, SweepTask

    ev = Evaluator(SweepTask.from_json(task_json))
    out = ev.run(params, r)
    return {k: float(v) for k, v in out.items() if isinstance(v, (int, float))}


def verify(exp: Experiment, folder: Path, *, windows: int = 8, window_s: float = 900.0, warmup_s: float | None = None,
           require: float = 7 / 8, jobs: int = 1,
           progress: Callable[[str, int, int], None] | None = None) -> list[Verdict]:
    """Re-run each regime's winner (``folder``/sweep/REGIME.json) on ``windows`` hold-out windows;
    see the module.  Raises ``SpecError`` when the run folder has no finished sweep."""
    from .pipeline import regime_task
    from .sim.replicate import process_pool

    sweeps = sorted((folder / "sweep").glob("*.json")) if (folder / "sweep").is_dir() else []
    regimes_path = folder / "regimes.json"
    if not sweeps or not regimes_path.is_file():
        raise SpecError([Problem("run folder", "expected a finished `twin run` (regimes.json and sweep/*.json); "
                                 "run `twin run EXPERIMENT` first", str(folder))])
    model = load_model(folder / "model.yaml")
    regimes = json.loads(regimes_path.read_text())["regimes"]
    warmup = exp.sweep.warmup if warmup_s is None else warmup_s
    sweep = exp.sweep.model_copy(update={"window": window_s + warmup, "warmup": warmup, "window_policy": "warn"})
    exp = exp.model_copy(update={"sweep": sweep})
    out = []
    for index, regime in enumerate(regimes):
        path = folder / "sweep" / f"{regime['name']}.json"
        if not path.is_file():
            continue
        doc = json.loads(path.read_text())
        winner = doc["result"].get("winner")
        if winner is None:
            continue
        task = regime_task(exp, model, regime, index)
        text = task.to_json()
        loads = [HOLDOUT_BASE + i for i in range(windows)]
        with process_pool(jobs) if jobs > 1 else _Serial() as pool:
            futures = [pool.submit(_run_window, text, winner["params"], r) for r in loads]
            rows = []
            for k, f in enumerate(futures):
                rows.append(f.result())
                if progress:
                    progress(f"verify {regime['name']}", k + 1, len(futures))
        constraints = dict(doc["result"]["constraints"])
        values = {m: [r.get(m, math.nan) for r in rows] for m in constraints}
        out.append(Verdict(regime["name"], dict(winner["params"]), constraints, values, require))
    return out


class _Serial:
    """A stand-in for a process pool: runs each call at once."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def submit(self, fn, *args):
        from concurrent.futures import Future

        f = Future()
        f.set_result(fn(*args))
        return f


__all__ = ["HOLDOUT_BASE", "Verdict", "verify"]
