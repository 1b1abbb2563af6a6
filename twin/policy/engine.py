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

    @property
    def anchor_name(self) -> str | None:
        return f"{self.neighbours[0]['experiment']}/{self.neighbours[0]['regime']}" if self.neighbours else None

    def to_dict(self) -> dict:
        return {"params": self.params, "confidence": self.confidence, "neighbours": self.neighbours,
                "reason": self.reason, "sweep_needed": self.sweep_needed, "held": self.held, "vector": self.vector,
                "anchor": self.anchor_name}


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


def policy_for(load: dict, policies: list[Policy], model: SystemModel, *, k: int = 3, max_distance: float = 1.0,
               hysteresis: float = 0.0, held: Decision | None = None) -> Decision:
    """Parameters for a load (requests_per_s, mix_*, burstiness... as in a profile); see the module."""
    if not max_distance > 0:
        raise ValueError(f"max_distance: expected a distance > 0, got {max_distance}")
    vec = load_vector(load)
    mine = [p for p in policies if p.model == model.name]
    scored = sorted(((distance(vec, p.vector), p) for p in mine), key=lambda dp: dp[0])
    close = [(d, p) for d, p in scored if d <= max_distance][:k]
    if not close:
        nearest = f"; the nearest, {scored[0][1].experiment}/{scored[0][1].regime}, is {scored[0][0]:.2f} away" \
            if scored else ""
        return Decision(None, 0.0, [], f"no close neighbour within {max_distance:g}{nearest}: sweep this profile",
                        sweep_needed=True, vector=vec)
    weights = [p.confidence / (d + EPS) ** 2 for d, p in close]
    if sum(weights) <= 0:
        weights = [1.0 / (d + EPS) ** 2 for d, _ in close]
    params = blend(model, [(p.params, w) for (_, p), w in zip(close, weights)])
    total = sum(weights)
    trust = sum(w * p.confidence for (_, p), w in zip(close, weights)) / total
    closeness = max(0.0, 1.0 - close[0][0] / max_distance)
    neighbours = [{"experiment": p.experiment, "regime": p.regime, "version": p.version, "distance": d,
                   "weight": w / total, "confidence": p.confidence} for (d, p), w in zip(close, weights)]
    decision = Decision(params, trust * closeness, neighbours, f"{len(close)} neighbour(s) within {max_distance:g}",
                        vector=vec, anchor=close[0][1].vector)
    if held is not None and held.params is not None and held.anchor:
        d_anchor = distance(vec, held.anchor)
        if decision.anchor_name == held.anchor_name:
            return _keep(held, vec, f"held: the nearest stored profile is still {held.anchor_name}")
        if close[0][0] >= (1 - hysteresis) * d_anchor:
            return _keep(held, vec, f"held: {decision.anchor_name} ({close[0][0]:.2f} away) is not {hysteresis:.0%} "
                                    f"closer than {held.anchor_name} ({d_anchor:.2f})")
    return decision


def _keep(held: Decision, vec: dict, reason: str) -> Decision:
    return Decision(held.params, held.confidence, held.neighbours, reason, held=True, vector=vec, anchor=held.anchor)


__all__ = ["Decision", "blend", "policy_for"]
