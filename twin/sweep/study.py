"""Optuna studies on the twin, by ask and tell, on a storage any number of workers can share.

``run_study`` creates (or resumes) the study of one ``SweepTask`` and runs its trials in
``workers`` processes on this machine; ``work`` is one worker's loop, the same that ``twin sweep
--worker`` runs on another machine against a PostgreSQL URL.  Workers record a heartbeat while a
trial runs; a worker that dies leaves its trial stale, and the next worker to look marks it failed
and queues a copy (Optuna's ``RetryHeartbeatStaleTrialCallback``), so no trial is lost and none
is counted twice.

A trial runs the twin once on the study's workload 0 with seed 0 (common random numbers).  With
constraints and ``prune``, it first runs the first third of the window: a trial that already
breaks a constraint by ``prune_factor`` there is pruned.  Without constraints, a single objective
is pruned by Optuna's median rule on that partial value.  ``finish`` then re-runs the leading
candidates on ``replications`` independent loads and declares a winner only with confidence
intervals: a finalist whose interval overlaps the winner's is a tie.  Those loads are loads
1..R (``replication_load``), never load 0, the trials' own: a finalist was chosen because its
run on load 0 went well, and judging it on that run again would bias it towards feasible.

The winner's parameters with no measurable effect (paired intervals on those replications) are
then left at the current settings, and ties go to the current settings, then fewer resources
(``twin.sweep.noise``, ``_break_tie``).

Which parameters each trial gets (small discrete spaces exhaustively, repeats reused and not
counted, what is repeatable with several workers) is ``twin.sweep.sampling``'s; parameter
importance per objective and constraint is ``twin.sweep.importance``'s.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import optuna
import sqlalchemy as sa
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from ..dburl import cannot_open, database_url
from ..rundir import crash_point
from ..sim.replicate import LATENCY_QUANTILES, process_pool
from ..sim.stats import Estimate, estimate, pooled_mean, pooled_quantile
from ..spec import SystemModel, TwinError
from ..spec.loader import current_params
from .importance import study_importance
from .noise import settle
from .sampling import (ExhaustiveSampler, PerTrialRandomSampler, exhaustive, finished_twin, grid, is_reuse,
                       planned_trials, reuse, space_size)
from .task import Evaluator, SweepTask, constraint_values, replications_met

HEARTBEAT_S = 3
GRACE_S = 12
POLL_S = 0.5  # how often an idle worker looks for the last trials' outcome
TASK_ATTR = "twin.task"
PARTIAL = 1 / 3  # the partial window a trial is judged on before it runs whole

optuna.logging.set_verbosity(optuna.logging.WARNING)


@contextmanager
def _quiet():
    """Optuna's warnings about experimental features, and that heartbeats are meant for
    ``optimize`` (twin beats them itself around ask and tell), are not the user's business."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.filterwarnings("ignore", "Heartbeat of storage", UserWarning)
        yield


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """An RDB storage with heartbeats, or a ``TwinError`` that says why the URL cannot be used."""
    url = database_url(url, "storage", "runs/x/studies.db")
    # a writer waits for SQLite's lock less than the grace period, so its heartbeat is never stale meanwhile
    kwargs = {"connect_args": {"timeout": GRACE_S / 2}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    try:
        with _quiet():
            return optuna.storages.RDBStorage(
                url, engine_kwargs=kwargs, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S,
                heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=3))
    except Exception as e:  # sqlalchemy raises many kinds; the user needs the URL and the reason
        raise cannot_open("storage", url, e) from None


def close_storage(storage) -> None:
    """Give back the storage's pooled connections."""
    storage.remove_session()
    storage.engine.dispose()


@contextmanager
def _storage(storage_or_url):
    """The storage itself, or one opened from a URL for the duration (then closed)."""
    if not isinstance(storage_or_url, str):
        yield storage_or_url
        return
    storage = open_storage(storage_or_url)
    try:
        yield storage
    finally:
        close_storage(storage)


def distributions(model: SystemModel, names: list[str] | None) -> dict:
    """Optuna distributions of the model's tunables (all of them, or ``names``)."""
    out = {}
    for name in names or list(model.tunables):
        t = model.tunables[name]
        if t.type == "categorical":
            out[name] = CategoricalDistribution(list(t.choices))
        elif t.type == "int":
            out[name] = IntDistribution(int(t.low), int(t.high), log=t.log, step=int(t.step or 1))
        else:
            out[name] = FloatDistribution(t.low, t.high, log=t.log, step=t.step)
    return out


def make_sampler(task: SweepTask, worker: int = 0, done: int = 0):
    """The sampler of one worker: seeded from the task's seed, the worker's number and the trials
    the study already holds (``done``), so that a resumed study does not propose again what it
    proposed before, while a fresh study with one worker is the same every time."""
    s = task.sweep
    seed = int(np.random.SeedSequence([task.seed, worker, done]).generate_state(1)[0])
    dists = distributions(task.system_model(), s.tunables)
    with _quiet():  # constraints reach the samplers through Trial.set_constraint
        if exhaustive(dists, s.trials):  # trial n: the first point no earlier trial holds
            return ExhaustiveSampler(grid(dists, task.seed), PerTrialRandomSampler(task.seed))
        if s.sampler == "random":  # trial n's draws depend on the seed and n only, not on the worker
            return PerTrialRandomSampler(task.seed)
        if s.sampler == "nsga2":
            return optuna.samplers.NSGAIISampler(seed=seed)
        if s.sampler == "gp":
            return optuna.samplers.GPSampler(seed=seed)
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=min(10, max(3, s.trials // 5)))


def load_study(storage, name: str, task: SweepTask | None = None, worker: int = 0) -> tuple[optuna.Study, SweepTask]:
    """The study and its task (read from the study when not given)."""
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        known = [s.study_name for s in optuna.get_all_study_summaries(storage)]
        raise TwinError(f"study {name!r}: not in this storage; it has {', '.join(known) or 'no studies'}") from None
    if task is None:
        text = study.user_attrs.get(TASK_ATTR)
        if text is None:
            raise TwinError(f"study {name!r} was not made by twin (no {TASK_ATTR} attribute)")
        task = SweepTask.from_json(text)
    study.sampler = make_sampler(task, worker, len(study.get_trials(deepcopy=False)))
    if len(task.sweep.objectives) == 1 and not task.sweep.constraints and task.sweep.prune:
        study.pruner = optuna.pruners.MedianPruner(n_startup_trials=5)
    return study, task


def create_study(storage, task: SweepTask, warm: list[dict] = ()) -> optuna.Study:
    """Create the task's study (or find it, to resume) and queue the warm-start parameters."""
    with _storage(storage) as storage:
        return _create_study(storage, task, warm)


def _create_study(storage, task: SweepTask, warm) -> optuna.Study:
    directions = [d for _, d in task.sweep.objectives]
    study = optuna.create_study(storage=storage, study_name=task.study, directions=directions, load_if_exists=True)
    old = study.user_attrs.get(TASK_ATTR)
    if old is not None and _same_but_trials(old) != _same_but_trials(task.to_json()):
        raise TwinError(f"study {task.study!r} exists in this storage with other settings or load; give the run "
                        f"another name, or another storage, to start afresh")
    study.set_user_attr(TASK_ATTR, task.to_json())  # a rerun may ask for more trials
    if old is None:
        study.set_user_attr("objectives", [m for m, _ in task.sweep.objectives])
        study.set_user_attr("constraints", task.sweep.constraints)
        model = task.system_model()
        names = list(distributions(model, task.sweep.tunables))
        for params in warm:
            try:
                fitted = {k: model.tunables[k].coerce(params[k]) for k in names}
            except (KeyError, ValueError):  # swept over other tunables or bounds: not a start here
                continue
            study.enqueue_trial(fitted, user_attrs={"warm_start": True}, skip_if_exists=True)
    return study


#: settings a study may change between runs: how many trials, who runs them, and what is done
#: with them afterwards
AFTER_TRIALS = ("trials", "workers", "storage", "finalists", "replications", "tie_tolerance", "warm_start",
                "max_replications", "screen_margin", "compliance", "compliance_confidence")


def _same_but_trials(text: str) -> dict:
    data = json.loads(text)
    data["settings"] = {k: v for k, v in data["settings"].items() if k not in AFTER_TRIALS}
    return data


def task_digest(task: SweepTask) -> str:
    """A short digest of what shapes a study's trials (model, load, edge cases, objectives...):
    twin run names its studies with it, so a changed setting starts a new study."""
    import hashlib

    return hashlib.sha256(json.dumps(_same_but_trials(task.to_json()), sort_keys=True).encode()).hexdigest()[:8]


class _Heartbeat:
    """Records the trial's heartbeat while it runs (Optuna does this itself only in ``optimize``)."""

    def __init__(self, storage, trial_id: int):
        self.storage, self.trial_id = storage, trial_id
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True)

    def _beat(self):
        while True:
            try:
                self.storage.record_heartbeat(self.trial_id)
            except Exception:  # a missed beat is retried; a dead storage ends the trial anyway
                pass
            if self.stop.wait(HEARTBEAT_S):
                return

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def _progress(study) -> tuple[int, int, int, int, int]:
    """(finished, running, waiting, reused, points) trials, read once.  Finished counts the trials
    that failed on their own (an undefined objective, with an ``error``), not those a dead worker
    left: those are queued again; nor reuses of a finished trial's result (``reused``), which do
    not count towards the budget.  ``points``: the distinct parameters finished."""
    finished = running = waiting = reused = 0
    points = set()
    for t in study.get_trials(deepcopy=False):
        if is_reuse(t):
            reused += t.state.is_finished()
            continue
        if t.state.is_finished() and t.params:
            points.add(repr(sorted(t.params.items())))
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED) or (
                t.state == TrialState.FAIL and "error" in t.user_attrs):
            finished += 1
        running += t.state == TrialState.RUNNING
        waiting += t.state == TrialState.WAITING
    return finished, running, waiting, reused, len(points)


def _fail_stale(study, *, orphans: bool = False):
    """Fail and queue again (the same parameters) the trials of dead workers: those whose
    heartbeat is older than the grace period (Optuna's check), those that never beat and started
    longer ago than the grace period (a worker killed between ask and its first heartbeat), and,
    with ``orphans``, every running trial (the caller knows no other worker is alive)."""
    with _quiet():
        optuna.storages.fail_stale_trials(study)
        storage = study._storage
        rdb = getattr(storage, "_backend", storage)  # Optuna wraps an RDB storage in a cache
        running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if not running:
            return
        if not orphans:
            from optuna.storages._rdb.models import TrialHeartbeatModel

            ids = [t._trial_id for t in running]
            with rdb.engine.connect() as conn:
                beating = set(conn.execute(sa.select(TrialHeartbeatModel.trial_id).where(
                    TrialHeartbeatModel.trial_id.in_(ids))).scalars())
            now = datetime.now()  # Optuna stamps datetime_start with the local clock
            running = [t for t in running if t._trial_id not in beating and t.datetime_start is not None
                       and (now - t.datetime_start).total_seconds() > rdb.grace_period]
        retry = rdb.get_heartbeat_stale_trial_callback()
        for t in running:
            try:
                if not storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL):
                    continue
            except optuna.exceptions.UpdateFinishedTrialError:  # another worker failed it first
                continue
            if retry is not None:
                retry(study, storage.get_trial(t._trial_id))


def objective_values(metrics: dict, sweep) -> list[float] | None:
    values = [float(metrics.get(m, math.nan)) for m, _ in sweep.objectives]
    return values if all(math.isfinite(v) for v in values) else None


def run_trial(study: optuna.Study, trial: optuna.Trial, ev: Evaluator, dists: dict) -> TrialState:
    """One trial: partial window (pruning), whole window, told to the study."""
    s = ev.sweep
    params = {k: trial.params[k] for k in dists}
    trial.set_user_attr("worker", f"{os.uname().nodename}:{os.getpid()}")
    if s.prune and (s.constraints or len(s.objectives) == 1):  # otherwise nothing could be pruned
        partial = ev.run(params, 0, fraction=PARTIAL)
        crash_point("trial-partial")
        excess = constraint_values(partial, s.constraints)
        values = objective_values(partial, s)
        if values is not None and len(values) == 1:
            trial.report(values[0], step=0)
        hopeless = any(c > s.prune_factor - 1 for c in excess) if excess else (
            len(s.objectives) == 1 and values is not None and trial.should_prune())
        if hopeless:
            trial.set_user_attr("pruned_on", {k: partial.get(k) for k in [*s.constraints, *[m for m, _ in s.objectives]]})
            _set_constraints(trial, s.constraints, excess)
            study.tell(trial, state=TrialState.PRUNED)
            return TrialState.PRUNED
    metrics = ev.run(params, 0)
    trial.set_user_attr("metrics", {k: v for k, v in metrics.items() if "." not in k})
    _set_constraints(trial, s.constraints, constraint_values(metrics, s.constraints))
    values = objective_values(metrics, s)
    if values is None:
        trial.set_user_attr("error", "an objective is undefined (no request succeeded in the window)")
        study.tell(trial, state=TrialState.FAIL)
        return TrialState.FAIL
    study.tell(trial, values)
    return TrialState.COMPLETE


def _set_constraints(trial, constraints: dict, values: list[float]) -> None:
    """For the sampler (Trial.set_constraint) and for twin's own ranking (a user attribute)."""
    trial.set_user_attr("constraints", values)
    with _quiet():
        for name, value in zip(constraints, values):
            trial.set_constraint(name, value)


def work(storage, study_name: str, *, worker: int = 0, max_trials: int | None = None,
         progress: Callable[[int, int], None] | None = None) -> int:
    """A worker's loop: ask, run, tell, until the study has its trials (retried ones included).
    Returns the number of trials this worker ran."""
    with _storage(storage) as storage:
        return _work(storage, study_name, worker, max_trials, progress)


def _work(storage, study_name, worker, max_trials, progress) -> int:
    study, task = load_study(storage, study_name, worker=worker)
    ev = Evaluator(task)
    dists = distributions(ev.model, task.sweep.tunables)
    target = planned_trials(dists, task.sweep.trials)
    size = space_size(dists)
    ran = 0
    idle_since, seen = None, None
    while max_trials is None or ran < max_trials:
        _fail_stale(study)
        finished, running, waiting, reused, points = _progress(study)
        if progress:
            progress(finished, target)
        if finished >= target and waiting == 0:
            break
        if waiting == 0 and running == 0 and (reused >= task.sweep.trials or (size is not None and points >= size)):
            break  # the sampler only proposes points already run, or there are no others
        if finished + running >= target and waiting == 0:
            # others are finishing the last trials; one may die and need a retry
            if seen != (finished, running):
                idle_since, seen = time.monotonic(), (finished, running)
            elif time.monotonic() - idle_since > _wait_limit(study):
                raise TwinError(f"study {study_name!r}: {running} trial(s) of other workers made no progress in "
                                f"{time.monotonic() - idle_since:.0f} s while beating their heartbeat; stopped "
                                f"waiting for them (run this worker again to go on)")
            time.sleep(POLL_S)
            continue
        idle_since, seen = None, None
        with _quiet():
            trial = study.ask(dists)
        crash_point("trial-asked")  # before the first heartbeat: the trial is running and has none
        if _surplus(study, trial, target):  # another worker took the last trial meanwhile: not run
            trial.set_user_attr(SURPLUS, True)
            study.tell(trial, state=TrialState.FAIL)
            continue
        twin = finished_twin(study, {k: trial.params[k] for k in dists}, trial.number)
        if twin is not None:  # the same parameters under the same load and seed: the same result
            reuse(study, trial, twin)
            continue
        with _Heartbeat(storage, trial._trial_id):
            try:
                run_trial(study, trial, ev, dists)
            except (ValueError, optuna.exceptions.UpdateFinishedTrialError):
                if storage.get_trial(trial._trial_id).state.is_finished():
                    continue  # judged stale by another worker meanwhile, and queued again: its copy runs
                raise
            except Exception as e:
                if not storage.get_trial(trial._trial_id).state.is_finished():
                    trial.set_user_attr("error", f"{type(e).__name__}: {e}")
                    study.tell(trial, state=TrialState.FAIL)
                raise
        ran += 1
        crash_point("trial-told")
    return ran


SURPLUS = "surplus"


def _surplus(study, trial, target: int) -> bool:
    """Whether a newly proposed trial is beyond the budget: ``target`` trials numbered below it
    already count (finished, running or queued; not reuses, nor a dead worker's, whose copy
    counts).  Two workers that both saw one trial left ask two; the later number is failed at
    once, not run, and counted nowhere, so the trials are those of one worker."""
    if "fixed_params" in study._storage.get_trial_system_attrs(trial._trial_id):
        return False  # queued (a warm start, a retry): always run
    live = 0
    for t in study.get_trials(deepcopy=False):
        if t.number >= trial.number or is_reuse(t) or t.user_attrs.get(SURPLUS):
            continue
        if t.state == TrialState.FAIL and "error" not in t.user_attrs:
            continue
        live += 1
    return live >= target


WAIT_FACTOR = 20  # a trial running this many times longer than the longest one done is taken for hung
MIN_WAIT_S = 600


def _wait_limit(study) -> float:
    """How long a worker waits for other workers' last trials with no change before it gives up."""
    took = [(t.datetime_complete - t.datetime_start).total_seconds()
            for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
            if t.datetime_complete and t.datetime_start]
    return max(MIN_WAIT_S, WAIT_FACTOR * max(took, default=0.0))


def _work_process(url: str, study_name: str, worker: int) -> int:
    return work(url, study_name, worker=worker)


def run_study(url: str, task: SweepTask, *, warm: list[dict] = (), workers: int = 1,
              progress: Callable[[int, int], None] | None = None,
              exclusive: bool = False) -> list[optuna.trial.FrozenTrial]:
    """Create or resume the task's study and run it to its number of trials in ``workers``
    processes; returns its trials.  ``exclusive``: no other worker uses this storage (a run
    folder's own, held by its lock), so a trial left running is a killed run's, retried at once."""
    with _storage(url) as storage:
        return _run_study(storage, url, task, warm, workers, progress, exclusive)


def _run_study(storage, url, task, warm, workers, progress, exclusive) -> list:
    study = create_study(storage, task, warm)
    target = planned_trials(distributions(task.system_model(), task.sweep.tunables), task.sweep.trials)
    if exclusive:  # no other worker can be alive: a running trial is one a killed run left
        _fail_stale(study, orphans=True)
    if workers <= 1:
        work(storage, task.study, progress=progress)
    else:
        with process_pool(workers) as pool:
            futures = [pool.submit(_work_process, url, task.study, i) for i in range(workers)]
            while not all(f.done() for f in futures):
                if progress:
                    progress(_progress(optuna.load_study(study_name=task.study, storage=storage))[0], target)
                time.sleep(0.5)
            for f in futures:
                f.result()
    study, _ = load_study(storage, task.study, task)
    if progress:
        progress(target, target)
    return study.get_trials()


def join_or_show(url: str, study: str | None, *, worker: bool = False, worker_index: int = 0,
                 progress: Callable[[int, int], None] | None = None):
    """``twin sweep``: run as a worker of ``study`` (returns the trials run), or describe the
    studies in the storage (all, or ``study``)."""
    with _storage(url) as storage:
        return _join_or_show(storage, study, worker, worker_index, progress)


def _join_or_show(storage, study, worker, worker_index, progress):
    if worker:
        load_study(storage, study)  # a clear error before anything runs
        return work(storage, study, worker=worker_index, progress=progress)
    names = [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
    if study is not None and study not in names:
        raise TwinError(f"study {study!r}: not in this storage; it has {', '.join(names) or 'no studies'}")
    rows = []
    for name in [study] if study else names:
        s = optuna.load_study(study_name=name, storage=storage)
        objectives = list(zip(s.user_attrs.get("objectives", ["value"] * len(s.directions)),
                              [d.name.lower() for d in s.directions]))
        done = [t for t in s.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if _feasible(t)]
        best = ""
        params = ""
        if done and len(s.directions) == 1:
            sign = 1 if s.directions[0] == optuna.study.StudyDirection.MINIMIZE else -1
            b = min(done, key=lambda t: sign * t.values[0])
            best, params = f"#{b.number}: {b.values[0]:.6g}", ", ".join(f"{k}={v}" for k, v in b.params.items())
        elif done:
            best = f"{len([t for t in s.best_trials if _feasible(t)])} on the Pareto front"
        rows.append({"study": name, "states": _trial_counts(s), "objectives": objectives, "best": best,
                     "params": params})
    return rows


# -- finalists, replications, winner -------------------------------------------------------------

@dataclass
class Candidate:
    trial: int
    params: dict
    single_run: dict  # the trial's metrics (workload 0)
    estimates: dict[str, Estimate] = field(default_factory=dict)
    feasible: bool = False  # every constraint's mean within its bound
    confident: bool = False  # every constraint's interval within its bound
    verdict: str = ""  # winner | tie | loses | unsure | infeasible | pareto
    replications: list[dict] = field(default_factory=list)  # the estimated metrics, per replication
    runs: list = field(default_factory=list, repr=False, compare=False)  # the replications' Metrics (not saved)

    def to_dict(self) -> dict:
        return {"trial": self.trial, "params": self.params, "verdict": self.verdict, "feasible": self.feasible,
                "confident": self.confident, "single_run": self.single_run,
                "estimates": {k: e.to_dict() for k, e in self.estimates.items()}, "replications": self.replications}


@dataclass
class SweepResult:
    study: str
    objectives: list[tuple[str, str]]
    constraints: dict[str, float]
    trials: dict[str, int]
    candidates: list[Candidate]
    importance: dict[str, dict[str, float]]  # per objective and constraint: each parameter's share of its variance
    pareto: list[dict]  # multi-objective: the trials' front (params, values)
    history: list[dict]  # every trial: number, state, values, feasible
    #: per swept parameter: its effect with intervals, or no measurable effect (``twin.sweep.noise``)
    effects: dict[str, dict] = field(default_factory=dict)

    @property
    def winner(self) -> Candidate | None:
        return next((c for c in self.candidates if c.verdict == "winner"), None)

    def to_dict(self) -> dict:
        return {"study": self.study, "objectives": [list(o) for o in self.objectives],
                "constraints": self.constraints, "trials": self.trials,
                "winner": self.winner.to_dict() if self.winner else None,
                "candidates": [c.to_dict() for c in self.candidates], "importance": self.importance,
                "pareto": self.pareto, "history": self.history, "effects": self.effects}


_EVALUATOR: dict[str, Evaluator] = {}  # the last task's, per process: its workloads are reused


def replication_load(r: int) -> int:
    """The workload and seed of a finalist's replication ``r`` (0-based): ``r + 1``.  Load 0 is
    the one every trial ran on, so a finalist is never judged again on the run that made it one."""
    return r + 1


def _replicate(task_json: str, params: dict, r: int) -> dict:
    """A finalist's replication ``r``: its own load and seed ``replication_load(r)``, independent
    of the trials' load 0."""
    ev = _EVALUATOR.get(task_json)
    if ev is None:
        _EVALUATOR.clear()
        ev = _EVALUATOR[task_json] = Evaluator(SweepTask.from_json(task_json))
    out = ev.run(params, replication_load(r))
    crash_point("replicated")
    return out


def _feasible(trial) -> bool:
    return all(c <= 0 for c in trial.user_attrs.get("constraints", []))


def _near_feasible(trial, s) -> bool:
    """Within ``sweep.screen_margin`` of every bound on the trial's one window (a bound of 0 is
    taken as it is): a finalist to be judged on independent loads, not screened out by one window's noise."""
    values = trial.user_attrs.get("constraints", [])
    bounds = list(s.constraints.values())
    return all(c <= (s.screen_margin if b > 0 else 0.0) for c, b in zip(values, bounds))


MAX_BATCHES = 3  # batches of finalists replicated before a sweep says that none meets the constraints


def _slack(t) -> float:
    """How far inside its constraints a trial stayed (the worst constraint's margin)."""
    c = t.user_attrs.get("constraints", [])
    return -max(c) if c else 0.0


def _batches(study: optuna.Study, task: SweepTask) -> list[list]:
    """Finalists in batches.  One objective: the feasible trials grouped into levels of the
    objective (within ``tie_tolerance``), best level first; a batch takes, from each of the next
    ``finalists`` levels, the trial with the most room inside its constraints, so that a cheap
    setting that only just passed on one load has a sturdier neighbour in the same batch.  The first
    batch also takes the *near miss*: of the trials better than every feasible one that broke a
    bound by at most ``screen_margin`` of it on their one window, the one that broke it least (one
    window is noisy, a tail quantile's most of all: the replications judge it).
    Several objectives: the feasible Pareto front, spread evenly.  With no feasible trial, the
    least infeasible ones."""
    s = task.sweep
    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    unique, seen = [], set()
    for t in done:
        key = repr(sorted(t.params.items()))
        if key not in seen:
            seen.add(key)
            unique.append(t)
    feasible = [t for t in unique if _feasible(t)]
    if not feasible:
        ranked = sorted(unique, key=lambda t: sum(max(c, 0) for c in t.user_attrs.get("constraints", [])))
        return [ranked[: s.finalists]] if ranked else []
    if len(s.objectives) > 1:
        on_front = {t.number for t in study.best_trials}
        front = [t for t in feasible if t.number in on_front] or feasible
        ranked = sorted(front, key=lambda t: t.values[0] * (1 if s.objectives[0][1] == "minimize" else -1))
        if len(ranked) > s.finalists:
            ranked = [ranked[int(i)] for i in np.linspace(0, len(ranked) - 1, s.finalists).round()]
        return [ranked]
    sign = 1 if s.objectives[0][1] == "minimize" else -1
    ranked = sorted(feasible, key=lambda t: sign * t.values[0])
    levels: list[list] = []
    for t in ranked:
        if levels and abs(t.values[0] - levels[-1][0].values[0]) <= s.tie_tolerance * abs(levels[-1][0].values[0]):
            levels[-1].append(t)
        else:
            levels.append([t])
    picks = [max(level, key=_slack) for level in levels]
    batches = [picks[i:i + s.finalists] for i in range(0, len(picks), s.finalists)][:MAX_BATCHES]
    best = sign * ranked[0].values[0]
    near = [t for t in unique if not _feasible(t) and _near_feasible(t, s)
            and sign * t.values[0] < best - s.tie_tolerance * abs(best)]
    if near:
        batches[0].insert(0, max(near, key=lambda t: (_slack(t), -sign * t.values[0])))
    return batches


def finish(url: str, task: SweepTask, *, jobs: int = 1,
           progress: Callable[[int, int], None] | None = None, current: dict | None = None) -> SweepResult:
    """Replicate finalists on independent loads (the same loads for each), rank them with
    confidence intervals, and compute parameter importance.  When no finalist of a batch meets
    the constraints on average, the next batch is replicated (at most ``MAX_BATCHES``).  A
    finalist that meets them on average but not with confidence, and beats every confident one,
    gets more replications (``_firm_up``) before it is judged.  The
    winner's parameters with no measurable effect are then set to their ``current`` values (the
    settings in force; default: the model's own values) by ``twin.sweep.noise``."""
    with _storage(url) as storage:
        study, _ = load_study(storage, task.study, task)
        s = task.sweep
        candidates: list[Candidate] = []
        batches = _batches(study, task)
        total = sum(len(b) for b in batches) * s.replications
        done = 0
        for batch in batches:
            def tick(k, _n, base=done):
                if progress:
                    progress(base + k, total)
            candidates += _replicate_batch(task, batch, jobs, tick)
            done += len(batch) * s.replications
            if any(c.feasible for c in candidates):
                break
        _firm_up(task, candidates, jobs)
        _EVALUATOR.clear()
        if progress:
            progress(total, total)
        _judge(candidates, s, _current_values(task, current), task.system_model())
        effects = _settle_noise(task, candidates, jobs, current)
        _EVALUATOR.clear()
        return SweepResult(task.study, s.objectives, dict(s.constraints), _trial_counts(study), candidates,
                           importance(study, task), _pareto(study, s), _history(study), effects)


def _current_values(task: SweepTask, current: dict | None) -> dict:
    """The settings in force, as values of the swept tunables' domains (None where outside)."""
    model = task.system_model()
    raw = current_params(model) if current is None else current
    out = {}
    for name, t in model.tunables.items():
        try:
            out[name] = t.coerce(raw[name]) if raw.get(name) is not None else None
        except ValueError:
            out[name] = None
    return out


def _settle_noise(task: SweepTask, candidates: list[Candidate], jobs: int, current: dict | None) -> dict:
    """``twin.sweep.noise.settle`` on the winner: a variant already replicated as a finalist (the
    same loads 1..R) is reused, not run again."""
    from types import SimpleNamespace

    winner = next((c for c in candidates if c.verdict == "winner"), None)
    if winner is None:
        return {}

    n = len(winner.replications)

    def replicate(params):
        known = next((c for c in candidates if c.params == params and c.replications), None)
        if known is not None:
            if len(known.replications) < n:
                _extend(task, [known], n, jobs)
            return known
        finalist = SimpleNamespace(number=winner.trial, params=params, user_attrs={})
        return _replicate_batch(task, [finalist], jobs, lambda *a: None, count=n)[0]

    names = list(distributions(task.system_model(), task.sweep.tunables))
    return settle(winner, replicate, _current_values(task, current), names, task.sweep)


def _run_all(task: SweepTask, jobs_list: list[tuple[dict, int]], jobs: int, tick) -> list:
    """Replication r of each (params, r), in order, on ``jobs`` processes."""
    text = task.to_json()
    if jobs <= 1 or len(jobs_list) <= 1:
        out = []
        for k, (params, r) in enumerate(jobs_list):
            out.append(_replicate(text, params, r))
            tick(k + 1, len(jobs_list))
        return out
    with process_pool(jobs) as pool:
        futures = [pool.submit(_replicate, text, params, r) for params, r in jobs_list]
        out = []
        for k, fut in enumerate(futures):
            out.append(fut.result())
            tick(k + 1, len(jobs_list))
        return out


def _metric_names(s) -> list[str]:
    names = [m for m, _ in s.objectives] + [m for m in s.constraints if m not in dict(s.objectives)]
    return names + [m for m in ("latency_p99_s", "error_rate", "cost", "throughput_per_s") if m not in names]


def _estimate(c: Candidate, s) -> None:
    """The candidate's estimates, feasibility and confidence from its runs (latency quantiles and
    means pooled over the replications, as ``summarize`` does; other metrics: t-intervals)."""
    names, per = _metric_names(s), c.runs
    est = {m: estimate([p.get(m, math.nan) for p in per]) for m in names}
    samples = [getattr(p, "latencies", None) for p in per]  # twin.sim.results.Metrics
    if all(x is not None for x in samples):
        for m in names:
            if m == "latency_mean_s":
                est[m] = pooled_mean(samples)
            elif m.startswith("latency_") and m[8:-2] in LATENCY_QUANTILES:
                # the plain sectioning t (not yet the kurtosis-matched one that twin simulate reports):
                # what the sweep's known answers and the quickstart's hold-out checks were measured with
                est[m] = pooled_quantile(samples, LATENCY_QUANTILES[m[8:-2]], kurtosis=False)
    c.estimates = est
    c.replications = [{m: p.get(m, math.nan) for m in names} for p in per]
    met = replications_met(c.replications, s.constraints)
    c.feasible = met >= s.compliance * len(per) - 1e-9 and all(math.isfinite(est[m].mean) and est[m].mean <= b
                                                               for m, b in s.constraints.items())
    c.confident = c.feasible and all(math.isfinite(est[m].high) and est[m].high <= b
                                     for m, b in s.constraints.items()) \
        and (s.compliance == 0 or compliance_lower(met, len(per), s.compliance_confidence) >= s.compliance - 1e-9)


def compliance_lower(met: int, windows: int, confidence: float) -> float:
    """The one-sided Clopper-Pearson lower confidence bound of the share of windows that meet the
    constraints, from ``met`` of ``windows``: all of n windows give (1 - confidence)^(1/n)."""
    if met <= 0:
        return 0.0
    from scipy import stats

    return float(stats.beta.ppf(1 - confidence, met, windows - met + 1))


def _replicate_batch(task: SweepTask, finalists: list, jobs: int, tick, count: int | None = None) -> list[Candidate]:
    """Each finalist (a trial) on replications 0..count-1 (default ``sweep.replications``)."""
    s = task.sweep
    count = s.replications if count is None else count
    runs = _run_all(task, [(t.params, r) for t in finalists for r in range(count)], jobs, tick)
    out = []
    for i, t in enumerate(finalists):
        c = Candidate(t.number, dict(t.params), dict(t.user_attrs.get("metrics", {})),
                      runs=runs[i * count:(i + 1) * count])
        _estimate(c, s)
        out.append(c)
    return out


def _extend(task: SweepTask, candidates: list[Candidate], count: int, jobs: int) -> None:
    """More replications for each candidate, up to ``count`` (the next independent loads)."""
    todo = [(c, r) for c in candidates for r in range(len(c.runs), count)]
    runs = _run_all(task, [(c.params, r) for c, r in todo], jobs, lambda *a: None)
    for (c, _), m in zip(todo, runs):
        c.runs.append(m)
    for c in candidates:
        _estimate(c, task.sweep)


def _firm_up(task: SweepTask, candidates: list[Candidate], jobs: int) -> None:
    """One objective: while a finalist meets the constraints on average, not with confidence, and
    is better (beyond ``tie_tolerance``) than every finalist that meets them with confidence, double
    its replications, up to ``sweep.replication_cap``.  A tail quantile's interval from a few
    replications is wide and skewed (its congestion episodes are rare and long), so the cheaper
    setting would otherwise lose to a dearer confident one on too little evidence; with more of them
    it is either confirmed or found to break the bound.  With ``sweep.compliance`` the share of
    windows met must be shown too (``compliance_lower``), which takes many windows, so the best open
    finalist is extended alone, then the next."""
    s = task.sweep
    if len(s.objectives) != 1 or not s.constraints:
        return
    metric, direction = s.objectives[0]
    sign = 1 if direction == "minimize" else -1
    while True:
        sure = [sign * c.estimates[metric].mean for c in candidates if c.confident]
        bar = min(sure, default=math.inf)
        margin = s.tie_tolerance * abs(bar) if math.isfinite(bar) else 0.0
        open_ = [c for c in candidates if c.feasible and not c.confident and len(c.runs) < s.replication_cap
                 and sign * c.estimates[metric].mean < bar - margin]
        if not open_:
            return
        if s.compliance > 0:  # the best first: once it is sure, the dearer ones need no more windows
            open_ = [min(open_, key=lambda c: sign * c.estimates[metric].mean)]
        _extend(task, open_, min(s.replication_cap, 2 * max(len(c.runs) for c in open_)), jobs)


def _judge(candidates: list[Candidate], s, current: dict | None = None, model: SystemModel | None = None) -> None:
    feasible = [c for c in candidates if c.feasible]
    for c in candidates:
        c.verdict = "infeasible"
    if not feasible:
        return
    (metric, direction), multi = s.objectives[0], len(s.objectives) > 1
    sign = 1 if direction == "minimize" else -1
    if multi:  # the replicated front: no finalist better on every objective by its mean
        def dominated(a, b):  # b dominates a
            pairs = [(a.estimates[m].mean, b.estimates[m].mean, d) for m, d in s.objectives]
            better = [(y < x) if d == "minimize" else (y > x) for x, y, d in pairs]
            worse = [(y > x) if d == "minimize" else (y < x) for x, y, d in pairs]
            return any(better) and not any(worse)
        for c in feasible:
            c.verdict = "loses" if any(dominated(c, o) for o in feasible if o is not c) else "pareto"
        front = [c for c in feasible if c.verdict == "pareto"]
        best = min(front, key=lambda c: sign * c.estimates[metric].mean)
        best.verdict = "winner"
        return
    best = min(feasible, key=lambda c: (not c.confident, sign * c.estimates[metric].mean))
    best.verdict = "winner"
    w = best.estimates[metric]
    for c in feasible:
        if c is best:
            continue
        if best.confident and not c.confident and sign * c.estimates[metric].mean <= sign * w.mean:
            c.verdict = "unsure"  # better on average, but an interval crosses a constraint's bound
            continue
        e = c.estimates[metric]
        overlap = (e.low <= w.high and w.low <= e.high) if math.isfinite(e.half_width) and math.isfinite(
            w.half_width) else e.mean == w.mean
        close = abs(e.mean - w.mean) <= s.tie_tolerance * abs(w.mean)
        c.verdict = "tie" if overlap or close else "loses"
    _break_tie(best, feasible, sign, metric, current or {}, model)


#: a tunable whose target ends in one of these is a capacity: more of it is more resources
CAPACITY_FIELDS = ("instances", "workers", "capacity_bytes", "size")


def resources(params: dict, model: SystemModel | None) -> float:
    """How much capacity ``params`` hold: each capacity tunable's place in its domain (0 at low,
    1 at high), summed; 0 without a model.  Priced capacity is in the cost already; this orders
    what the model does not price."""
    if model is None:
        return 0.0
    total = 0.0
    for name, v in params.items():
        t = model.tunables.get(name)
        if t is None or t.type == "categorical" or not isinstance(v, (int, float)):
            continue
        if t.monotone is not None or t.targets[0].rsplit(".", 1)[-1] in CAPACITY_FIELDS:
            share = (v - t.low) / (t.high - t.low)
            total += share if t.monotone != "decreasing" else 1 - share
    return total


def _break_tie(best: Candidate, feasible: list[Candidate], sign: int, metric: str, current: dict,
               model: SystemModel | None) -> None:
    """Among the winner and the finalists tied with it (as sure of the constraints), the one with
    the fewest parameters away from the ``current`` settings, then the fewest resources, then the
    best mean wins, deterministically."""
    pool = [best] + [c for c in feasible if c.verdict == "tie" and (c.confident or not best.confident)]

    def key(c):
        away = sum(1 for k, v in current.items() if v is not None and k in c.params and c.params[k] != v)
        return away, round(resources(c.params, model), 12), sign * c.estimates[metric].mean, c.trial

    chosen = min(pool, key=key)
    if chosen is not best:
        best.verdict, chosen.verdict = "tie", "winner"


def importance(study: optuna.Study, task: SweepTask) -> dict[str, dict[str, float]]:
    """{objective or constraint metric: {parameter: share of that target's variance explained}}
    over the completed trials (``twin.sweep.importance``: a first-order variance decomposition per
    target, not one ranking of a penalised loss)."""
    return study_importance(study, task.sweep.objectives, dict(task.sweep.constraints))


def _pareto(study, s) -> list[dict]:
    if len(s.objectives) < 2:
        return []
    return [{"trial": t.number, "params": t.params, "values": list(t.values), "feasible": _feasible(t)}
            for t in study.best_trials]


def _trial_counts(study) -> dict[str, int]:
    """Trials by state, named as the user reads them ({"complete": 18, "pruned": 2}); a trial
    that reused a finished one's result counts as "reused", whatever its state."""
    from collections import Counter

    return dict(Counter("reused" if is_reuse(t) else t.state.name.lower() for t in study.get_trials(deepcopy=False)
                        if not t.user_attrs.get(SURPLUS)))


def _history(study) -> list[dict]:
    out = []
    for t in study.get_trials(deepcopy=False):
        if t.user_attrs.get(SURPLUS):
            continue
        out.append({"number": t.number, "state": t.state.name.lower(), "values": list(t.values) if t.values else None,
                    "feasible": _feasible(t) if t.state == TrialState.COMPLETE else None, "params": t.params,
                    "warm_start": bool(t.user_attrs.get("warm_start")),
                    "retry_of": _retry_of(t), "reuse_of": t.user_attrs.get("reuse_of")})
    return out


def _retry_of(trial) -> int | None:
    with _quiet():
        return optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number(trial)


__all__ = ["Candidate", "SweepResult", "close_storage", "create_study", "task_digest", "distributions", "finish", "importance", "join_or_show",
           "load_study",
           "open_storage", "run_study", "work"]
