"""Calls between services, from parent/child spans: who calls whom, how often, how many times.

For each caller span, count its callee spans per target service.  Per (caller, target, request
class): the probability that a caller span calls the target at least once, and the mean number
of calls when it does (the fan-out).  Classes whose probabilities agree within sampling error
share one call; callees that overlap in time mean parallel calls or a parallel fan-out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from ..traces.spangraph import CLIENT_CALLER, call_graph, root_classes
from .requests import ClassMap


@dataclass(frozen=True)
class Edge:
    caller: str
    target: str
    classes: tuple[str, ...] | None  # None: every class that reaches the caller
    probability: float
    fanout: float
    caller_spans: int

    def to_call(self, parallel_fanout: bool | None = None) -> dict:
        call = {"to": self.target, "probability": round(min(1.0, self.probability), 4),
                "count": max(1, int(round(self.fanout)))}
        if call["count"] > 1 and parallel_fanout is not None:
            call["fanout"] = "parallel" if parallel_fanout else "sequential"
        if self.classes is not None:
            call["classes"] = list(self.classes)
        return call

    def to_dict(self) -> dict:
        return {"caller": self.caller, "target": self.target, "classes": list(self.classes) if self.classes else "all",
                "probability": self.probability, "fanout": self.fanout, "caller_spans": self.caller_spans}


def edges(spans: pd.DataFrame, classes: ClassMap, *, skip_callers=frozenset(), z: float = 3.0,
          request_class: pd.Series | None = None) -> list[Edge]:
    """The call edges with their probabilities and fan-outs (callers in ``skip_callers`` skipped).

    ``request_class``: each span's request class, when the caller has it already.
    A class that reaches the caller but never calls the target is left out of the call's
    classes; the others share one call when their probabilities agree within ``z`` standard
    errors and their fan-outs round alike, else each gets its own.
    """
    graph = call_graph(spans)
    graph = graph[(graph["caller"] != CLIENT_CALLER) & ~graph["caller"].isin(skip_callers)]
    graph = graph.assign(cls=classes.of(graph["class"]).to_numpy())
    graph = graph.groupby(["caller", "callee", "cls"], as_index=False)[["calling_spans", "calls"]].sum()
    reach = pd.DataFrame({"caller": spans["service"].astype(str),
                          "cls": (request_class if request_class is not None
                                  else classes.of(root_classes(spans))).to_numpy()}).value_counts()
    out: list[Edge] = []
    for (caller, target), group in graph.groupby(["caller", "callee"]):
        reaching = reach[caller]
        rows = [(r.cls, r.calling_spans / int(reaching[r.cls]), r.calls / r.calling_spans, int(reaching[r.cls]))
                for r in group.itertuples() if r.calling_spans]
        if not rows:
            continue
        weight = sum(p * n for _, p, _, n in rows)
        total = sum(n for *_, n in rows)
        p_all, fan_all = weight / total, sum(f * p * n for _, p, f, n in rows) / weight
        agree = all(abs(p - p_all) <= z * math.sqrt(max(p_all * (1 - p_all), 1e-12) / n) and
                    round(f) == round(fan_all) for _, p, f, n in rows)
        if agree:
            classes_ = None if len(rows) == len(reaching) else tuple(sorted(r[0] for r in rows))
            out.append(Edge(caller, target, classes_, p_all, fan_all, total))
        else:
            out.extend(Edge(caller, target, (cls,), p, f, n) for cls, p, f, n in rows)
    return out


def concurrency(spans: pd.DataFrame, *, min_parents: int = 20) -> tuple[dict[str, bool], dict[tuple[str, str], bool]]:
    """Do callees run at the same time? Returns (call_mode, fanout) verdicts.

    ``call_mode[caller]``: siblings calling *different* services usually overlap (parallel calls);
    ``fanout[(caller, target)]``: repeated calls to one service usually overlap (parallel fan-out).
    "Usually" is more than half of the caller spans that have such siblings, and at least
    ``min_parents`` of them.
    """
    child = spans[spans["parent_id"].notna()]
    if child.empty:
        return {}, {}
    start = child["timestamp"].astype("int64").to_numpy() / 1e9
    frame = pd.DataFrame({"parent": child["parent_id"].astype(str).to_numpy(),
                          "target": child["service"].astype(str).to_numpy(),
                          "start": start, "end": start + child["latency_s"].to_numpy(dtype=float)})
    owner = pd.Series(spans["service"].astype(str).to_numpy(), index=spans["span_id"].astype(str))
    owner = owner[~owner.index.duplicated()]
    frame["caller"] = owner.reindex(frame["parent"]).to_numpy()

    def overlapping(groups: list[str]) -> pd.DataFrame:
        f = frame.sort_values([*groups, "start"])
        same = (f[groups] == f[groups].shift()).all(axis=1)
        prev_end = f.groupby(groups, sort=False)["end"].cummax().shift()
        f = f.assign(sibling=same, overlap=same & (f["start"] < prev_end - 1e-9))
        per = f.groupby(groups).agg(of=("caller", "first"), to=("target", "first"),
                                    sibling=("sibling", "any"), overlap=("overlap", "any"))
        return per[per["sibling"]].reset_index(drop=len(groups) > 1)

    modes, fanouts = {}, {}
    # call mode: do calls to *different* targets overlap? Each target's calls under one parent
    # collapse into their hull first, so a parallel fan-out to one target does not count.
    hull = frame.groupby(["parent", "target"], as_index=False).agg(caller=("caller", "first"),
                                                                  start=("start", "min"), end=("end", "max"))
    hull = hull.sort_values(["parent", "start"])
    same = hull["parent"].eq(hull["parent"].shift())
    prev_end = hull.groupby("parent", sort=False)["end"].cummax().shift()
    hull = hull.assign(sibling=same, overlap=same & (hull["start"] < prev_end - 1e-9))
    per = hull.groupby("parent").agg(of=("caller", "first"), sibling=("sibling", "any"), overlap=("overlap", "any"))
    per = per[per["sibling"]]
    for caller, g in per.groupby("of"):
        if len(g) >= min_parents:
            modes[caller] = bool(g["overlap"].mean() > 0.5)
    per = overlapping(["parent", "target"])
    for (caller, target), g in per.groupby(["of", "to"]):
        if len(g) >= min_parents:
            fanouts[(caller, target)] = bool(g["overlap"].mean() > 0.5)
    return modes, fanouts
