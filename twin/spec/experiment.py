"""Experiment configs: what ``twin run EXPERIMENT`` does, stage by stage, as a validated record.

An experiment names the model (or the traces to calibrate one from), the history to forecast,
how to cut the forecast into load regimes, the sweep on the twin, the edge cases every regime
also faces, and where studies and policies are stored::

    name: quickstart
    seed: 7
    model: ../models/reference/shop.yaml          # paths are relative to this file
    history: {series: data/elb_requests.csv, time_zone: UTC, scale: 0.35}
    forecast: {model: auto, horizon: 1d}
    regimes: {max: 3, quantile: 0.9}
    sweep:
      minimize: [cost]
      constraints: {latency_p99_s: 0.3, error_rate: 0.01}
      tunables: [frontend_workers, search_instances, memory_size]
      trials: 30
    scenarios:
      - {kind: flash_crowd, at: 5min, factor: 2}
    policy: {neighbours: 3}
    schedule: {lead_time: 15min}

Unknown keys, impossible bounds and wrong types are errors that name the line; checks that need
the model (tunables, metric names) are made by ``check_against_model`` before any work starts.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .distributions import NoBool
from .errors import Problem, SpecError
from .model import Name, NonNegSeconds, Seconds, SystemModel

TOP_METRICS = ("latency_mean_s", "latency_p50_s", "latency_p95_s", "latency_p99_s", "throughput_per_s",
               "error_rate", "rejection_rate", "timeout_rate", "cache_hit_ratio", "cost")
SERVICE_METRICS = ("utilisation", "queue_length_mean", "wait_mean_s", "wait_probability", "sojourn_mean_s",
                   "blocking_probability", "throughput_per_s", "availability")
CLASS_METRICS = ("latency_mean_s", "latency_p50_s", "latency_p95_s", "latency_p99_s", "error_rate",
                 "throughput_per_s")


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelSource(Section):
    """Calibrate the model from traces instead of taking one (``twin calibrate``'s inputs)."""

    traces: Annotated[list[Path], Field(min_length=1)]
    skeleton: Path
    columns: dict[str, str] = {}
    time_zone: str | None = None
    service: Name | None = None


class History(Section):
    """The history the forecast learns from: a series CSV, or a request trace binned to ``trace_step``.
    ``scale`` multiplies the series (to map a public series onto the modelled application)."""

    series: Path
    value_column: str | None = None
    time_zone: str | None = None
    counts: bool = False
    trace_step: str | None = None
    scale: Annotated[float, Field(gt=0, le=1e9, allow_inf_nan=False), NoBool] = 1.0
    events: Path | None = None
    holidays: str | None = None
    social: Path | None = None


class Forecast(Section):
    model: str = "auto"
    horizon: str = "1d"
    calibration_windows: Annotated[int, Field(ge=0, le=50), NoBool] = 8


class Regimes(Section):
    """Load regimes: the forecast's steps clustered on their load vectors (rate, volume,
    concurrency, class mix, burstiness); each regime is swept once, at ``quantile`` of the forecast."""

    max: Annotated[int, Field(ge=1, le=12), NoBool] = 3
    quantile: Annotated[float, Field(gt=0, lt=1), NoBool] = 0.9
    #: a regime smaller than this share of the steps joins its nearest neighbour
    min_share: Annotated[float, Field(ge=0, lt=0.5), NoBool] = 0.05


class Sweep(Section):
    """An Optuna study per regime over the model's tunables, on the twin under the regime's load."""

    minimize: list[str] = ["cost"]
    maximize: list[str] = []
    #: metric -> upper bound; a trial that exceeds one is infeasible (Optuna's constraints)
    constraints: dict[str, Annotated[float, Field(ge=0, allow_inf_nan=False), NoBool]] = {}
    #: tunables to sweep (default: all the model declares)
    tunables: list[Name] | None = None
    trials: Annotated[int, Field(ge=1, le=100_000), NoBool] = 40
    sampler: Literal["tpe", "random", "nsga2", "gp"] = "tpe"
    #: the leading candidates re-run with independent loads before a winner is declared
    finalists: Annotated[int, Field(ge=1, le=50), NoBool] = 3
    replications: Annotated[int, Field(ge=2, le=200), NoBool] = 5
    #: a finalist whose constraints hold on average but whose interval crosses a bound, and which
    #: beats every finalist that holds them with confidence, gets more replications (doubling) up to
    #: this many (default: 4 x replications) before it is passed over as unsure
    max_replications: Annotated[int, Field(ge=2, le=800), NoBool] | None = None
    #: the share of a finalist's replications (each one window) in which every constraint must hold, as
    #: an SLO is judged per window: with window = the SLO's window, 0.75 says "in 3 windows of 4";
    #: 0 judges the means (and their intervals) only
    compliance: Annotated[float, Field(ge=0, le=1), NoBool] = 0.0
    #: with ``compliance``, a finalist meets it *with confidence* when the one-sided lower confidence
    #: bound (Clopper-Pearson, at this level) of the share of its windows that met every constraint is
    #: at least ``compliance``: 3 windows of 4 are not evidence of "7 in 8" (at 0.8 and 0.875: 13 of
    #: 13 windows, or 16 of 16 after firming up, are)
    compliance_confidence: Annotated[float, Field(gt=0, lt=1), NoBool] = 0.8
    #: a trial that breaks a constraint on its one window by at most this share of the bound may still
    #: be a finalist: one window is noisy (a tail quantile's most of all), the finalists' replications judge
    screen_margin: Annotated[float, Field(ge=0, le=1), NoBool] = 0.25
    #: finalists within this relative distance of the winner's objective are a tie, whatever their intervals
    tie_tolerance: Annotated[float, Field(ge=0, le=1), NoBool] = 0.01
    #: length of the synthesized load each trial faces, and its warm-up
    window: Annotated[Seconds, Field(le=86_400)] = 600.0  # a trial simulates all of it: a day at most
    warmup: NonNegSeconds = 60.0
    #: a window shorter than the model needs (failure cycles, cache filling, queueing relaxation at the
    #: regime's load; twin.sweep.window): warn and keep it, lengthen it (and the warm-up), or refuse
    window_policy: Literal["warn", "lengthen", "refuse"] = "warn"
    #: caches filled from their key distribution before each run, so that a short window measures steady state
    warm_caches: bool = False
    #: a trial whose first third of the window already breaks a constraint by this factor stops there
    prune: bool = True
    prune_factor: Annotated[float, Field(ge=1, le=100), NoBool] = 1.5
    #: trials from the nearest regime already swept, run first
    warm_start: Annotated[int, Field(ge=0, le=100), NoBool] = 3
    #: Optuna storage URL (default: a SQLite file in the run folder)
    storage: str | None = None
    #: worker processes on this machine (more can join with ``twin sweep --worker``)
    workers: Annotated[int, Field(ge=1, le=256), NoBool] = 1

    @model_validator(mode="after")
    def _objectives(self):
        objectives = [*self.minimize, *self.maximize]
        if not objectives:
            raise ValueError("minimize: expected at least one metric to minimize or maximize")
        if len(set(objectives)) != len(objectives):
            raise ValueError(f"minimize: a metric appears twice among the objectives {objectives}")
        if self.warmup >= self.window:
            raise ValueError(f"warmup: expected less than the window ({self.window:g} s), got {self.warmup:g} s")
        if self.max_replications is not None and self.max_replications < self.replications:
            raise ValueError(f"max_replications: expected at least replications ({self.replications}), "
                             f"got {self.max_replications}")
        if self.sampler == "nsga2" and len(objectives) < 2:
            raise ValueError("sampler: nsga2 is for two or more objectives; use tpe for one")
        return self

    @property
    def objectives(self) -> list[tuple[str, str]]:
        return [(m, "minimize") for m in self.minimize] + [(m, "maximize") for m in self.maximize]

    @property
    def replication_cap(self) -> int:
        return self.max_replications if self.max_replications is not None else min(4 * self.replications, 800)


class Policy(Section):
    #: policy database URL (default: a SQLite file in the run folder)
    db: str | None = None
    neighbours: Annotated[int, Field(ge=1, le=50), NoBool] = 3
    #: beyond this normalised distance a profile has no close neighbour
    max_distance: Annotated[float, Field(gt=0, le=100), NoBool] = 1.0
    #: a change of setting needs the new choice to be this much closer (relative) than the held one
    hysteresis: Annotated[float, Field(ge=0, le=1), NoBool] = 0.2


class Schedule(Section):
    #: settings are applied this long before the load they are for
    lead_time: NonNegSeconds = 900.0
    #: a change towards the settings of a quieter regime is made only if it would hold this long
    #: (changes towards a busier regime are made at once), as an autoscaler's scale-down window
    min_hold: NonNegSeconds = 3600.0


class Experiment(Section):
    name: Name
    seed: Annotated[int, Field(ge=0), NoBool] = 0
    model: Path | None = None
    calibrate: ModelSource | None = None
    history: History
    forecast: Forecast = Forecast()
    regimes: Regimes = Regimes()
    sweep: Sweep = Sweep()
    scenarios: list[dict[str, Any]] = []
    policy: Policy = Policy()
    schedule: Schedule = Schedule()

    @model_validator(mode="after")
    def _one_model(self):
        if (self.model is None) == (self.calibrate is None):
            raise ValueError("model: expected either 'model' (a model file) or 'calibrate' (traces and a skeleton)")
        return self


def resolve_paths(data: Any, base: Path) -> Any:
    """Paths in an experiment are relative to its file: make them absolute before validation."""
    if not isinstance(data, dict):
        return data
    data = dict(data)

    def fix(section: dict | None, keys):
        if not isinstance(section, dict):
            return section
        section = dict(section)
        for key in keys:
            value = section.get(key)
            if isinstance(value, str):
                section[key] = str(base / value)
            elif isinstance(value, list):
                section[key] = [str(base / v) if isinstance(v, str) else v for v in value]
        return section

    if isinstance(data.get("model"), str):
        data["model"] = str(base / data["model"])
    for key, fields in (("calibrate", ("traces", "skeleton")), ("history", ("series", "events", "social"))):
        if key in data:
            data[key] = fix(data[key], fields)
    return data


_METRIC = re.compile(r"^(service|cache|class)\.([A-Za-z_][A-Za-z0-9_-]*)\.([a-z0-9_]+)$")


def metric_problem(name: str, model: SystemModel) -> str | None:
    """Why ``name`` is not a metric of this model's runs, or None."""
    if name in TOP_METRICS:
        return None
    m = _METRIC.match(name)
    if not m:
        return f"unknown metric {name!r}; expected one of {', '.join(TOP_METRICS)} or service.<name>.<metric>, " \
               f"cache.<name>.hit_ratio, class.<name>.<metric>"
    kind, who, metric = m.groups()
    names = {"service": model.services, "cache": model.caches, "class": model.classes}[kind]
    if who not in names:
        return f"unknown {kind} {who!r} in {name!r}; the model has {', '.join(names) or 'none'}"
    allowed = {"service": SERVICE_METRICS, "cache": ("hit_ratio",), "class": CLASS_METRICS}[kind]
    if metric not in allowed:
        return f"unknown {kind} metric {metric!r} in {name!r}; expected one of {', '.join(allowed)}"
    return None


def check_against_model(sweep: Sweep, model: SystemModel, *, source: str) -> None:
    """Tunables that the model declares, metrics its runs report: checked before any work."""
    problems = []
    for name in sweep.tunables or []:
        if name not in model.tunables:
            problems.append(Problem("sweep.tunables", f"{name!r} is not a tunable of model {model.name!r}; it has "
                                                       f"{', '.join(model.tunables) or 'none'}", source))
    if not model.tunables:
        problems.append(Problem("sweep", f"model {model.name!r} declares no tunables: nothing to sweep", source))
    for field in ("minimize", "maximize"):
        for metric in getattr(sweep, field):
            why = metric_problem(metric, model)
            if why:
                problems.append(Problem(f"sweep.{field}", why, source))
    for metric in sweep.constraints:
        why = metric_problem(metric, model)
        if why:
            problems.append(Problem(f"sweep.constraints.{metric}", why, source))
    if problems:
        raise SpecError(problems)


__all__ = ["Experiment", "History", "ModelSource", "Policy", "Regimes", "Schedule", "Sweep", "check_against_model",
           "metric_problem", "resolve_paths"]
