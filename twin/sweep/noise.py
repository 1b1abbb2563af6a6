"""No noise passed off as a setting: which of the winner's parameters have a measurable effect.

For each swept parameter whose winning value differs from the current one (the model's value for
the target the tunable changes; later the primary's current settings, passed as ``current``), the
winner is run again with that one parameter at its current value, on the same replications (loads
1..R, common random numbers), so each replication gives a paired difference per objective and
constraint.  When every paired t interval contains 0 and the constraints are still met (with
confidence where the winner met them with confidence), the parameter has no measurable effect: it
is left at its current value, and the next parameter is judged against that setting.  Paired
intervals that exclude 0 but lie within the sweep's ``tie_tolerance`` of the winner's values (a
deterministic cost difference of 0.1%, say) are a *negligible effect*: measurable, too small to
move a setting away from the current one, which is kept likewise.  Otherwise it
keeps the swept value, and its effect (winner minus current, with its interval) is reported.
Parameters are judged in a fixed order (the sweep's), so the outcome is deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from ..sim.stats import estimate


def paired_effects(winner: list[dict], variant: list[dict], metrics: list[str]) -> dict:
    """{metric: interval of winner - variant over the paired replications} (finite pairs only)."""
    out = {}
    for m in metrics:
        pairs = [(a.get(m, math.nan), b.get(m, math.nan)) for a, b in zip(winner, variant)]
        out[m] = estimate([a - b for a, b in pairs if a is not None and b is not None
                           and math.isfinite(a) and math.isfinite(b)])
    return out


def _inside_noise(effects: dict, replications: int, scale: dict | None = None, tolerance: float = 0.0) -> bool:
    """Every metric's paired interval defined over all replications and either containing 0 or, with
    ``tolerance`` > 0, inside +-tolerance x |scale[metric]| (an effect too small to matter, as the
    sweep's ``tie_tolerance`` says of objectives: a deterministic cost difference of 0.1% is measurable
    but not a reason to move a setting away from the current one)."""
    def negligible(m, e):
        if e.contains(0.0):
            return True
        ref = abs((scale or {}).get(m, math.nan))
        return tolerance > 0 and math.isfinite(ref) and -tolerance * ref <= e.low and e.high <= tolerance * ref

    return all(e.n == replications and e.n >= 2 and math.isfinite(e.half_width) and negligible(m, e)
               for m, e in effects.items())


def settle(winner, replicate: Callable[[dict], object], current: dict, names: list[str], sweep) -> dict:
    """Judge each parameter of ``winner`` (a ``Candidate``) against its ``current`` value;
    ``replicate(params)`` gives a ``Candidate`` of ``params`` on the winner's replications.  The
    winner is updated in place to the settled parameters (and their estimates).  Returns, per
    parameter, what was found: {"value", "verdict": "effect" | "no measurable effect" | "at current"
    | "negligible effect" | "not checked", "current", "swept", "effects": {metric: interval}, "reason"}."""
    metrics = [m for m, _ in sweep.objectives] + [m for m in sweep.constraints if m not in dict(sweep.objectives)]
    n = len(winner.replications)
    out = {}
    for name in names:
        value, cur = winner.params.get(name), current.get(name)
        row = {"value": value, "current": cur, "swept": value, "effects": {}}
        if cur is None:
            out[name] = {**row, "verdict": "not checked", "reason": "the current value is outside the swept domain"}
            continue
        if value == cur:
            out[name] = {**row, "verdict": "at current"}
            continue
        if n < 2:
            out[name] = {**row, "verdict": "not checked", "reason": "fewer than 2 replications (sweep.replications)"}
            continue
        variant = replicate({**winner.params, name: cur})
        effects = paired_effects(winner.replications, variant.replications, metrics)
        row["effects"] = {m: e.to_dict() for m, e in effects.items()}
        safe = variant.confident if winner.confident else variant.feasible
        scale = {m: winner.estimates[m].mean for m in metrics if m in winner.estimates}
        tolerance = getattr(sweep, "tie_tolerance", 0.0)
        quiet = _inside_noise(effects, n, scale, tolerance)
        if quiet and safe:
            if _inside_noise(effects, n):
                out[name] = {**row, "value": cur, "verdict": "no measurable effect"}
            else:
                out[name] = {**row, "value": cur, "verdict": "negligible effect",
                             "reason": f"every paired interval within +-{tolerance:.0%} of the winner's value "
                                       f"(sweep.tie_tolerance)"}
            winner.params, winner.estimates, winner.replications = variant.params, variant.estimates, variant.replications
            winner.feasible, winner.confident = variant.feasible, variant.confident
        else:
            out[name] = {**row, "verdict": "effect",
                         "reason": "" if quiet else f"a paired interval excludes 0 and +-{tolerance:.0%}"}
            if not safe:
                out[name]["reason"] = "at the current value a constraint is not met with confidence"
    return out


def describe(name: str, row: dict) -> str:
    """One line for the report: the parameter's outcome."""
    v = row["verdict"]
    if v == "no measurable effect":
        return f"{name}: no measurable effect, left at {row['current']} (swept {row['swept']})"
    if v == "negligible effect":
        return f"{name}: negligible effect, left at {row['current']} (swept {row['swept']}): {row.get('reason', '')}"
    if v == "at current":
        return f"{name}: {row['value']} (the current value)"
    if v == "not checked":
        return f"{name}: {row['value']} (not checked: {row.get('reason', '')})"
    return f"{name}: {row['value']} (effect vs {row['current']}: {row.get('reason', '')})"


__all__ = ["describe", "paired_effects", "settle"]
