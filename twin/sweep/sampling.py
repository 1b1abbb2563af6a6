"""How a study chooses its trials' parameters without wasting trials.

Every trial of a study runs on load 0 with seed 0 (common random numbers), so running the same
parameters twice gives the same numbers twice.  Hence:

- **Small discrete spaces are searched exhaustively.**  When the product of the tunables' domain
  sizes is at most ``trials``, or the only tunable is an int with at most ``SMALL_INT`` values,
  trial n takes the first point, in an order drawn from the task's seed, that no trial numbered
  below n holds (warm starts first: they are queued), and the study runs exactly one trial per
  point: fewer than
  ``trials`` when the space is smaller (a further trial could only repeat one), and more for a
  single int tunable with more values than ``trials`` (a staffing range of 40 values searched in
  25 trials can leave its exact optimum unsampled).  Trial n's point depends on the trials below
  n only (it waits, a few seconds at most, for those just created to have their parameters), not
  on which worker asks: the same seed gives the same trials with any number of workers (a trial
  a second worker asks beyond the budget is a surplus: failed unrun, counted nowhere).  (The
  points are not queued as waiting trials: two processes on SQLite can pop the same one.)
- **Otherwise the configured sampler proposes.**  ``random`` draws trial n's parameters from a
  generator seeded by the task's seed and n alone, so it too gives the same trials with any
  number of workers.  TPE, GP and NSGA-II learn from the trials finished when they ask, which
  with several workers depends on their timing; making trial n wait for trials < n would run the
  workers one at a time, so with more than one worker they are not repeatable.
- **A proposal already run is reused, not run.**  The new trial is told the finished trial's
  values, state and constraints (the sampler learns that it asked again), is marked with the
  user attribute ``reuse_of`` (the number of the trial it copies) and does not count towards
  ``trials``: the budget is spent on new points.  So that a sampler that keeps proposing known
  points still ends, a study makes at most ``trials`` reuses, and a finite space whose every
  point has run ends the study.
"""

from __future__ import annotations

import math
import time

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

SMALL_INT = 64  # a single int tunable with at most this many values is tried at every value
REUSE_OF = "reuse_of"
_COPIED = ("metrics", "constraints", "pruned_on", "error")


def domain_size(dist) -> int | None:
    """How many values a distribution holds (None: a continuum)."""
    if isinstance(dist, CategoricalDistribution):
        return len(dist.choices)
    if isinstance(dist, IntDistribution):
        return (dist.high - dist.low) // dist.step + 1
    if isinstance(dist, FloatDistribution) and dist.step is not None:
        return int(math.floor((dist.high - dist.low) / dist.step + 1e-9)) + 1
    return None


def space_size(dists: dict) -> int | None:
    sizes = [domain_size(d) for d in dists.values()]
    return None if any(s is None for s in sizes) else math.prod(sizes)


def exhaustive(dists: dict, trials: int) -> bool:
    """Whether the space is searched point by point (see the module's docstring)."""
    size = space_size(dists)
    if size is None:
        return False
    single_int = len(dists) == 1 and isinstance(next(iter(dists.values())), IntDistribution)
    return size <= trials or (single_int and size <= SMALL_INT)


def planned_trials(dists: dict, trials: int) -> int:
    """The trials a study runs: one per point of an exhaustive space, else ``trials``."""
    return space_size(dists) if exhaustive(dists, trials) else trials


def _values(dist) -> list:
    if isinstance(dist, CategoricalDistribution):
        return list(dist.choices)
    if isinstance(dist, IntDistribution):
        return list(range(dist.low, dist.high + 1, dist.step))
    return [float(dist.low + i * dist.step) for i in range(domain_size(dist))]


def grid(dists: dict, seed: int) -> list[dict]:
    """Every point of a finite space, in an order drawn from ``seed``."""
    names = list(dists)
    axes = [_values(dists[n]) for n in names]
    points = [dict(zip(names, combo)) for combo in _product(axes)]
    order = np.random.default_rng([seed, 0x6772]).permutation(len(points))
    return [points[i] for i in order]


def _product(axes):
    if not axes:
        yield ()
        return
    for v in axes[0]:
        for rest in _product(axes[1:]):
            yield (v, *rest)


class PerTrialRandomSampler(optuna.samplers.RandomSampler):
    """Random search whose trial n draws from a generator seeded by (seed, n, parameter) only,
    so the trials do not depend on which worker asks first."""

    def __init__(self, seed: int):
        super().__init__(seed=seed)
        self._base_seed = int(seed)

    def sample_independent(self, study, trial, param_name, param_distribution):
        seed = np.random.SeedSequence([self._base_seed, trial.number, *param_name.encode()]).generate_state(1)[0]
        return optuna.samplers.RandomSampler(seed=int(seed)).sample_independent(
            study, trial, param_name, param_distribution)


class ExhaustiveSampler(optuna.samplers.BaseSampler):
    """Trial n takes the first of ``points`` that no trial numbered below n holds (its parameters,
    or the ones it was queued with); when every point is held, ``fallback`` proposes (and the
    worker then reuses the result of the trial that ran it)."""

    WAIT_S = 5.0  # for trials created just before this one to get their parameters

    def __init__(self, points: list[dict], fallback):
        self._points, self._fallback, self._choice = points, fallback, None

    def infer_relative_search_space(self, study, trial):
        return {}

    def sample_relative(self, study, trial, search_space):
        return {}

    def before_trial(self, study, trial):
        self._choice = None
        if "fixed_params" in trial.system_attrs:  # a queued trial (warm start, retry): its own parameters
            return
        deadline = time.monotonic() + self.WAIT_S
        while True:
            earlier = [t for t in study.get_trials(deepcopy=False) if t.number < trial.number]
            pending = [t for t in earlier if t.state == TrialState.RUNNING and not t.params
                       and "fixed_params" not in t.system_attrs]
            if not pending or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        taken = {_key(t.system_attrs.get("fixed_params") or t.params) for t in earlier}
        self._choice = next((p for p in self._points if _key(p) not in taken), None)

    def sample_independent(self, study, trial, param_name, param_distribution):
        if self._choice is not None and param_name in self._choice:
            return self._choice[param_name]
        return self._fallback.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study, trial, state, values):
        self._fallback.after_trial(study, trial, state, values)


def _key(params: dict) -> str:
    return repr(sorted((k, float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v)
                       for k, v in params.items()))


def finished_twin(study, params: dict, number: int):
    """A finished trial (complete, pruned, or failed on its own) with exactly ``params``, not a
    reuse itself and not trial ``number``; None when there is none."""
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)):
        if t.number == number or REUSE_OF in t.user_attrs or t.params != params:
            continue
        if t.state != TrialState.FAIL or "error" in t.user_attrs:
            return t
    return None


def reuse(study, trial, twin) -> TrialState:
    """Tell ``trial`` what ``twin`` gave: its values, state and constraints, marked as a reuse."""
    trial.set_user_attr(REUSE_OF, twin.number)
    for k in _COPIED:
        if k in twin.user_attrs:
            trial.set_user_attr(k, twin.user_attrs[k])
    from .study import _quiet

    with _quiet():  # the constraints as the sampler reads them (Trial.set_constraint's "constraints:NAME")
        for key, value in twin.system_attrs.items():
            if key.startswith("constraints:"):
                trial.set_constraint(key.split(":", 1)[1], value)
    if twin.state == TrialState.COMPLETE:
        study.tell(trial, list(twin.values))
    elif twin.state == TrialState.PRUNED:
        for step, value in twin.intermediate_values.items():
            trial.report(value, step)
        study.tell(trial, state=TrialState.PRUNED)
    else:
        study.tell(trial, state=TrialState.FAIL)
    return twin.state


def is_reuse(trial) -> bool:
    return REUSE_OF in trial.user_attrs


__all__ = ["ExhaustiveSampler", "PerTrialRandomSampler", "SMALL_INT", "domain_size", "exhaustive", "finished_twin", "grid", "is_reuse",
           "planned_trials", "reuse", "space_size"]
