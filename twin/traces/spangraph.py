"""Span graphs: server spans from all spans, exclusive times, each span's request class, and
the call graph between services.  Pure functions over frames; the readers in ``spans`` use them.

Only *server* spans (a service handling a request; consumer spans count too) become rows.
Client and internal spans are not rows, but they link: a row's ``parent_id`` is the nearest
server span above it.  A trace with no kind information at all has each of its spans taken as a
server span.  A span whose parent is not in the table becomes a root, with a warning.
``exclusive_s`` is a span's duration minus the union of its calls' intervals, clipped to its
own: sequential calls subtract their sum, parallel calls their union, computed in integer
nanoseconds.  A call's interval is the caller's CLIENT span where the trace has one (it covers
the network and the callee's queue, which are not the caller's work), else the callee's server
span.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .schema import TraceError, conform

__all__ = ["RAW_COLUMNS", "server_spans", "exclusive_times", "root_classes", "call_graph", "CLIENT_CALLER",
           "UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER"]

UNSPECIFIED, INTERNAL, SERVER, CLIENT, PRODUCER, CONSUMER = range(6)  # OTLP's SpanKind numbers
CLIENT_CALLER = "<client>"  # the caller of a root span in ``call_graph``

#: The all-spans table ``server_spans`` takes (one row per span of any kind, ids as hex text):
#: parent_span_id None for a root, kind an OTLP SpanKind number, start_ns/end_ns integer Unix
#: nanoseconds, http_status/bytes_in/bytes_out/session/key None or NaN where unknown.
RAW_COLUMNS = ("trace_id", "span_id", "parent_span_id", "name", "service", "kind", "start_ns", "end_ns",
               "error", "http_status", "bytes_in", "bytes_out", "session", "key")


def server_spans(raw: pd.DataFrame, *, source: str = "spans") -> tuple[pd.DataFrame, list[str]]:
    """The contract frame (one row per server span) from a table of all spans (``RAW_COLUMNS``),
    and warnings (duplicate ids, parents not in the table).

    >>> raw = pd.DataFrame({"trace_id": ["t1"] * 3, "span_id": ["a", "b", "c"],
    ...     "parent_span_id": [None, "a", "b"], "name": ["GET /", "GET", "SELECT"],
    ...     "service": ["web", "web", "db"], "kind": [SERVER, CLIENT, SERVER],
    ...     "start_ns": [0, 10, 12], "end_ns": [100, 60, 50], "error": False, "http_status": None,
    ...     "bytes_in": np.nan, "bytes_out": np.nan, "session": None, "key": None})
    >>> frame, _ = server_spans(raw)
    >>> frame[["service", "parent_id", "exclusive_s"]].values.tolist()
    [['web', <NA>, 5e-08], ['db', 'a', 3.8e-08]]
    """
    missing = [c for c in RAW_COLUMNS if c not in raw]
    if missing:
        raise TraceError(f"{source}: the spans table lacks column(s) {', '.join(missing)}")
    for col in ("trace_id", "span_id", "start_ns", "end_ns"):
        if raw[col].isna().any():
            raise TraceError(f"{source}: {int(raw[col].isna().sum())} span(s) without {col}")
    try:
        backwards = raw["end_ns"].to_numpy(np.int64) < raw["start_ns"].to_numpy(np.int64)
    except (TypeError, ValueError, OverflowError) as e:
        raise TraceError(f"{source}: start_ns and end_ns must be integer nanoseconds ({e})") from None
    if backwards.any():
        raise TraceError(f"{source}: {int(backwards.sum())} span(s) end before they start")
    warnings = []
    raw = raw.reset_index(drop=True)
    dup = raw.duplicated(["trace_id", "span_id"]).to_numpy()
    if dup.any():
        warnings.append(f"{int(dup.sum())} span(s) repeat a span id of their trace; the first of each was kept")
        raw = raw[~dup].reset_index(drop=True)
    up = _parent_positions(raw["trace_id"], raw["span_id"], raw["parent_span_id"])
    orphans = int((raw["parent_span_id"].notna().to_numpy() & (up < 0)).sum())
    if orphans:
        warnings.append(f"{orphans} span(s) name a parent that is not in the file (incomplete traces); "
                        f"they were taken as roots")
    _check_acyclic(up, raw["trace_id"], source)
    kind = raw["kind"].to_numpy()
    trace = pd.factorize(raw["trace_id"])[0]
    told = np.bincount(trace, weights=np.isin(kind, (SERVER, CLIENT, PRODUCER, CONSUMER))) > 0
    server = np.isin(kind, (SERVER, CONSUMER)) | ~told[trace]
    rows = np.flatnonzero(server)
    if not len(rows):
        raise TraceError(f"{source}: {len(raw)} span(s) but no server span (kind SERVER or CONSUMER)")
    above = _nearest_marked(up, server)[rows]
    # the call as the caller saw it: the nearest client span between a server span and its caller
    hop = _nearest_marked(up, server | (kind == CLIENT))[rows]
    via_client = (hop >= 0) & (kind[np.maximum(hop, 0)] == CLIENT)
    position = np.full(len(raw), -1)
    position[rows] = np.arange(len(rows))
    parent = np.where(above >= 0, position[above], -1)
    srv = raw.iloc[rows]
    start, end = srv["start_ns"].to_numpy(np.int64), srv["end_ns"].to_numpy(np.int64)
    raw_start, raw_end = raw["start_ns"].to_numpy(np.int64), raw["end_ns"].to_numpy(np.int64)
    call_start = np.where(via_client, raw_start[np.maximum(hop, 0)], start)
    call_end = np.where(via_client, raw_end[np.maximum(hop, 0)], end)
    error = srv["error"].to_numpy(bool)
    http = srv["http_status"].astype("Int64").to_numpy(dtype="float64", na_value=np.nan)
    status = np.where(np.isnan(http), np.where(error, 500, 200), http).astype(np.int64)
    span_id = srv["span_id"].to_numpy(object)
    frame = pd.DataFrame({
        "timestamp": pd.to_datetime(start, unit="ns", utc=True),
        "class": srv["name"].to_numpy(object), "service": srv["service"].to_numpy(object),
        "latency_s": (end - start) / 1e9,
        "bytes_in": srv["bytes_in"].to_numpy(float), "bytes_out": srv["bytes_out"].to_numpy(float),
        "status": status, "error": error | (status >= 500),
        "trace_id": srv["trace_id"].to_numpy(object), "span_id": span_id,
        "parent_id": pd.array(np.where(parent >= 0, span_id[parent], None), dtype="string[pyarrow]"),
        "exclusive_s": _exclusive_ns(start, end, parent, call_start, call_end) / 1e9,
        "session": srv["session"].to_numpy(object), "key": srv["key"].to_numpy(object),
    })
    return conform(frame, source), warnings


def _parent_positions(trace, span, parent) -> np.ndarray:
    """Row of each row's parent (same trace, span id = its parent id); -1: none, or not present."""
    n = len(span)
    t = pd.factorize(pd.Series(trace, dtype="string"))[0].astype(np.int64) + 1  # a missing trace id: 0
    ids = pd.factorize(pd.concat([pd.Series(span, dtype="string"), pd.Series(parent, dtype="string")],
                                 ignore_index=True))[0].astype(np.int64)
    s, p = ids[:n], ids[n:]
    width = int(ids.max()) + 2 if n else 1
    key = np.where(s >= 0, t * width + s, -1 - np.arange(n))  # rows without a span id never match
    first = ~pd.Index(key).duplicated()
    found = pd.Index(key[first]).get_indexer(np.where(p >= 0, t * width + p, -2 - n))
    return np.where(found >= 0, np.flatnonzero(first)[found], -1)


def _check_acyclic(up: np.ndarray, trace, source: str) -> None:
    """Raise if parent links loop: after k doublings ``anc`` is the 2**k-th ancestor, all -1
    once 2**k exceeds the deepest chain."""
    anc = up.copy()
    for _ in range(int(np.ceil(np.log2(len(up) + 1))) + 1):
        live = np.flatnonzero(anc >= 0)
        if not len(live):
            return
        anc[live] = anc[anc[live]]
    if (anc >= 0).any():
        raise TraceError(f"{source}: parent links form a cycle in trace {trace.iloc[int(np.argmax(anc >= 0))]}")


def _nearest_marked(up: np.ndarray, marked: np.ndarray) -> np.ndarray:
    """The nearest marked strict ancestor of each row (-1: none), by pointer jumping."""
    above = up.copy()
    while True:
        todo = np.flatnonzero(above >= 0)
        todo = todo[~marked[above[todo]]]
        if not len(todo):
            return above
        above[todo] = above[above[todo]]


def _exclusive_ns(start: np.ndarray, end: np.ndarray, parent: np.ndarray, call_start: np.ndarray | None = None,
                  call_end: np.ndarray | None = None) -> np.ndarray:
    """Each span's duration minus the union of its children's call intervals (default: the
    children's own) clipped to its own: sort by (parent, start), sweep with the furthest end."""
    call_start = start if call_start is None else call_start
    call_end = end if call_end is None else call_end
    child = np.flatnonzero(parent >= 0)
    p = parent[child]
    lo, hi = np.maximum(call_start[child], start[p]), np.minimum(call_end[child], end[p])
    keep = hi > lo
    p, lo, hi = p[keep], lo[keep], hi[keep]
    order = np.lexsort((lo, p))
    p, lo, hi = p[order], lo[order], hi[order]
    covered = np.zeros(len(start), dtype=np.int64)
    if len(p):
        reach = pd.Series(hi).groupby(p).cummax().to_numpy()
        new = np.ones(len(p), dtype=bool)
        new[1:] = p[1:] != p[:-1]
        before = np.concatenate(([0], reach[:-1]))
        before[new] = lo[new]
        heads = np.flatnonzero(new)
        covered[p[heads]] = np.add.reduceat(np.maximum(hi - np.maximum(lo, before), 0), heads)
    return end - start - covered


# -- helpers on a contract frame -----------------------------------------------------------

def _links(frame: pd.DataFrame, what: str) -> np.ndarray:
    missing = [c for c in ("trace_id", "span_id", "parent_id") if c not in frame]
    if missing:
        raise TraceError(f"{what} needs span columns; the frame lacks {', '.join(missing)}")
    up = _parent_positions(frame["trace_id"], frame["span_id"], frame["parent_id"])
    _check_acyclic(up, frame["trace_id"].reset_index(drop=True), what)
    return up


def exclusive_times(frame: pd.DataFrame) -> pd.Series:
    """Each row's own time (s): its duration minus the union of its callees' intervals (rows
    whose ``parent_id`` is its ``span_id``), clipped to its own.  NaN for rows without a span id.

    A contract frame holds server spans only, so here a callee's queue wait (the gap between the
    caller's client span and the callee's server span) counts as its caller's time; the readers,
    which see the client spans, compute ``exclusive_s`` without it.

    >>> from twin.traces.spans import read_otlp_json
    >>> frame, _ = read_otlp_json("tests/fixtures/traces/spans/otlp_shop.json")
    >>> bool((exclusive_times(frame) >= frame["exclusive_s"]).all())
    True
    """
    up = _links(frame, "exclusive_times")
    try:
        start = pd.DatetimeIndex(frame["timestamp"]).as_unit("ns").asi8
    except (KeyError, TypeError, ValueError) as e:
        raise TraceError(f"exclusive_times needs datetime timestamps ({e})") from None
    latency = pd.to_numeric(frame["latency_s"], errors="coerce").to_numpy(float)
    known = np.isfinite(latency) & frame["span_id"].notna().to_numpy()
    end = start + np.rint(np.where(known, latency, 0.0) * 1e9).astype(np.int64)
    out = _exclusive_ns(start, end, up) / 1e9
    out[~known] = np.nan
    return pd.Series(out, index=frame.index, name="exclusive_s")


def root_classes(frame: pd.DataFrame) -> pd.Series:
    """The class of each row's root (its trace's entry span, following ``parent_id``).

    >>> from twin.traces.spans import read_otlp_json
    >>> frame, _ = read_otlp_json("tests/fixtures/traces/spans/otlp_shop.json")
    >>> root_classes(frame).unique().tolist()
    ['GET /cart', 'POST /checkout', 'POST /refund']
    """
    top = _roots(_links(frame, "root_classes"))
    return pd.Series(frame["class"].astype(str).to_numpy(object)[top], index=frame.index, name="root_class")


def _roots(up: np.ndarray) -> np.ndarray:
    top = np.where(up >= 0, up, np.arange(len(up)))
    while True:
        nxt = top[top]
        if np.array_equal(nxt, top):
            return top
        top = nxt


def call_graph(frame: pd.DataFrame) -> pd.DataFrame:
    """Calls between services per root class: one row per (caller, callee, class) with
    ``caller_spans`` (spans of the caller in that class; for ``CLIENT_CALLER``, traces),
    ``calling_spans`` (those that made at least one such call), ``calls``,
    ``call_probability`` = calling/caller spans and ``fanout_mean`` = calls per calling span.

    >>> from twin.traces.spans import read_otlp_json
    >>> frame, _ = read_otlp_json("tests/fixtures/traces/spans/otlp_shop.json")
    >>> call_graph(frame).head(1).to_dict("records")  # doctest: +NORMALIZE_WHITESPACE
    [{'caller': '<client>', 'callee': 'frontend', 'class': 'GET /cart', 'caller_spans': 1,
      'calling_spans': 1, 'calls': 1, 'call_probability': 1.0, 'fanout_mean': 1.0}]
    """
    up = _links(frame, "call_graph")
    cls = frame["class"].astype(str).to_numpy(object)[_roots(up)]
    service = frame["service"].astype(str).to_numpy(object)
    root = up < 0
    trace = pd.factorize(frame["trace_id"])[0]
    trace = np.where(trace >= 0, trace, trace.max(initial=0) + 1 + np.arange(len(trace)))  # no id: own trace
    edges = pd.DataFrame({"caller": np.where(root, CLIENT_CALLER, service[up]), "callee": service, "class": cls,
                          "unit": np.where(root, trace, up)})  # the calling span (a trace for the client)
    out = edges.groupby(["caller", "callee", "class"]).agg(
        calling_spans=("unit", "nunique"), calls=("unit", "size")).reset_index()
    spans = pd.DataFrame({"caller": service, "class": cls}).value_counts().rename("caller_spans").reset_index()
    traces = edges[root].groupby("class")["unit"].nunique().rename("caller_spans").reset_index()
    traces["caller"] = CLIENT_CALLER
    out = out.merge(pd.concat([spans, traces], ignore_index=True), on=["caller", "class"], how="left")
    out["call_probability"] = out["calling_spans"] / out["caller_spans"]
    out["fanout_mean"] = out["calls"] / out["calling_spans"]
    cols = ["caller", "callee", "class", "caller_spans", "calling_spans", "calls", "call_probability", "fanout_mean"]
    order = out["caller"] != CLIENT_CALLER  # client rows first within a class
    out = out.assign(_o=order).sort_values(["class", "_o", "caller", "callee"], kind="stable")
    return out[cols].reset_index(drop=True)
