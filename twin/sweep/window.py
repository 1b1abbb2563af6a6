"""The shortest trustworthy sweep window, derived from the model at a regime's load.

A window measures what matters only if it contains the model's slow processes:

- **failures**: several failure/recovery cycles of every service whose instances fail
  (``FAILURE_CYCLES`` x (mean time to failure + mean recovery) / instances, at the fewest
  instances the sweep may set); a window without one measures a system that never fails;
- **cache filling**: the expected time until a cold cache holds its capacity of distinct keys
  (or nearly the whole key space when that fits), from the Zipf key streams that reach it at the
  regime's rate, at the largest capacity the sweep may set: ``sum_i (1 - exp(-lambda p_i t)) = C``
  (the distinct keys a Poisson stream has asked for by t); it must fit in the warm-up, so the
  window needs twice it.  Caches filled before the run (``sweep.warm_caches``) skip it;
- **queueing relaxation** at the bottleneck's utilisation rho and total service rate c mu:
  ``1 / (c mu (1 - sqrt(rho))^2)``; the window needs ``RELAXATIONS`` of them.

With ``sweep.compliance`` > 0 each window is judged on its own, as an SLO window, and failures
need only be held by the finalists' replications together (replications x window).

``decide`` applies ``sweep.window_policy``: ``warn`` (keep the window, say what it misses),
``lengthen`` (take the derived window and warm-up) or ``refuse`` (an error naming the process).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import brentq

from ..spec import Problem, SpecError, SystemModel, expected_visits
from ..spec.experiment import Sweep

FAILURE_CYCLES = 3
RELAXATIONS = 100  # relaxation times per window: the window's mean is then within a few % of steady state
WARMUP_RELAXATIONS = 5
FILL_SHARE = 0.99  # a cache that can hold the whole key space is "full" at this share of it
MAX_WINDOW_S = 86_400.0  # sweep.window's own bound


@dataclass(frozen=True)
class Process:
    """A slow process of the model and the window (and warm-up) it needs."""

    what: str
    time_s: float
    window_s: float
    warmup_s: float
    remedy: str
    #: the need may be spread over the finalists' replications when windows are judged one by one
    #: (``sweep.compliance`` > 0: each window is an SLO window; together they hold the failures)
    spreads: bool = False


@dataclass(frozen=True)
class WindowNeed:
    processes: tuple[Process, ...]

    @property
    def window_s(self) -> float:
        return max((p.window_s for p in self.processes), default=0.0)

    @property
    def warmup_s(self) -> float:
        return max((p.warmup_s for p in self.processes), default=0.0)

    @property
    def slowest(self) -> Process | None:
        return max(self.processes, key=lambda p: p.window_s, default=None)


def _targets(model: SystemModel, tunables, path: str):
    """The swept tunables that set ``path`` (e.g. services.search.instances)."""
    names = model.tunables if tunables is None else tunables
    return [model.tunables[n] for n in names if n in model.tunables and path in model.tunables[n].targets
            and model.tunables[n].type != "categorical"]


def _shares(model: SystemModel, mix: dict | None) -> dict[str, float]:
    shares = {c: cls.share for c, cls in model.classes.items()}
    if mix:
        given = {k[4:]: float(v) for k, v in mix.items() if k.startswith("mix_") and k[4:] in shares}
        if given and sum(given.values()) > 0:
            shares = {c: given.get(c, 0.0) for c in shares}
    total = sum(shares.values())
    return {c: s / total for c, s in shares.items()} if total > 0 else shares


def failure_processes(model: SystemModel, tunables=None) -> list[Process]:
    out = []
    for name, s in model.services.items():
        f = s.failures
        if f is None:
            continue
        instances = min([s.instances] + [int(t.low) for t in _targets(model, tunables, f"services.{name}.instances")])
        rates = [f.recovery_rate_per_s] + [float(t.low) for t in
                                            _targets(model, tunables, f"services.{name}.failures.recovery_rate_per_s")
                                            if t.low is not None and t.low > 0]
        cycle = f.time_to_failure_s.mean() + 1.0 / min(rates)
        need = FAILURE_CYCLES * cycle / max(instances, 1)
        if f.end_s is not None:  # failures scripted in [start_s, end_s): the window needs that stretch, recovered
            need = min(need, f.end_s + 1.0 / min(rates))
        out.append(Process(
            f"failures of service {name!r} ({instances} instance(s), each failing every "
            f"{f.time_to_failure_s.mean():.3g} s on average and recovering in {1 / min(rates):.3g} s)",
            cycle, need, 0.0,
            f"a window of {need:.0f} s holds about {FAILURE_CYCLES} failures; lengthen sweep.window to at least that "
            f"(or set sweep.window_policy: lengthen), or judge windows one by one as SLO windows with "
            f"sweep.compliance and enough replications that together they hold it", spreads=True))
    return out


def fill_time(popularity: np.ndarray, rate_per_s: float, capacity_objects: float) -> float:
    """Expected time until a Poisson stream of ``rate_per_s`` keys drawn by ``popularity`` has asked
    for ``capacity_objects`` distinct keys (or FILL_SHARE of them all, when the space fits)."""
    p = np.asarray(popularity, dtype=float)
    p = p / p.sum()
    target = min(float(capacity_objects), FILL_SHARE * len(p))
    if target <= 0 or rate_per_s <= 0:
        return 0.0 if target <= 0 else math.inf
    f = lambda t: float(np.sum(-np.expm1(-p * rate_per_s * t))) - target  # noqa: E731
    hi = 1.0
    while f(hi) < 0:
        hi *= 2
        if hi > 1e15:  # a stream too thin to fill it in any run
            return math.inf
    return float(brentq(f, 0.0, hi, rtol=1e-9))


def cache_processes(model: SystemModel, rate_per_s: float, mix: dict | None = None, tunables=None) -> list[Process]:
    shares = _shares(model, mix)
    out = []
    for name, cache in model.caches.items():
        parts, rate, size = [], 0.0, 0.0
        for cname, c in model.classes.items():
            if c.keys is None:
                continue
            lam = rate_per_s * shares[cname] * expected_visits(model, cname).get(name, 0.0)
            if lam <= 0:
                continue
            weights = np.arange(1, c.keys.count + 1, dtype=float) ** -c.keys.zipf_exponent
            parts.append(lam * weights / weights.sum())  # keys of different classes' spaces: counted apart
            rate += lam
            size += lam * c.payload_bytes.mean()
        if not parts:
            continue
        ser = model.serialization.get(cache.serialization_method) if cache.serialization_method else None
        entry = size / rate * (ser.size_ratio if ser else 1.0) + cache.entry_overhead_bytes
        capacity = max([cache.capacity_bytes] + [int(t.high) for t in
                                                 _targets(model, tunables, f"caches.{name}.capacity_bytes")])
        objects = capacity / entry if entry > 0 else math.inf
        t = fill_time(np.concatenate(parts), rate, objects)
        out.append(Process(
            f"filling cache {name!r} ({capacity / 2**20:.4g} MiB, about {min(objects, sum(map(len, parts))):,.0f} "
            f"distinct keys, at {rate:.3g} lookups/s)", t, 2 * t, t,
            f"a cold cache needs {t:.0f} s to fill: set sweep.warm_caches: true (caches filled from the key "
            f"distribution before the run), or lengthen sweep.window to {2 * t:.0f} s and sweep.warmup to {t:.0f} s"))
    return out


def relaxation_processes(model: SystemModel, rate_per_s: float, mix: dict | None = None) -> list[Process]:
    """The bottleneck's relaxation time (the busiest service below saturation; every lookup a miss)."""
    shares = _shares(model, mix)
    best = None
    for name, s in model.services.items():
        visits = {c: rate_per_s * shares[c] * expected_visits(model, c).get(name, 0.0) for c in model.classes}
        work = sum(v * s.service_time_for(c).mean() for c, v in visits.items())  # busy worker-seconds per second
        servers = s.instances * s.workers
        rho = work / servers
        if 0 < rho < 1 and (best is None or rho > best[1]):
            best = (name, rho, servers * sum(visits.values()) / work)  # c mu: servers over the mean service time
    if best is None:
        return []
    name, rho, mu = best
    t = 1.0 / (mu * (1 - math.sqrt(rho)) ** 2)
    return [Process(f"queueing relaxation at service {name!r} (utilisation {rho:.2f})", t, RELAXATIONS * t,
                    WARMUP_RELAXATIONS * t, f"lengthen sweep.window to at least {RELAXATIONS * t:.0f} s")]


def derive(model: SystemModel, rate_per_s: float | None = None, *, mix: dict | None = None, tunables=None,
           warm_caches: bool = False) -> WindowNeed:
    """The window the model needs at ``rate_per_s`` (None: only what does not depend on the load)."""
    procs = failure_processes(model, tunables)
    if rate_per_s is not None:
        if not warm_caches:
            procs += cache_processes(model, rate_per_s, mix, tunables)
        procs += relaxation_processes(model, rate_per_s, mix)
    return WindowNeed(tuple(procs))


@dataclass(frozen=True)
class Decision:
    """The window and warm-up a regime's trials run, what the model needs, and what to tell the user."""

    window_s: float
    warmup_s: float
    need: WindowNeed
    messages: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict:
        return {"window_s": self.window_s, "warmup_s": self.warmup_s, "needed_window_s": self.need.window_s,
                "processes": [{"process": p.what, "time_s": p.time_s, "window_s": p.window_s} for p in
                              self.need.processes], "messages": list(self.messages)}


def decide(sweep: Sweep, need: WindowNeed, *, source: str, label: str = "") -> Decision:
    """Apply ``sweep.window_policy`` to the configured window; ``refuse`` (or a needed window over a
    day under ``lengthen``) raises a ``SpecError`` naming sweep.window and the process."""
    where = f" ({label})" if label else ""

    def covered(p):  # failures, with windows judged one by one: the replications' windows together
        spread = sweep.replications if p.spreads and sweep.compliance > 0 else 1
        return p.window_s <= sweep.window * spread

    short = [p for p in sorted(need.processes, key=lambda p: -p.window_s) if not covered(p)]
    if not short:
        return Decision(sweep.window, sweep.warmup, need)
    messages = tuple(f"sweep.window{where}: {sweep.window:g} s is shorter than the {p.window_s:.0f} s that {p.what} "
                     f"needs; {p.remedy}" for p in short)
    if sweep.window_policy == "refuse":
        raise SpecError([Problem("sweep.window", m.split(": ", 1)[1], source) for m in messages])
    if sweep.window_policy == "lengthen":
        if need.window_s > MAX_WINDOW_S:
            p = short[0]
            raise SpecError([Problem("sweep.window", f"{p.what} needs a window of {p.window_s:.0f} s, longer than a "
                                                     f"day (the most a sweep runs); {p.remedy}", source)])
        window, warmup = need.window_s, max(sweep.warmup, need.warmup_s)
        return Decision(window, warmup, need, tuple(f"sweep.window{where}: lengthened from {sweep.window:g} s to "
                                                    f"{window:.0f} s (warm-up {warmup:.0f} s) for {p.what}"
                                                    for p in short[:1]))
    return Decision(sweep.window, sweep.warmup, need, messages)


def for_load(sweep: Sweep, model: SystemModel, load: dict, *, source: str, label: str = "") -> Decision:
    """``decide`` on what the model needs at a regime's load ({"requests_per_s": r, "mix_<class>": share})."""
    need = derive(model, float(load["requests_per_s"]), mix=load, tunables=sweep.tunables,
                  warm_caches=sweep.warm_caches)
    return decide(sweep, need, source=source, label=label)


__all__ = ["Decision", "Process", "WindowNeed", "cache_processes", "decide", "derive", "failure_processes",
           "fill_time", "for_load", "relaxation_processes"]
