"""The policy engine: parameters for a load profile, from the closest stored profiles.

``policy_for`` measures the distance from the profile asked about to every stored policy's
profile (``twin.sweep.regimes.distance``: a doubling of the rate is one unit, a fifth of the mix
moved is one unit), keeps the ``k`` closest within ``max_distance``, and blends their parameters
with weights ``confidence / (distance + 0.05)^2``:

- numeric parameters by a weighted mean, geometric on a log domain, rounded to the domain's
  integers or steps and kept within its bounds;
- categorical parameters by a weighted vote.

The answer carries a confidence (the neighbours' confidence, weighted, times how close the
nearest is: 1 on top of it, 0 at ``max_distance``) and the neighbours used.  With no stored
profile within ``max_distance`` it says so, and names the profile to sweep.

Never extrapolated: a load outside the stored profiles' range (``coverage``: a rate above the
busiest or below the quietest stored regime, or a class's share outside the shares swept) gets no
parameters, only why and what to do (``outside="flag"``, as the schedule asks, keeps the nearest
profile's parameters and says so).  A tunable declared ``monotone: increasing`` (instances,
workers, memory) is never blended below the nearest busier stored regime's value (``decreasing``:
never above it).  ``twin.policy.check`` then checks the answer on the twin at the load asked.

Hysteresis: given the decision now held (``held``), the engine keeps its settings while the
nearest stored profile is the one they were anchored on, and switches to another only when that
one is closer than ``(1 - hysteresis)`` times the distance to the anchor: a load that wavers
between two regimes does not flip the settings back and forth, and a small drift within a regime
does not re-blend them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..spec import SystemModel
from ..sweep.regimes import distance, load_vector
from .store import Policy

EPS = 0.05
RATE_SLACK = 1e-6  # relative: a rate equal to a stored regime's is inside the range
MIX_SLACK = 0.05  # a class's share within 5 points of the shares swept is a mix swept


@dataclass
class Decision:
    params: dict | None
    confidence: float
    neighbours: list[dict] = field(default_factory=list)  # regime, experiment, version, distance, weight
    reason: str = ""
    sweep_needed: bool = False
    held: bool = False
    vector: dict = field(default_factory=dict)  # the load asked about
    anchor: dict = field(default_factory=dict)  # the nearest stored profile's vector
    out_of_range: str | None = None  # above | below | mix: outside the stored profiles' range
    constraints: dict = field(default_factory=dict)  # the neighbours' stored constraints, the tightest bound each
    check: dict | None = None  # twin.policy.check.check_answer at the load asked, once run

    @property
    def anchor_name(self) -> str | None:
        return f"{self.neighbours[0]['experiment']}/{self.neighbours[0]['regime']}" if self.neighbours else None

    def to_dict(self) -> dict:
        return {"params": self.params, "confidence": self.confidence, "neighbours": self.neighbours,
                "reason": self.reason, "sweep_needed": self.sweep_needed, "held": self.held, "vector": self.vector,
                "anchor": self.anchor_name, "out_of_range": self.out_of_range, "constraints": self.constraints,
                "check": self.check}


def blend(model: SystemModel, picks: list[tuple[dict, float]]) -> dict:
    """Weighted blend of parameter sets (params, weight) within the model's tunable domains."""
    out = {}
    names = [n for n in picks[0][0] if all(n in p for p, _ in picks)]
    for name in names:
        t = model.tunables.get(name)
        values = [(p[name], w) for p, w in picks]
        total = sum(w for _, w in values)
        if t is None or t.type == "categorical":
            votes: dict = {}
            for v, w in values:
                votes[v] = votes.get(v, 0.0) + w
            out[name] = max(votes, key=votes.get)  # the first listed wins a tie
            continue
        if t.log:
            x = math.exp(sum(w * math.log(v) for v, w in values) / total)
        else:
            x = sum(w * v for v, w in values) / total
        if t.step:
            x = t.low + round((x - t.low) / t.step) * t.step
        if t.type == "int":
            x = int(round(x))
        out[name] = min(max(x, t.low if t.type != "int" else int(t.low)), t.high if t.type != "int" else int(t.high))
    return out


def coverage(load: dict, policies: list[Policy], model: SystemModel) -> tuple[str | None, str]:
    """Whether ``load`` lies within the stored profiles' range: (None, "") inside, else
    ("above" | "below" | "mix", why and what to do)."""
    todo = "sweep this load (twin policy query --sweep EXPERIMENT) before using settings for it"
    rate = load.get("requests_per_s")
    rated = [(p.load["requests_per_s"], p) for p in policies if p.load.get("requests_per_s") is not None]
    if rate is not None and rated:
        top, busiest = max(rated, key=lambda rp: rp[0])
        low, quietest = min(rated, key=lambda rp: rp[0])
        if rate > top * (1 + RATE_SLACK):
            return "above", (f"{rate:.4g} req/s is above the busiest stored regime, {busiest.experiment}/"
                             f"{busiest.regime} ({top:.4g} req/s): no stored settings were run at this load; {todo}")
        if rate < low * (1 - RATE_SLACK):
            return "below", (f"{rate:.4g} req/s is below the quietest stored regime, {quietest.experiment}/"
                             f"{quietest.regime} ({low:.4g} req/s): no stored settings were run at this load; {todo}")
    if policies and any(k.startswith("mix_") for k in load):
        for c, k in model.classes.items():
            share = load.get(f"mix_{c}", 0.0)
            swept = [p.load.get(f"mix_{c}", 0.0 if any(n.startswith("mix_") for n in p.load) else k.share)
                     for p in policies]  # a profile without a mix was swept at the model's shares
            if not min(swept) - MIX_SLACK <= share <= max(swept) + MIX_SLACK:
                return "mix", (f"class {c}'s share {share:.2f} is outside the shares swept ({min(swept):.2f} to "
                               f"{max(swept):.2f}): this class mix was never swept; {todo}")
    return None, ""


def monotone(model: SystemModel, params: dict, rate: float | None, policies: list[Policy]) -> dict:
    """``params`` with each tunable declared monotone in load held to the nearest busier stored
    regime's value: never below it (``increasing``), never above it (``decreasing``)."""
    if rate is None:
        return params
    busier = sorted((p for p in policies if p.load.get("requests_per_s", -math.inf) >= rate * (1 - RATE_SLACK)),
                    key=lambda p: p.load["requests_per_s"])
    out = dict(params)
    for name, t in model.tunables.items():
        if t.monotone is None or name not in out:
            continue
        ref = next((p.params[name] for p in busier if isinstance(p.params.get(name), (int, float))), None)
        if ref is None:
            continue
        out[name] = max(out[name], ref) if t.monotone == "increasing" else min(out[name], ref)
    return out


def _constraints(policies: list[Policy]) -> dict:
    """The neighbours' stored constraints, the tightest bound of each metric."""
    out: dict = {}
    for p in policies:
        for metric, bound in (p.constraints or {}).items():
            out[metric] = min(bound, out.get(metric, math.inf))
    return out


def policy_for(load: dict, policies: list[Policy], model: SystemModel, *, k: int = 3, max_distance: float = 1.0,
               hysteresis: float = 0.0, held: Decision | None = None, outside: str = "refuse") -> Decision:
    """Parameters for a load (requests_per_s, mix_*, burstiness... as in a profile); see the module.
    ``outside``: "refuse" (no parameters outside the stored range) or "flag" (the nearest's, said)."""
    if not max_distance > 0:
        raise ValueError(f"max_distance: expected a distance > 0, got {max_distance}")
    vec = load_vector(load)
    mine = [p for p in policies if p.model == model.name]
    scored = sorted(((distance(vec, p.vector), p) for p in mine), key=lambda dp: dp[0])
    close = [(d, p) for d, p in scored if d <= max_distance][:k]
    out_of_range, why = coverage(load, mine, model)
    if not close or (out_of_range and outside == "refuse"):
        nearest = f"; the nearest, {scored[0][1].experiment}/{scored[0][1].regime}, is {scored[0][0]:.2f} away" \
            if scored else ""
        far = f"no close neighbour within {max_distance:g}{nearest}: sweep this profile" if not close else ""
        return Decision(None, 0.0, [], "; ".join(r for r in (why, far) if r), sweep_needed=True, vector=vec,
                        out_of_range=out_of_range)
    weights = [p.confidence / (d + EPS) ** 2 for d, p in close]
    if sum(weights) <= 0:
        weights = [1.0 / (d + EPS) ** 2 for d, _ in close]
    params = blend(model, [(p.params, w) for (_, p), w in zip(close, weights)])
    if not out_of_range:  # inside the range, a capacity never falls below the nearest busier regime's
        params = monotone(model, params, load.get("requests_per_s"), mine)
    total = sum(weights)
    trust = sum(w * p.confidence for (_, p), w in zip(close, weights)) / total
    closeness = max(0.0, 1.0 - close[0][0] / max_distance)
    neighbours = [{"experiment": p.experiment, "regime": p.regime, "version": p.version, "distance": d,
                   "weight": w / total, "confidence": p.confidence} for (d, p), w in zip(close, weights)]
    reason = f"{len(close)} neighbour(s) within {max_distance:g}"
    if why:
        reason += f"; outside the stored range: {why}"
    decision = Decision(params, trust * closeness, neighbours, reason, vector=vec, anchor=close[0][1].vector,
                        out_of_range=out_of_range, sweep_needed=bool(out_of_range),
                        constraints=_constraints([p for _, p in close]))
    if held is not None and held.params is not None and held.anchor:
        d_anchor = distance(vec, held.anchor)
        if decision.anchor_name == held.anchor_name:
            return _keep(held, vec, f"held: the nearest stored profile is still {held.anchor_name}", decision)
        if close[0][0] >= (1 - hysteresis) * d_anchor:
            return _keep(held, vec, f"held: {decision.anchor_name} ({close[0][0]:.2f} away) is not {hysteresis:.0%} "
                                    f"closer than {held.anchor_name} ({d_anchor:.2f})", decision)
    return decision


def _keep(held: Decision, vec: dict, reason: str, now: Decision) -> Decision:
    if now.out_of_range:
        reason += f"; outside the stored range: {now.reason.partition('outside the stored range: ')[2]}"
    return Decision(held.params, held.confidence, held.neighbours, reason, held=True, vector=vec, anchor=held.anchor,
                    out_of_range=now.out_of_range, sweep_needed=now.sweep_needed, constraints=held.constraints)


__all__ = ["Decision", "blend", "coverage", "monotone", "policy_for"]
