"""The twin's own spans as OpenTelemetry traces (OTLP JSON): realistic traces from known models.

Each span a replication recorded (``run_replication(..., record_spans=True)``) becomes one OTLP
*server* span:

- ``traceId``: 16 hex digits naming the run (a hash of the model name, seed and spawn key), then
  16 for the request index, so replications can share a file; ``spanId``: the twin's span number
  (16 hex digits); ``parentSpanId``: the calling span's number, ``""`` for the client's call.
- ``name``: the request class, at every hop, with the same value in attribute ``twin.class``.
  The twin's services do the class's work at every hop (their service times are per class), so
  that is the operation each span performs.  Real traces name downstream operations their own way;
  ``twin.traces.spans.root_classes`` recovers the request class there.
- resource: ``service.name`` = the node (service or cache) name, or ``service_of(name)``;
  ``service.instance.id`` = ``<node>-<instance>``.  One ``resourceSpans`` entry per instance.
- times: ``epoch + start_s`` to ``epoch + end_s`` in integer nanoseconds.  The start is the
  handler's start, after its queue wait (a cache span starts on arrival), as instrumentation
  in a handler sees it.
- calls: each call has the caller's CLIENT span and the callee's server span is its child, as
  instrumented clients write it.  The twin records a client span for a call with a timeout,
  retries, a pool or a network delay (from before the pool wait and delay to the response or
  the timeout); a plain call gets one from the callee's arrival to its end (id: the callee's span
  number with bit 62 set).  A caller's exclusive time is then its own service time, without
  network, pool and queue waits.
- status: ``{}`` (unset) when ok, else ``{"code": 2, "message": <twin status>}``; service spans
  also carry ``http.response.status_code`` (200; 500 error, 503 rejected or unavailable, 504
  timeout), cache spans none.
- with ``workload`` (the arrival table that was run): ``http.request.body.size`` on service spans,
  ``twin.key`` and ``session.id`` where the request has them.

>>> import numpy as np, pandas as pd
>>> from twin.spec import load_model
>>> from twin.sim import PoissonArrivals, run_replication
>>> model = load_model("models/validation/mm1.yaml")
>>> work = PoissonArrivals(rate_per_s=5.0, duration_s=10.0).generate(model, np.random.default_rng(1))
>>> result = run_replication(model, work, seed=1, warmup_s=0.0, record_spans=True)
>>> doc = twin_spans_to_otlp(result, epoch=pd.Timestamp("2024-05-01", tz="UTC"))
>>> len(doc["resourceSpans"][0]["scopeSpans"][0]["spans"]) == len(work)
True
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from .. import __version__
from ..sim.nodes import STATUS_NAMES
from .schema import TraceError

__all__ = ["twin_spans_to_frame", "twin_spans_to_otlp", "write_otlp_json"]

_HTTP_STATUS = {"ok": 200, "error": 500, "rejected": 503, "unavailable": 503, "timeout": 504, "incomplete": 500}
_SERVER, _CLIENT, _ERROR = 2, 3, 2  # OTLP SpanKind SERVER and CLIENT, StatusCode ERROR
_CLIENT_BIT = 1 << 62  # a plain call's client span id: the callee's span number with this bit set
_TWIN_CLIENT = 1  # SpanRecords kind of a recorded client span


def twin_spans_to_otlp(result, *, epoch: pd.Timestamp, service_of: Mapping | Callable | None = None,
                       workload=None) -> dict:
    """An OTLP JSON document (a json-serialisable dict) of ``result.spans``, placed at ``epoch``.

    ``service_of`` renames nodes (a mapping or a function of the node name); ``workload``, the
    arrival table of the run, adds payload sizes, keys and sessions.
    """
    spans = result.spans
    if spans is None:
        raise TraceError("this replication recorded no spans; run it with record_spans=True")
    epoch_ns = _epoch_ns(epoch)
    cols = {k: np.asarray(v) for k, v in spans.columns.items()}
    request = cols["request"]
    classes = np.asarray(result.requests.class_names, dtype=object)[np.asarray(result.requests.cls)[request]]
    nodes = list(spans.node_names)
    services = [_rename(service_of, n) for n in nodes]
    is_cache = [n in result.caches for n in nodes]
    start_ns = (epoch_ns + np.rint(cols["start_s"] * 1e9).astype(np.int64)).tolist()
    end_ns = (epoch_ns + np.rint(cols["end_s"] * 1e9).astype(np.int64)).tolist()
    run = hashlib.blake2b(f"{result.model_name}/{result.seed_entropy}/{tuple(result.spawn_key)}".encode(),
                          digest_size=8).hexdigest()
    extra = _request_data(workload, request, len(result.requests))
    arrive_ns = (epoch_ns + np.rint(cols["arrive_s"] * 1e9).astype(np.int64)).tolist()
    kinds = cols["kind"].tolist()
    is_client = dict(zip(cols["span"].tolist(), kinds))
    owner = dict(zip(cols["span"].tolist(), zip(cols["node"].tolist(), cols["instance"].tolist())))
    groups: dict[tuple[int, int], list] = {}
    rows = zip(request.tolist(), cols["span"].tolist(), cols["parent"].tolist(), cols["node"].tolist(),
               cols["instance"].tolist(), cols["status"].tolist(), classes.tolist(), start_ns, end_ns, arrive_ns,
               kinds)
    for i, (req, span, parent, node, inst, status, cls, start, end, arrive, kind) in enumerate(rows):
        name = STATUS_NAMES[status]
        attrs = [_attr("twin.class", cls)]
        if not is_cache[node]:
            attrs.append(_attr("http.response.status_code", _HTTP_STATUS[name]))
        for key, values in extra:
            value = values[i]
            if value is not None and (key != "http.request.body.size" or not is_cache[node]):
                attrs.append(_attr(key, value))
        trace = f"{run}{req:016x}"
        if kind == _TWIN_CLIENT:  # the twin recorded this call as its caller saw it
            groups.setdefault(owner.get(parent, (node, inst)), []).append({
                "traceId": trace, "spanId": f"{span:016x}", "parentSpanId": f"{parent:016x}",
                "name": f"call {nodes[node]}", "kind": _CLIENT, "startTimeUnixNano": str(start),
                "endTimeUnixNano": str(end), "attributes": [],
                "status": {} if name == "ok" else {"code": _ERROR, "message": name}})
            continue
        caller = ""
        if parent >= 0 and is_client.get(parent) == _TWIN_CLIENT:
            caller = f"{parent:016x}"
        elif parent >= 0:  # a plain call: its client span runs from the callee's arrival to its end
            caller = f"{span | _CLIENT_BIT:016x}"
            groups.setdefault(owner.get(parent, (node, inst)), []).append({
                "traceId": trace, "spanId": caller, "parentSpanId": f"{parent:016x}",
                "name": f"call {nodes[node]}", "kind": _CLIENT, "startTimeUnixNano": str(arrive),
                "endTimeUnixNano": str(end), "attributes": [],
                "status": {} if name == "ok" else {"code": _ERROR, "message": name}})
        groups.setdefault((node, inst), []).append({
            "traceId": trace, "spanId": f"{span:016x}",
            "parentSpanId": caller, "name": cls, "kind": _SERVER,
            "startTimeUnixNano": str(start), "endTimeUnixNano": str(end), "attributes": attrs,
            "status": {} if name == "ok" else {"code": _ERROR, "message": name},
        })
    scope = {"name": "twin.sim", "version": __version__}
    return {"resourceSpans": [
        {"resource": {"attributes": [_attr("service.name", services[node]),
                                     _attr("service.instance.id", f"{nodes[node]}-{inst}")]},
         "scopeSpans": [{"scope": scope, "spans": group}]}
        for (node, inst), group in sorted(groups.items())]}


def twin_spans_to_frame(result, *, epoch: pd.Timestamp, workload=None) -> pd.DataFrame:
    """The same spans as ``twin_spans_to_otlp`` gives, straight into the trace contract (what
    ``read_otlp_json`` would return for that document), without a JSON round trip: the way to
    make large span tables (``frame.to_parquet``) for benchmarks and tests."""
    from .schema import conform
    from .spangraph import _exclusive_ns

    spans = result.spans
    if spans is None:
        raise TraceError("this replication recorded no spans; run it with record_spans=True")
    every = {k: np.asarray(v) for k, v in spans.columns.items()}
    client = every["kind"] == _TWIN_CLIENT
    # a server span's caller: its parent, or the parent of the client span it hangs under
    where = pd.Index(every["span"]).get_indexer(every["parent"])
    via_client = (where >= 0) & client[np.maximum(where, 0)]
    up = np.where(via_client, every["parent"][np.maximum(where, 0)], every["parent"])
    call_start = np.where(via_client, every["start_s"][np.maximum(where, 0)], every["arrive_s"])
    call_end = np.where(via_client, every["end_s"][np.maximum(where, 0)], every["end_s"])
    server = ~client
    cols = {k: v[server] for k, v in every.items()}
    parent, call_start, call_end = up[server], call_start[server], call_end[server]
    request = cols["request"]
    nodes = np.asarray(spans.node_names, dtype=object)
    node = cols["node"]
    is_cache = np.isin(nodes, list(result.caches))[node]
    status = np.asarray(STATUS_NAMES, dtype=object)[cols["status"]]
    run = hashlib.blake2b(f"{result.model_name}/{result.seed_entropy}/{tuple(result.spawn_key)}".encode(),
                          digest_size=8).hexdigest()
    # as the reader sees it: cache spans carry no HTTP status, so theirs is 200 or, on error, 500
    http = np.vectorize(_HTTP_STATUS.get, otypes=[np.int64])(status)
    http = pd.array(np.where(is_cache, np.where(status == "ok", 200, 500), http), dtype="Int64")
    start = pd.Timestamp(_epoch_ns(epoch), tz="UTC") + pd.to_timedelta(np.rint(cols["start_s"] * 1e9), unit="ns")
    hexes = np.vectorize("{:016x}".format, otypes=[object])
    frame = pd.DataFrame({
        "timestamp": start, "class": pd.Categorical.from_codes(
            np.asarray(result.requests.cls)[request], categories=list(result.requests.class_names)),
        "service": pd.Categorical.from_codes(node, categories=list(nodes)),
        "latency_s": cols["end_s"] - cols["start_s"], "status": http, "error": status != "ok",
        "trace_id": pd.array(np.char.add(run, hexes(request).astype(str)), dtype="string[pyarrow]"),
        "span_id": pd.array(hexes(cols["span"]).astype(str), dtype="string[pyarrow]"),
        "parent_id": pd.array(np.where(parent >= 0, hexes(np.maximum(parent, 0)), None), dtype="string[pyarrow]"),
    })
    if workload is not None:
        size = np.asarray(workload.size_bytes, dtype=float)[request]
        frame["bytes_in"] = np.where(is_cache, np.nan, size)
        key = np.asarray(workload.key)[request]
        frame["key"] = pd.array(np.where(key >= 0, key.astype(str), None), dtype="string[pyarrow]")
        session = np.asarray(workload.session)[request]
        frame["session"] = pd.array(np.where(session >= 0, session.astype(str), None), dtype="string[pyarrow]")
    # exclusive time as the OTLP round trip gives it: a call covers its client span
    position = pd.Index(cols["span"]).get_indexer(parent)
    position[parent < 0] = -1
    start_ns, end_ns = [np.rint(cols[k] * 1e9).astype(np.int64) for k in ("start_s", "end_s")]
    frame["exclusive_s"] = _exclusive_ns(start_ns, end_ns, position, np.rint(call_start * 1e9).astype(np.int64),
                                         np.rint(call_end * 1e9).astype(np.int64)) / 1e9
    return conform(frame, "twin spans")


def write_otlp_json(doc: dict, path, *, spans_per_line: int | None = 10_000) -> Path:
    """Write ``doc`` as JSON Lines the way the collector's file exporter does: one compact OTLP
    document per line, each with at most ``spans_per_line`` spans (``None``: the whole document
    on one line), so that large files read line by line.  ``.gz`` compresses, reproducibly.

    >>> import tempfile
    >>> path = write_otlp_json({"resourceSpans": []}, Path(tempfile.mkdtemp()) / "empty.otlp.json")
    >>> path.read_text()
    '{"resourceSpans":[]}\\n'
    """
    path = Path(path)
    if spans_per_line is not None and spans_per_line < 1:
        raise TraceError(f"spans_per_line must be at least 1, got {spans_per_line}")
    docs = [doc] if spans_per_line is None else _batches(doc, spans_per_line)
    data = "".join(json.dumps(d, separators=(",", ":")) + "\n" for d in docs).encode()
    try:
        with open(path, "wb") as f:
            if path.suffix == ".gz":
                with gzip.GzipFile(filename="", fileobj=f, mode="wb", mtime=0) as gz:
                    gz.write(data)
            else:
                f.write(data)
    except OSError as e:
        raise TraceError(f"{path}: cannot write ({e})") from None
    return path


def _batches(doc: dict, size: int) -> list[dict]:
    """``doc`` cut into documents of ``size`` spans (the last fewer), resources and scopes repeated."""
    out, line, room = [], [], size
    for rs in doc.get("resourceSpans", []):
        resource = {k: v for k, v in rs.items() if k != "scopeSpans"}
        for ss in rs.get("scopeSpans", []):
            scope, spans, lo = {k: v for k, v in ss.items() if k != "spans"}, ss.get("spans", []), 0
            while True:
                chunk = spans[lo:lo + room]
                line.append({**resource, "scopeSpans": [{**scope, "spans": chunk}]})
                lo, room = lo + len(chunk), room - len(chunk)
                if not room:
                    out.append({"resourceSpans": line})
                    line, room = [], size
                if lo >= len(spans):
                    break
    if line or not out:
        out.append({"resourceSpans": line})
    return out


def _epoch_ns(epoch) -> int:
    try:
        ts = pd.Timestamp(epoch)
    except (TypeError, ValueError) as e:
        raise TraceError(f"epoch {epoch!r} is not a time ({e})") from None
    if ts is pd.NaT or ts.tzinfo is None:
        raise TraceError(f"epoch {epoch!r} needs a time zone, e.g. pd.Timestamp('2024-05-01', tz='UTC')")
    return int(ts.value)  # nanoseconds since the Unix epoch, UTC


def _rename(service_of, node: str) -> str:
    if service_of is None:
        return node
    name = service_of.get(node, node) if isinstance(service_of, Mapping) else service_of(node)
    if not isinstance(name, str) or not name:
        raise TraceError(f"service_of gave {name!r} for node {node!r}; expected a non-empty service name")
    return name


def _request_data(workload, request: np.ndarray, n_requests: int) -> list[tuple[str, list]]:
    """(attribute, value per span or None) for what the workload knows about each span's request."""
    if workload is None:
        return []
    if len(workload) != n_requests:
        raise TraceError(f"the workload has {len(workload)} requests but the replication ran {n_requests}")
    size = np.asarray(workload.size_bytes)[request]
    key = np.asarray(workload.key)[request]
    session = np.asarray(workload.session)[request]
    return [("http.request.body.size", [int(s) for s in size.tolist()]),
            ("twin.key", [str(k) if k >= 0 else None for k in key.tolist()]),
            ("session.id", [str(s) if s >= 0 else None for s in session.tolist()])]


def _attr(key: str, value) -> dict:
    if isinstance(value, (int, np.integer)):
        return {"key": key, "value": {"intValue": str(int(value))}}
    return {"key": key, "value": {"stringValue": str(value)}}
