"""``twin run EXPERIMENT``: model -> forecast -> regimes -> synthesize -> sweep -> policy -> schedule
-> report.

Each stage writes its result into the run folder and records, in ``stages.json``, a key made
from its part of the experiment and the keys of the stages before it.  A rerun skips every stage
whose key is unchanged and whose files are there and readable, so an interrupted run (even one
killed) resumes where it stopped (a sweep goes on from the trials its study already holds), and
a changed setting reruns its stage and those after it.  The folder is locked while a run writes it.  Everything that can be checked before work starts is checked first: the
experiment's keys and bounds, the model and its tunables, the metrics named, the edge cases, and
that the study storage and the policy database can be opened.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import ValidationError

from .dburl import redact
from .rundir import crash_point, write_atomically, write_frame_atomically
from .spec import Problem, SpecError, SystemModel, load_model
from .spec.experiment import Experiment, check_against_model, resolve_paths
from .spec.explain import problems_from
from .spec.loader import read_yaml

STAGES = ("model", "forecast", "regimes", "synthesize", "sweep", "policy", "schedule", "report")
Progress = Callable[[str, int, int], None]


def _quiet(label: str, done: int, total: int) -> None:
    pass


# -- the experiment, checked before any work ----------------------------------------------------

def load_experiment(path: str | Path) -> Experiment:
    """Read and validate an experiment file; a ``SpecError`` names the line and the field."""
    path = Path(path)
    data, lines = read_yaml(path)
    if not isinstance(data, dict):
        raise SpecError([Problem("", "expected a mapping of experiment settings (name, model, history, ...)",
                                 str(path))])
    try:
        return Experiment.model_validate(resolve_paths(data, path.parent))
    except ValidationError as e:
        raise SpecError(problems_from(e, Experiment)).located(str(path), lines) from None


def check(exp: Experiment, source: str) -> SystemModel | None:
    """What can be checked before work: files, the model and tunables, metrics, edge cases,
    storage URLs.  Returns the model when it is given (not calibrated)."""
    from .load import scenarios as edge_cases

    problems = []
    for label, p in [("history.series", exp.history.series), ("history.events", exp.history.events),
                     ("history.social", exp.history.social), ("model", exp.model)] + (
            [("calibrate.skeleton", exp.calibrate.skeleton)] + [("calibrate.traces", t) for t in exp.calibrate.traces]
            if exp.calibrate else []):
        if p is not None and not Path(p).is_file():
            problems.append(Problem(label, f"no such file: {p}", source))
    if problems:
        raise SpecError(problems)
    if exp.forecast.model != "auto":  # an unknown forecast model, with its line, before any work
        from .forecast.run import FIELDS, models

        _forecast_located(lambda: models([exp.forecast.model], 1, label=FIELDS["model"]), source)
    model = load_model(exp.model) if exp.model else None
    if model is not None:
        check_against_model(exp.sweep, model, source=source)
        from .sweep.window import decide, derive

        decide(exp.sweep, derive(model, tunables=exp.sweep.tunables), source=source)  # failure cycles: load-free
        if exp.scenarios:
            cases = edge_cases.parse(exp.scenarios, source=source)
            edge_cases.apply(cases, model, None, np.random.default_rng(0))  # model edits: conflicts, names
    elif exp.scenarios:
        edge_cases.parse(exp.scenarios, source=source)
    from .policy.store import PolicyStore
    from .sweep.study import close_storage, open_storage

    if exp.sweep.storage:  # the default files are made in the run folder when it is
        close_storage(open_storage(exp.sweep.storage))
    if exp.policy.db:
        PolicyStore(exp.policy.db).close()
    return model


def storage_url(exp: Experiment, folder: Path) -> str:
    return exp.sweep.storage or f"sqlite:///{Path(folder).resolve() / 'studies.db'}"


def policy_url(exp: Experiment, folder: Path) -> str:
    return exp.policy.db or f"sqlite:///{Path(folder).resolve() / 'policy.db'}"


# -- the run folder and its stages --------------------------------------------------------------

def _key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


class RunFolder:
    """The run folder and the record of which stages are done, with which key.  Use as a context
    manager: the folder is locked against a second writer meanwhile.  A record or an output that
    cannot be read (a crash, a disk filling up) counts as a stage not done: it runs again."""

    def __init__(self, folder: Path, say: Callable[[str], None] = lambda text: None):
        from .rundir import MARKER, check_output_folder, lock_run_folder

        self.path = check_output_folder(folder)
        self.path.mkdir(parents=True, exist_ok=True)
        self.say = say
        self.lock = lock_run_folder(self.path)
        (self.path / MARKER).write_text("written by twin run; a rerun resumes from the stages done\n")
        self.state_path = self.path / "stages.json"
        self.state = {}
        if self.state_path.is_file():
            try:
                self.state = json.loads(self.state_path.read_text())
                if not isinstance(self.state, dict):
                    raise ValueError("expected a mapping of stages")
            except (ValueError, UnicodeDecodeError) as e:
                say(f"{self.state_path}: unreadable ({_why(e)}); running every stage again")
                self.state = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        from .rundir import unlock_run_folder

        if self.lock is not None:
            unlock_run_folder(self.lock)
            self.lock = None

    def done(self, stage: str, key: str, *files: str) -> bool:
        record = self.state.get(stage)
        if not isinstance(record, dict) or record.get("key") != key:
            return False
        for f in files:
            problem = _unreadable(self.path / f)
            if problem:
                self.say(f"{stage}: {f} {problem}; running the stage again")
                return False
        return True

    def mark(self, stage: str, key: str, **info) -> None:
        crash_point(f"written:{stage}")
        self.state[stage] = {"key": key, "done_at": datetime.now(timezone.utc).isoformat(), **info}
        write_atomically(self.state_path, json.dumps(self.state, indent=2))
        crash_point(f"marked:{stage}")


def _why(e: Exception) -> str:
    return str(e).splitlines()[0].split(". ")[0][:160] if str(e) else type(e).__name__


def _unreadable(path: Path) -> str | None:
    """Why a stage's output cannot be used (missing, or not readable as what its name says), or None."""
    if not path.is_file():
        return "is missing"
    try:
        if path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".parquet":
            import pyarrow.parquet as pq

            pq.read_table(path)
        elif path.suffix in (".yaml", ".yml"):
            import yaml

            yaml.safe_load(path.read_text())
        else:
            path.read_bytes()
    except Exception as e:  # pyarrow, yaml and json have many kinds; any of them means: make it again
        return f"is unreadable ({_why(e)})"
    return None


@dataclass
class RunSummary:
    folder: Path
    skipped: list[str]
    ran: list[str]
    regimes: list[dict]
    schedule: list[dict]
    notes: list[str]


def run(path: str | Path, *, out: str | Path | None = None, progress: Progress = _quiet,
        say: Callable[[str], None] = print) -> RunSummary:
    exp = load_experiment(path)
    source = str(path)
    folder = Path(out) if out is not None else Path("runs") / exp.name
    check(exp, source)
    with RunFolder(folder, say) as rf:
        return _run_stages(exp, source, rf, progress, say)


def _run_stages(exp: Experiment, source: str, rf: RunFolder, progress: Progress, say) -> RunSummary:
    skipped, ran, notes = [], [], []
    cfg = exp.model_dump(mode="json")

    # 1. model ----------------------------------------------------------------------------------
    inputs = [*exp.calibrate.traces, exp.calibrate.skeleton] if exp.calibrate else [exp.model]
    k_model = _key("model", cfg["model"], cfg.get("calibrate"), *[_file_digest(p) for p in inputs])
    if rf.done("model", k_model, "model.yaml"):
        skipped.append("model")
    else:
        say("model: " + ("calibrating from traces" if exp.calibrate else f"taking {exp.model}"))
        _stage_model(exp, rf.path)
        rf.mark("model", k_model)
        ran.append("model")
    model = load_model(rf.path / "model.yaml")
    check_against_model(exp.sweep, model, source=source)

    # 2. forecast -------------------------------------------------------------------------------
    k_forecast = _key("forecast", k_model, cfg["history"], cfg["forecast"], exp.seed,
                      *[_file_digest(p) for p in (exp.history.series, exp.history.events, exp.history.social)])
    outputs = [f"forecast/{f}" for f in ("profile.parquet", "history.parquet", "forecast.json")]
    if rf.done("forecast", k_forecast, *outputs):
        skipped.append("forecast")
    else:
        say(f"forecast: {exp.forecast.model} over {exp.forecast.horizon} from {exp.history.series}")
        info = _forecast_located(lambda: _stage_forecast(exp, rf.path, progress), source)
        rf.mark("forecast", k_forecast, model=info["model"])
        ran.append("forecast")
    profile = pd.read_parquet(rf.path / "forecast" / "profile.parquet")
    notes += json.loads((rf.path / "forecast" / "forecast.json").read_text()).get("notes", [])

    # 3. regimes --------------------------------------------------------------------------------
    k_regimes = _key("regimes", k_forecast, cfg["regimes"], exp.seed)
    if rf.done("regimes", k_regimes, "regimes.json"):
        skipped.append("regimes")
    else:
        from .sweep.regimes import regimes

        found = regimes(profile, max_regimes=exp.regimes.max, quantile=exp.regimes.quantile,
                        min_share=exp.regimes.min_share, seed=exp.seed)
        write_atomically(rf.path / "regimes.json", _dump(found.to_dict()))
        rf.mark("regimes", k_regimes, count=len(found.regimes))
        ran.append("regimes")
        say(f"regimes: {len(found.regimes)} ("
            + ", ".join(f"{r.name} {r.representative['requests_per_s']:.3g} req/s, {r.share:.0%} of the steps"
                        for r in found.regimes) + ")")
    regimes_doc = json.loads((rf.path / "regimes.json").read_text())
    from .sweep.window import for_load

    for regime in regimes_doc["regimes"]:  # a window shorter than the model needs: said, lengthened or refused
        for line in for_load(exp.sweep, model, _regime_load(regime), source=source, label=regime["name"]).messages:
            say(line)
            notes.append(line)

    # 4. synthesize: each regime's load, as its trials will face it ----------------------------------
    k_synth = _key("synthesize", k_regimes, k_model, cfg["sweep"]["window"], cfg["scenarios"], exp.seed,
                   *([cfg["sweep"]["window_policy"], cfg["sweep"]["warm_caches"]]
                     if cfg["sweep"]["window_policy"] == "lengthen" else []))  # the window may follow the model
    if rf.done("synthesize", k_synth, "workloads/summary.json"):
        skipped.append("synthesize")
    else:
        doc = _stage_synthesize(exp, model, regimes_doc, rf.path)
        write_atomically(rf.path / "workloads" / "summary.json", _dump(doc))
        rf.mark("synthesize", k_synth)
        ran.append("synthesize")
        say("synthesize: " + ", ".join(f"{name} {d['arrivals']:,} arrivals over {d['duration_s']:g} s"
                                       for name, d in doc.items()) + " (workloads/)")

    # 5. sweep, a study per regime ----------------------------------------------------------------
    k_sweep = _key("sweep", k_regimes, k_model, cfg["sweep"], cfg["scenarios"], exp.seed,
                   4)  # 2: finalists on loads 1..R, parameters without measurable effect left at the current value;
    # 3: finalists screened with a noise margin, unsure ones firmed up with more replications;
    # 4: window compliance shown with confidence, the cheapest open finalist firmed up first
    results = {}
    for i, regime in enumerate(regimes_doc["regimes"]):
        name = regime["name"]
        target = f"sweep/{name}.json"
        k_one = _key(k_sweep, name)
        if rf.done(f"sweep:{name}", k_one, target):
            skipped.append(f"sweep:{name}")
        else:
            say(f"sweep: {name} ({regime['representative']['requests_per_s']:.3g} req/s at "
                f"q{exp.regimes.quantile:g}), {exp.sweep.trials} trials")
            doc = _stage_sweep(exp, model, regime, i, results, rf.path, progress)
            write_atomically(rf.path / target, _dump(doc))
            rf.mark(f"sweep:{name}", k_one)
            ran.append(f"sweep:{name}")
        results[name] = json.loads((rf.path / target).read_text())
        warmup = results[name].get("warmup") or {}
        if warmup.get("longer_than_configured"):
            notes.append(f"sweep {name}: {warmup['note']}")

    # 6. policy ---------------------------------------------------------------------------------
    k_policy = _key("policy", k_sweep, policy_url(exp, rf.path) if exp.policy.db else "local")
    if rf.done("policy", k_policy, "policy.json"):
        skipped.append("policy")
    else:
        doc = _stage_policy(exp, model, regimes_doc, results, rf.path, key=_key(k_policy, str(rf.path.resolve())))
        write_atomically(rf.path / "policy.json", _dump(doc))
        rf.mark("policy", k_policy)
        ran.append("policy")

    # 7. schedule -------------------------------------------------------------------------------
    k_schedule = _key("schedule", k_policy, cfg["policy"], cfg["schedule"], cfg["regimes"])
    if rf.done("schedule", k_schedule, "schedule.json"):
        skipped.append("schedule")
    else:
        doc = _stage_schedule(exp, model, profile, rf.path)
        write_atomically(rf.path / "schedule.json", _dump(doc))
        pd.DataFrame([{**{k: v for k, v in e.items() if k != "params"}, **(e["params"] or {})} for e in doc["entries"]]
                     ).to_csv(rf.path / "schedule.csv", index=False)
        rf.mark("schedule", k_schedule)
        ran.append("schedule")
    schedule = json.loads((rf.path / "schedule.json").read_text())

    # 8. report ---------------------------------------------------------------------------------
    k_report = _key("report", k_schedule, k_sweep, k_forecast, 2)  # 2: window notes
    if rf.done("report", k_report, "report.html"):
        skipped.append("report")
    else:
        from .report.run import render_run

        history = pd.read_parquet(rf.path / "forecast" / "history.parquet")
        write_atomically(rf.path / "report.html", render_run(exp, model, history, profile, regimes_doc, results, schedule,
                                                   json.loads((rf.path / "forecast" / "forecast.json").read_text())))
        rf.mark("report", k_report)
        ran.append("report")
    return RunSummary(rf.path, skipped, ran, regimes_doc["regimes"], schedule["entries"], notes)


def _finite(o):
    """The document with every non-finite float as null (JSON has no NaN)."""
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, dict):
        return {k: _finite(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_finite(v) for v in o]
    return o


def _dump(doc) -> str:
    return json.dumps(_finite(doc), indent=2, default=_json_default, allow_nan=False)


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, (pd.Timestamp, datetime)):
        return o.isoformat()
    raise TypeError(f"cannot write {type(o).__name__} as JSON")


def _file_digest(path: Path | None) -> str | None:
    return None if path is None else hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


# -- the stages ---------------------------------------------------------------------------------

def _stage_model(exp: Experiment, folder: Path) -> SystemModel:
    import yaml

    if exp.model is not None:
        model = load_model(exp.model)
    else:
        from .calibrate.calibrate import calibrate
        from .calibrate.skeleton import load_skeleton
        from .traces import read_traces

        c = exp.calibrate
        trace, inputs = read_traces(list(c.traces), columns=c.columns or None, time_zone=c.time_zone,
                                    service=c.service)
        model = calibrate(trace, load_skeleton(c.skeleton), inputs=inputs).model
    write_atomically(folder / "model.yaml", f"# the model of experiment {exp.name}\n"
           + yaml.safe_dump(model.model_dump(by_alias=True, exclude_none=True), sort_keys=False))
    return model


def _forecast_located(work: Callable, source: str):
    """``work()``, with an error in a forecast setting (``forecast.horizon``, ``forecast.model``)
    pinned to the experiment file and the setting's line."""
    try:
        return work()
    except SpecError as e:
        if not all(p.path.startswith("forecast.") and p.file is None for p in e.problems):
            raise
        raise e.located(source, read_yaml(source)[1]) from None


def _stage_forecast(exp: Experiment, folder: Path, progress: Progress) -> dict:
    from .forecast.base import History
    from .forecast.run import FIELDS, fit_chosen, load_inputs, predict_profile, steps

    h = exp.history
    inputs = load_inputs(h.series, value_column=h.value_column, target="requests_per_s", time_zone=h.time_zone,
                         events=h.events, holidays=h.holidays, horizon=exp.forecast.horizon, social=h.social,
                         trace_step=h.trace_step, counts=h.counts, labels=FIELDS)
    if h.scale != 1.0:
        inputs = type(inputs)(History(inputs.history.values * h.scale), inputs.repairs, inputs.covariates,
                              inputs.event_windows, inputs.notes, inputs.trace)
    horizon = steps(exp.forecast.horizon, inputs.history, FIELDS["horizon"])
    name, recal, notes, fitted = fit_chosen(inputs, exp.forecast.model, horizon=horizon, labels=FIELDS,
                                            windows=exp.forecast.calibration_windows, seed=exp.seed,
                                            progress=lambda d, n: progress("forecast: backtest", d, n))
    frame, fc = predict_profile(fitted, recal, inputs, horizon)
    write_frame_atomically(folder / "forecast" / "profile.parquet", frame)
    tail = inputs.history.values.iloc[-min(len(inputs.history), 4 * horizon):]
    write_frame_atomically(folder / "forecast" / "history.parquet", tail)
    info = {"model": fc.model, "series": str(h.series), "scale": h.scale, "step": str(inputs.history.step),
            "horizon_steps": horizon, "trained_until": str(inputs.history.values.index[-1]),
            "notes": [*inputs.repairs.lines, *inputs.notes, *notes, *fc.notes]}
    write_atomically(folder / "forecast" / "forecast.json", json.dumps(info, indent=2))
    return info


def _regime_load(regime: dict) -> dict:
    """What a regime's sweep load is made of: its rate, class mix and burstiness (data volume
    and concurrency follow from the model's sizes and the rate)."""
    rep = regime["representative"]
    return {k: v for k, v in rep.items() if k in ("requests_per_s", "burstiness") or k.startswith("mix_")}


def regime_task(exp: Experiment, model: SystemModel, regime: dict, index: int):
    """The ``SweepTask`` of a regime: the model with the edge cases' model edits, the regime's load
    window with the load edits, the sweep settings; named with a digest of what shapes its trials."""
    from .load import scenarios as edge_cases
    from .sweep.study import task_digest
    from .sweep.task import SweepTask, window_profile
    from .sweep.window import for_load

    edited = model
    load_cases = []
    if exp.scenarios:
        cases = edge_cases.parse(exp.scenarios, source=f"{exp.name}: scenarios")
        edited, _ = edge_cases.apply([c for c in cases if c.acts_on == "model"], model, None,
                                     np.random.default_rng(exp.seed))
        load_cases = [c.model_dump(mode="json") for c in cases if c.acts_on == "load"]
    window = for_load(exp.sweep, edited, _regime_load(regime), source=f"experiment {exp.name}", label=regime["name"])
    sweep = exp.sweep.model_copy(update={"window": window.window_s, "warmup": window.warmup_s})
    task = SweepTask(study="", model=edited.model_dump(by_alias=True),
                     profile=window_profile(_regime_load(regime), sweep.window), scenarios=load_cases,
                     settings=sweep.model_dump(mode="json"), seed=exp.seed * 1000 + index)
    task.study = f"{exp.name}.{regime['name']}.{task_digest(task)}"  # a changed setting: a new study
    return task


def _stage_synthesize(exp: Experiment, model: SystemModel, regimes_doc: dict, folder: Path) -> dict:
    """Each regime's load as every trial of its study will face it (workload 0), written as an
    arrival table ``twin simulate --workload`` replays, with its summary."""
    from .load.profile_workload import summary
    from .sweep.task import Evaluator

    out = {}
    for i, regime in enumerate(regimes_doc["regimes"]):
        task = regime_task(exp, model, regime, i)
        w = Evaluator(task).workload(0)
        write_frame_atomically(folder / "workloads" / f"{regime['name']}.parquet", w.to_frame())
        out[regime["name"]] = {"study": task.study, **summary(w)}
        if task.model != model.model_dump(by_alias=True):
            import yaml

            write_atomically(folder / "workloads" / f"{regime['name']}.model.yaml",
                   yaml.safe_dump(task.model, sort_keys=False))
    return out


def _stage_sweep(exp: Experiment, model: SystemModel, regime: dict, index: int, done: dict, folder: Path,
                 progress: Progress) -> dict:
    from .policy.store import PolicyStore
    from .sweep.regimes import distance
    from .sweep.study import finish, run_study
    from .sweep.window import for_load

    task = regime_task(exp, model, regime, index)
    # warm start: the best of the nearest regime already swept, here or in the policy database
    warm, source = [], None
    if exp.sweep.warm_start:
        nearest = []
        for name, doc in done.items():
            nearest.append((distance(regime["vector"], doc["regime"]["vector"]),
                            [c["params"] for c in doc["result"]["candidates"] if c["feasible"]], f"regime {name}"))
        with PolicyStore(policy_url(exp, folder)) as store:
            for p in store.policies(model=model.name):
                nearest.append((distance(regime["vector"], p.vector), [p.params],
                                f"policy {p.experiment}/{p.regime} v{p.version}"))
        nearest = [n for n in nearest if n[1]]
        if nearest:
            _, warm, source = min(nearest, key=lambda n: n[0])
            warm = warm[: exp.sweep.warm_start]
    url = storage_url(exp, folder)
    run_study(url, task, warm=warm, workers=exp.sweep.workers,
              progress=lambda d, n: progress(f"sweep {regime['name']}", d, n),
              exclusive=not exp.sweep.storage)  # the run folder's own studies.db: locked with the folder
    result = finish(url, task, jobs=exp.sweep.workers,
                    progress=lambda d, n: progress(f"replications {regime['name']}", d, n))
    window = for_load(task.sweep.model_copy(update={"window_policy": "warn"}), model, _regime_load(regime),
                      source=f"experiment {exp.name}", label=regime["name"])
    warmup = None
    if result.winner is not None:  # the warm-up the winner's own run shows (MSER-5), against the configured one
        from .sweep.task import Evaluator, detected_warmup

        found = detected_warmup(Evaluator(task), result.winner.params)
        warmup = {"detected_s": found.detected_s, "configured_s": found.configured_s, "settled": found.settled,
                  "longer_than_configured": found.longer_than_configured, "note": found.describe()}
    return {"regime": regime, "study": task.study, "storage": redact(url), "warm_start_from": source,
            "warm_start": warm, "result": result.to_dict(), "window": window.to_dict(), "warmup": warmup}


def _confidence(candidate: dict, constraints: dict) -> float:
    """The share of replications in which the candidate held every constraint."""
    from .sweep.task import replications_met

    reps = candidate.get("replications") or []
    if not constraints:
        return 1.0
    return replications_met(reps, constraints) / len(reps) if reps else 0.0


def _stage_policy(exp: Experiment, model: SystemModel, regimes_doc: dict, results: dict, folder: Path,
                  key: str | None = None) -> dict:
    """Each regime's winner into the policy database.  With ``key`` (this run folder's policy
    stage), a policy already stored under it is reused, so a rerun after a crash between storing
    and marking the stage done adds no second version."""
    from .policy.store import PolicyStore, RunRecord
    from .sweep.study import replication_load

    out = []
    with PolicyStore(policy_url(exp, folder)) as store:
        for regime in regimes_doc["regimes"]:
            doc = results[regime["name"]]
            r = doc["result"]
            winner = r["winner"]
            if winner is None:
                out.append({"regime": regime["name"], "stored": False,
                            "reason": "no finalist met the constraints; nothing to recommend for this regime"})
                continue
            seeds = [replication_load(i) for i in range(exp.sweep.replications)]  # the finalists' loads: 1..R
            runs = [RunRecord(c["params"], c["estimates"], seeds, doc["study"], c["trial"]) for c in r["candidates"]]
            confidence = _confidence(winner, r["constraints"])
            p = store.record(model=model.name, experiment=exp.name, regime=regime["name"],
                             load=regime["representative"], vector=regime["vector"], params=winner["params"],
                             confidence=confidence, runs=runs, key=key, constraints=r["constraints"])
            crash_point("policy-stored")
            out.append({"regime": regime["name"], "stored": True, "version": p.version, "confidence": confidence,
                        "params": p.params})
    return {"db": redact(policy_url(exp, folder)), "policies": out}


def _stage_schedule(exp: Experiment, model: SystemModel, profile: pd.DataFrame, folder: Path) -> dict:
    """Which settings to hold from when.  Each step's load (the forecast at the regimes'
    quantile) is matched to the nearest stored policy with hysteresis; the schedule applies that
    policy's own parameters, as swept and replicated on the twin (a blend of neighbours, which
    ``twin policy query`` gives for a new load, was never run as such).  A change towards a
    quieter regime waits until it would hold ``min_hold``; a change towards a busier one is made
    at once.  Every change is applied ``lead_time`` before its step.  A step outside the stored
    regimes' range (above the busiest, below the quietest, a mix never swept) keeps the nearest
    policy's settings but its entry says so (``out_of_range``, the reason) and asks for a sweep."""
    from .load.profile_workload import rate_column
    from .policy.engine import policy_for
    from .policy.store import PolicyStore

    stored = {(p["regime"], p["version"]) for p in json.loads((folder / "policy.json").read_text())["policies"]
              if p["stored"]}
    with PolicyStore(policy_url(exp, folder)) as store:
        policies = [p for p in store.policies(model=model.name, latest=False)
                    if p.experiment == exp.name and (p.regime, p.version) in stored]
    busy = {f"{p.experiment}/{p.regime}": p.load.get("requests_per_s", 0.0) for p in policies}
    q = exp.regimes.quantile
    col = rate_column(profile, "requests_per_s", q)
    mix = [c for c in profile.columns if c.startswith("mix_")]
    step = profile.index[1] - profile.index[0] if len(profile) > 1 else pd.Timedelta(minutes=5)
    steps, held = [], None
    for t, row in profile.iterrows():
        load = {"requests_per_s": float(row[col]), **{c: float(row[c]) for c in mix}}
        if "burstiness" in profile:
            load["burstiness"] = float(row["burstiness"])
        d = policy_for(load, policies, model, k=1, max_distance=exp.policy.max_distance,
                       hysteresis=exp.policy.hysteresis, held=held, outside="flag")  # outside the range: said
        if d.params is not None:
            held = d
        steps.append((t, d))
    # scale-down stabilisation: a quieter anchor that does not last min_hold keeps the busier settings
    hold_steps = max(1, int(math.ceil(exp.schedule.min_hold / step.total_seconds())))
    anchors = [d.anchor_name for _, d in steps]
    chosen = list(anchors)
    for i in range(1, len(steps)):
        prev = chosen[i - 1]
        if anchors[i] == prev or anchors[i] is None or prev is None:
            chosen[i] = anchors[i] or prev
            continue
        if busy.get(anchors[i], 0.0) < busy.get(prev, 0.0):
            ahead = anchors[i:i + hold_steps]
            if len(ahead) < hold_steps or any(a != anchors[i] for a in ahead):
                chosen[i] = prev
    by_anchor = {f"{p.experiment}/{p.regime}": p for p in policies}
    lead = pd.Timedelta(seconds=exp.schedule.lead_time)
    entries = []
    for (t, d), anchor in zip(steps, chosen):
        p = by_anchor.get(anchor)
        params = p.params if p is not None else None
        kept = anchor != d.anchor_name and d.anchor_name is not None
        if entries and entries[-1]["anchor"] == anchor:
            entries[-1]["until"] = (t + step).isoformat()
            entries[-1]["steps"] += 1
            entries[-1]["sweep_needed"] = entries[-1]["sweep_needed"] or d.sweep_needed
            if d.out_of_range and not entries[-1]["out_of_range"]:
                entries[-1]["out_of_range"] = d.out_of_range
                entries[-1]["reason"] += f"; from {t.isoformat()[:16]} outside the stored range: " \
                                         f"{d.reason.partition('outside the stored range: ')[2]}"
            if kept and "kept" not in entries[-1]["reason"]:
                entries[-1]["reason"] += f"; kept through a dip towards {d.anchor_name}, which would not hold " \
                                         f"{exp.schedule.min_hold / 60:g} min"
            continue
        note = d.reason
        entries.append({"apply_at": (t - lead).isoformat(), "from": t.isoformat(), "until": (t + step).isoformat(),
                        "steps": 1, "anchor": anchor, "params": params,
                        "confidence": p.confidence if p is not None else 0.0, "reason": note,
                        "sweep_needed": d.sweep_needed, "out_of_range": d.out_of_range})
    return {"lead_time_s": exp.schedule.lead_time, "min_hold_s": exp.schedule.min_hold, "quantile": q,
            "entries": entries}


def sweep_load(path: str | Path, load: dict, *, db: str, out: str | Path | None = None,
               progress: Progress = _quiet) -> dict:
    """Sweep one load the policy database has no close neighbour for (what ``twin policy query
    --sweep EXPERIMENT`` does): the experiment's model, sweep settings and edge cases, the load as
    a regime of its own, the outcome stored in ``db``.  Returns the policy stored (or why not)."""
    exp = load_experiment(path)
    exp = exp.model_copy(update={"policy": exp.policy.model_copy(update={"db": db})})
    folder = Path(out) if out is not None else Path("runs") / exp.name
    model = check(exp, str(path))
    if model is None:
        raise SpecError([Problem("model", "a sweep for one load needs a model file, not a calibration", str(path))])
    with RunFolder(folder) as rf:
        return _sweep_load(exp, model, load, rf, progress)


def _sweep_load(exp: Experiment, model: SystemModel, load: dict, rf: RunFolder, progress: Progress) -> dict:
    from .sweep.regimes import load_vector

    rate = load["requests_per_s"]
    name = f"load-{rate:.4g}rps" + "".join(f"-{k[4:]}{v:.2g}" for k, v in sorted(load.items()) if k.startswith("mix_"))
    regime = {"name": name, "steps": 0, "share": 0.0, "representative": dict(load), "vector": load_vector(load)}
    doc = _stage_sweep(exp, model, regime, 100, {}, rf.path, progress)
    write_atomically(rf.path / "sweep" / f"{name}.json", _dump(doc))
    out_doc = _stage_policy(exp, model, {"regimes": [regime]}, {name: doc}, rf.path)
    return out_doc["policies"][0]


__all__ = ["RunSummary", "STAGES", "check", "load_experiment", "run", "sweep_load"]
