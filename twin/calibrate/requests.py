"""From a trace to the requests it holds: class names a model accepts, the time split, and the
arrival table that replays them through the twin.

A *request* is a root row of the trace: a server span with no parent, or any line of an access
or request log.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..sim import Workload
from ..spec import SystemModel
from ..traces.schema import TraceError

_NAME = re.compile(r"[^A-Za-z0-9_-]+")


def model_name(label: str, taken: set[str]) -> str:
    """A model-safe, unique name for a trace label: 'GET /cart/:id' -> 'GET_cart_id'."""
    name = _NAME.sub("_", str(label)).strip("_") or "unnamed"
    if not (name[0].isalpha() or name[0] == "_"):
        name = "_" + name
    name = name[:60]
    base, k = name, 2
    while name in taken:
        name = f"{base}_{k}"
        k += 1
    taken.add(name)
    return name


def roots(trace: pd.DataFrame) -> pd.DataFrame:
    """The requests: rows with no parent span (every row of a log)."""
    return trace[trace["parent_id"].isna()]


@dataclass(frozen=True)
class ClassMap:
    """Trace class labels -> model class names; rare labels fold into ``other``."""

    names: dict[str, str]  # label -> model class name
    shares: dict[str, float]  # model class name -> share of requests

    def of(self, labels: pd.Series) -> pd.Series:
        """Model class names; a label never seen in calibration goes to ``other`` when there is
        one, else NaN (the caller decides what to do with such requests)."""
        named = labels.astype(str).map(self.names)
        return named.fillna(self.names["*"]) if "*" in self.names else named


def class_map(requests: pd.DataFrame, *, max_classes: int = 12, min_share: float = 0.005) -> ClassMap:
    """Name the most frequent request labels; fold the rest into one class ``other``."""
    counts = requests["class"].astype(str).value_counts()
    total = int(counts.sum())
    keep = [label for label, n in counts.items() if n / total >= min_share][:max_classes]
    taken: set[str] = set()
    names = {label: model_name(label, taken) for label in keep}
    rest = total - int(counts[keep].sum())
    shares = {names[label]: int(counts[label]) / total for label in keep}
    if rest:
        other = model_name("other", taken)
        names["*"] = other
        shares[other] = rest / total
    return ClassMap(names, shares)


@dataclass(frozen=True)
class Split:
    """The trace cut in time: calibration sees ``train``; fidelity replays ``test``."""

    train: pd.DataFrame
    test: pd.DataFrame
    at: pd.Timestamp


def split_in_time(trace: pd.DataFrame, holdout: float) -> Split:
    """Hold out the last ``holdout`` fraction of the time range (whole traces stay on one side)."""
    if not 0 < holdout < 1:
        raise ValueError(f"holdout must lie in (0, 1), got {holdout}")
    start, end = trace["timestamp"].iloc[0], trace["timestamp"].iloc[-1]
    at = start + (end - start) * (1 - holdout)
    when = trace["timestamp"]
    if trace["trace_id"].notna().any():
        # a span belongs to the side of its trace's root
        first = trace.groupby("trace_id", observed=True)["timestamp"].transform("min")
        when = first.where(trace["trace_id"].notna(), trace["timestamp"])
    train, test = trace[when < at], trace[when >= at]
    if roots(train).empty or roots(test).empty:
        raise TraceError("the trace is too short to split into a calibration part and a held-out part")
    return Split(train, test, at)


def key_ids(train: pd.DataFrame, test: pd.DataFrame) -> dict[str, int]:
    """A stable integer id per distinct key: keys ranked by their popularity in the calibration
    part (so ids read as Zipf ranks), then keys first seen in the held-out part."""
    seen = train["key"].dropna().astype(str).value_counts().index
    later = pd.Index(test["key"].dropna().astype(str).unique()).difference(seen)
    return {k: i for i, k in enumerate([*seen, *later])}


def arrival_table(requests: pd.DataFrame, model: SystemModel, classes: ClassMap, keys: dict[str, int], *,
                  start: pd.Timestamp, end: pd.Timestamp, jitter_s: float = 0.0,
                  rng: np.random.Generator | None = None) -> Workload:
    """The real arrivals of ``requests`` as the twin's arrival table, time 0 at ``start``.

    ``jitter_s``: the resolution of the trace's timestamps (1 s in a Common Log Format line);
    arrivals are spread uniformly over it, since a whole second's requests did not arrive at
    its first instant.  Requests of classes the model does not know are left out.
    """
    requests = requests[classes.of(requests["class"]).notna().to_numpy()]
    t = (requests["timestamp"] - start).dt.total_seconds().to_numpy()
    if jitter_s > 0:
        t = t + (rng or np.random.default_rng(0)).uniform(0.0, jitter_s, len(t))
    size = requests["bytes_out"].where(requests["bytes_out"].notna(), requests["bytes_in"])
    frame = pd.DataFrame({
        "time_s": t,
        "class": classes.of(requests["class"]).to_numpy(),
        "size_bytes": np.rint(size.fillna(0).to_numpy(dtype=float)).astype(np.int64),
        "key": requests["key"].astype(object).map(keys).fillna(-1).astype(np.int64).to_numpy()
        if len(keys) else np.full(len(t), -1, np.int64),
    })
    frame = frame.sort_values("time_s", kind="stable", ignore_index=True)
    return Workload.from_frame(frame, model, duration_s=max((end - start).total_seconds(), float(t.max()) + 1e-9),
                               source="held-out trace")
