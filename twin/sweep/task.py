"""What one study runs, self-contained: the model, the regime's load, the edge cases, the settings.

A ``SweepTask`` is stored with its Optuna study (as a study attribute), so a ``twin sweep
--worker`` on another machine rebuilds exactly the same workloads from it, with nothing else.

Common random numbers: every trial of a study faces workload 0 and simulation seed 0; the
finalists' replications r = 1..R all face workload r and seed r (never 0: the trials' own load,
on which the finalists were chosen, would bias them towards feasible).  Workload r is drawn from
``(seed, r)``, so it is the same in every process.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from ..load import scenarios as edge_cases
from ..load.fit import mmpp_for_dispersion
from ..load.profile_workload import workload as synthesize
from ..sim.engine import run_replication
from ..sim.warmup import Warmup, detect_warmup
from ..sim.workload import Workload
from ..spec import SystemModel, validate_model
from ..spec.experiment import Sweep

#: sweep settings a task does not carry: the storage URL (a worker is given it; it may hold a password)
NOT_STORED = ("storage",)


@dataclass
class SweepTask:
    study: str
    model: dict  # the model as dumped, edge cases' model edits applied
    profile: dict  # {"step_s": s, "columns": {name: [values per step]}}: the regime's load window
    scenarios: list = field(default_factory=list)
    settings: dict = field(default_factory=dict)
    seed: int = 0

    def __post_init__(self):
        # where the study lives is no part of it, and its URL may hold a password: never stored
        self.settings = {k: v for k, v in self.settings.items() if k not in NOT_STORED}

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "SweepTask":
        return cls(**json.loads(text))

    @property
    def sweep(self) -> Sweep:
        return Sweep.model_validate(self.settings)

    def system_model(self) -> SystemModel:
        return validate_model(self.model, source=f"study {self.study}")


def profile_frame(profile: dict) -> pd.DataFrame:
    """The regime's load window as a load profile (one row per step)."""
    columns = profile["columns"]
    n = len(next(iter(columns.values())))
    idx = pd.date_range("2000-01-01", periods=n, freq=pd.Timedelta(seconds=profile["step_s"]), tz="UTC")
    return pd.DataFrame(columns, index=idx)


def window_profile(rates: dict[str, float], window_s: float, step_s: float = 60.0) -> dict:
    """A flat load window of exactly ``window_s`` at the given values (requests_per_s, mix_*...),
    in steps of about ``step_s``."""
    n = max(1, int(math.ceil(window_s / step_s)))
    return {"step_s": float(window_s) / n, "columns": {k: [float(v)] * n for k, v in rates.items()}}


class Evaluator:
    """Runs trials of one task; workloads are made once per process and reused (CRN)."""

    def __init__(self, task: SweepTask):
        self.task = task
        self.model = task.system_model()
        self.sweep = task.sweep
        self.cases = edge_cases.parse(task.scenarios, source=f"study {task.study}") if task.scenarios else []
        self._workloads: dict[int, Workload] = {}

    def workload(self, r: int) -> Workload:
        if r not in self._workloads:
            rng = np.random.default_rng([self.task.seed, r])
            load_rng, edit_rng = rng.spawn(2)
            frame = profile_frame(self.task.profile)
            bursts = None
            if "burstiness" in frame:  # the regime's burstiness, as a two-state MMPP of the same index
                bursts = mmpp_for_dispersion(float(frame["requests_per_s"].mean()), float(frame["burstiness"].mean()))
            w = synthesize(frame.drop(columns=["burstiness"], errors="ignore"), self.model, load_rng, bursts=bursts,
                           window_field="sweep.window")
            load_cases = [c for c in self.cases if c.acts_on == "load"]
            if load_cases:
                _, w = edge_cases.apply(load_cases, self.model, w, edit_rng)
            self._workloads[r] = w
        return self._workloads[r]

    def run(self, params: dict, r: int = 0, *, fraction: float = 1.0) -> dict[str, float]:
        """Metrics of one run with ``params``: workload r, seed r, over the first ``fraction`` of the window."""
        w = self.workload(r)
        if fraction < 1.0:
            end = w.duration_s * fraction
            keep = w.time_s < end
            w = Workload(w.time_s[keep], w.cls[keep], w.size_bytes[keep], w.key[keep], w.session[keep],
                         w.class_names, end)
        warmup = min(self.sweep.warmup, 0.5 * w.duration_s)
        result = run_replication(self.model, w, params=params, seed=np.random.SeedSequence([self.task.seed, r]),
                                 warmup_s=warmup, warm_caches=self.sweep.warm_caches)
        return result.metrics()


def detected_warmup(evaluator: Evaluator, params: dict, r: int = 0) -> Warmup:
    """MSER-5's warm-up on run r of ``params`` (workload r, seed r, the whole window, as ``run`` runs it)."""
    w = evaluator.workload(r)
    result = run_replication(evaluator.model, w, params=params,
                             seed=np.random.SeedSequence([evaluator.task.seed, r]),
                             warmup_s=min(evaluator.sweep.warmup, 0.5 * w.duration_s),
                             warm_caches=evaluator.sweep.warm_caches)
    return detect_warmup(result)


def constraint_values(metrics: dict[str, float], constraints: dict[str, float]) -> list[float]:
    """Optuna's convention: <= 0 is feasible.  A metric's excess over its bound, relative to the
    bound (absolute where the bound is 0); an undefined metric (no request succeeded) is infeasible."""
    out = []
    for name, bound in constraints.items():
        v = metrics.get(name, math.nan)
        if not math.isfinite(v):
            out.append(1.0)
        else:
            out.append((v - bound) / bound if bound > 0 else v)
    return out


def replications_met(replications: list[dict], constraints: dict[str, float]) -> int:
    """How many replications (metrics per run) held every constraint; an undefined metric does not."""
    def holds(r):
        return all(r.get(m) is not None and math.isfinite(r[m]) and r[m] <= b for m, b in constraints.items())

    return sum(holds(r) for r in replications)


__all__ = ["Evaluator", "SweepTask", "constraint_values", "detected_warmup", "profile_frame", "replications_met",
           "window_profile"]
