"""An answer of the policy engine checked on the twin at the load asked about, before it is given.

Two questions, both answered in the check that goes with the answer:

- **stable**: every service's utilisation below 1.  First by the model's own arithmetic (the
  traffic equations: rate x visits x mean service time / (instances x workers), every cache lookup
  counted as a miss, so an upper bound); where that bound reaches 1 and caches may absorb the
  excess, by the utilisation a short simulation measured (below ``STABLE``);
- **constraints met**: the constraints stored with the policy (from the sweep that made it), each
  metric's mean over a few replications of a short window at the load, with its 95% interval.
"""

from __future__ import annotations

import math

import numpy as np

from ..spec import SystemModel, SpecError, apply_params, expected_visits

#: a simulated service busier than this is taken as saturated (a queue that only grows reads ~1)
STABLE = 0.98


def utilisation_bound(model: SystemModel, load: dict) -> dict[str, float]:
    """Each service's utilisation at ``load`` by the traffic equations, every cache lookup a miss."""
    rate = float(load.get("requests_per_s", 0.0))
    mix = {c: float(load.get(f"mix_{c}", 0.0)) for c in model.classes}
    if sum(mix.values()) <= 0:
        mix = {c: k.share for c, k in model.classes.items()}
    total = sum(mix.values())
    out = {}
    visits = {c: expected_visits(model, c) for c in model.classes}
    for name, svc in model.services.items():
        work = sum(mix[c] / total * visits[c].get(name, 0.0) * svc.service_time_for(c).mean() for c in model.classes)
        out[name] = float(rate * work / (svc.instances * svc.workers))
    return out


def _workload(model: SystemModel, load: dict, window_s: float, rng: np.random.Generator):
    from ..load.fit import mmpp_for_dispersion
    from ..load.profile_workload import workload
    from ..sweep.task import profile_frame, window_profile

    rates = {k: v for k, v in load.items() if k == "requests_per_s" or k.startswith("mix_")}
    frame = profile_frame(window_profile(rates, window_s))
    bursts = None
    if load.get("burstiness") and load["burstiness"] > 0 and load["burstiness"] != 1:
        bursts = mmpp_for_dispersion(rates["requests_per_s"], float(load["burstiness"]))
    return workload(frame, model, rng, bursts=bursts, window_field="--check-window")


def check_answer(model: SystemModel, load: dict, params: dict, constraints: dict, *, replications: int = 3,
                 window_s: float = 120.0, warmup_s: float = 20.0, seed: int = 0) -> dict:
    """Run ``params`` on the twin at ``load``; see the module.  Returns the check as plain data:
    passed, stable, how, utilisation per service, constraints (bound, mean, ci_low, ci_high, met), reason."""
    from ..sim.engine import run_replication
    from ..sim.stats import estimate

    out = {"passed": False, "stable": False, "how": "", "utilisation": {}, "constraints": {},
           "replications": 0, "window_s": window_s, "rate": load.get("requests_per_s"), "reason": ""}
    try:
        tuned = apply_params(model, params, source="policy")
    except SpecError as e:
        out["reason"] = f"the stored parameters do not fit {model.name}'s tunables: {e}"
        return out
    bound = utilisation_bound(tuned, load)
    out["utilisation"] = bound
    busiest = max(bound, key=bound.get) if bound else None
    if not bound or bound[busiest] < 1:
        out["stable"], out["how"] = True, "model arithmetic (every cache lookup a miss)"
    elif not tuned.caches:
        out["how"] = "model arithmetic"
        out["reason"] = f"unstable: {busiest} would be {bound[busiest]:.2f} busy (utilisation >= 1)"
        return out
    rows = []
    for r in range(replications):
        w = _workload(tuned, load, window_s, np.random.default_rng([seed, r]))
        result = run_replication(tuned, w, seed=np.random.SeedSequence([seed, r]), warmup_s=min(warmup_s, window_s / 2),
                                 warm_caches=bool(tuned.caches))  # a short window measures the caches' steady state
        rows.append(result.metrics())
    out["replications"] = replications
    if not out["stable"]:
        measured = {s: estimate([m.get(f"service.{s}.utilisation", math.nan) for m in rows]).mean
                    for s in tuned.services}
        out["utilisation"], out["how"] = {s: _finite(u) for s, u in measured.items()}, "short simulation (the arithmetic bound with every lookup a miss " \
                                                   "reached 1)"
        busiest = max(measured, key=lambda s: measured[s] if math.isfinite(measured[s]) else -1.0)
        if not measured[busiest] < STABLE:
            out["reason"] = f"unstable: {busiest} was {measured[busiest]:.2f} busy in the simulation (saturated)"
            return out
        out["stable"] = True
    missed = []
    for metric, limit in constraints.items():
        e = estimate([m.get(metric, math.nan) for m in rows])
        met = math.isfinite(e.mean) and e.mean <= limit
        out["constraints"][metric] = {"bound": limit, "mean": _finite(e.mean), "ci_low": _finite(e.low),
                                      "ci_high": _finite(e.high), "met": met}  # no interval from one replication
        if not met:
            ci = f" (95% CI {e.low:.4g} to {e.high:.4g})" if math.isfinite(e.half_width) else ""
            missed.append(f"{metric} {e.mean:.4g}{ci} > {limit:g}")
    if missed:
        out["reason"] = "constraint missed: " + "; ".join(missed)
        return out
    out["passed"] = True
    out["reason"] = "stable and every stored constraint met" if constraints else \
        "stable; no constraints stored with the policy (a sweep without any, or a database older than 0003): " \
        "stability only"
    return out


def _finite(x: float) -> float | None:
    """A number for JSON: None where it is undefined (NaN)."""
    return float(x) if math.isfinite(x) else None


__all__ = ["STABLE", "check_answer", "utilisation_bound"]
