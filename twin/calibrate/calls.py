"""A service's calls after calibration: the skeleton's intent, the trace's numbers.

The skeleton may say how a service calls another (a timeout, retries and their backoff, what to
do on an error, an exclusive ``one_of`` choice); the trace says how often and how many times.
Each skeleton call keeps its settings and takes the measured probability, fan-out count and
classes; a call the trace shows and the skeleton does not is added plain; a skeleton call the
trace never shows is dropped, and said.
"""

from __future__ import annotations

from ..spec import Call
from .routing import Edge

SETTINGS = ("timeout_s", "retries", "backoff", "on_error")


def _pooled(edges: list[Edge]) -> float:
    """The probability that a visit of the caller makes the call, over all its classes' edges."""
    spans = sum(e.caller_spans for e in edges)
    return sum(e.probability * e.caller_spans for e in edges) / spans if spans else 0.0


def merge_calls(caller: str, skeleton: list[Call], measured: list[Edge],
                fanouts: dict[tuple[str, str], bool]) -> tuple[list[dict], list[str]]:
    """The calls of ``caller`` for the calibrated model, and warnings."""
    by_target: dict[str, list[Edge]] = {}
    for e in measured:
        by_target.setdefault(e.target, []).append(e)
    out, used, warnings = [], set(), []
    for call in skeleton:
        settings = {k: getattr(call, k) for k in SETTINGS}
        settings["backoff"] = call.backoff.model_dump()
        if call.one_of is not None:
            seen = {t: _pooled(by_target[t]) for t in call.one_of if t in by_target}
            if not seen:
                warnings.append(f"{caller}: the skeleton's call one_of {sorted(call.one_of)} never shows in the "
                                f"trace; dropped")
                continue
            total = sum(seen.values())
            scale = 1.0 / total if total > 1 else 1.0  # branches are exclusive: their sum cannot pass 1
            out.append({"one_of": {t: round(p * scale, 4) for t, p in seen.items()}, **settings})
            used.update(seen)
            continue
        edges = by_target.get(call.to)
        if not edges:
            warnings.append(f"{caller}: the skeleton's call to {call.to} never shows in the trace; dropped")
            continue
        for e in edges:
            measured_call = e.to_call(fanouts.get((caller, e.target)))
            if call.retries:
                # retried attempts are calls too: the count comes from the skeleton, and the time a
                # caller waits between attempts is in its exclusive time
                if measured_call["count"] > call.count:
                    warnings.append(f"{caller} -> {e.target}: {e.fanout:.2f} calls per caller span where the "
                                    f"skeleton says {call.count} with up to {call.retries} retries; kept "
                                    f"{call.count} (backoff waits count as {caller}'s time)")
                measured_call["count"] = call.count
            if "fanout" not in measured_call:
                measured_call["fanout"] = call.fanout
            out.append({**measured_call, **settings})
        used.add(call.to)
    for target, edges in by_target.items():
        if target not in used:
            out.extend(e.to_call(fanouts.get((caller, target))) for e in edges)
    return out, warnings
