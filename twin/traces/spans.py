"""Distributed traces in: OTLP JSON and Jaeger JSON spans as the request-trace contract.

Only *server* spans (a service handling a request; consumer spans count too) become rows.
Client and internal spans are not rows, but they link: a row's ``parent_id`` is the nearest
server span above it.  A trace with no kind information at all (every span unspecified or
internal, as older clients write) has each of its spans taken as a server span.  A span whose
parent is not in the file becomes a root, with a warning.  ``exclusive_s`` is a span's duration
minus the union of its callees' intervals, clipped to its own: sequential calls subtract their
sum, parallel calls their union.  Times stay exact: OTLP nanoseconds are parsed as integers and
Jaeger microseconds scaled, and exclusive times are computed in integer nanoseconds.

``class`` is the span name at every row.  Downstream operations in real traces are named their
own way; ``root_classes(frame)`` gives each row the class of its trace's root.

>>> frame, report = read_otlp_json("tests/fixtures/traces/spans/otlp_shop.json")
>>> frame[["class", "service", "exclusive_s"]].head(1).to_dict("records")
[{'class': 'GET /cart', 'service': 'frontend', 'exclusive_s': 0.021}]
>>> call_graph(frame)[["caller", "callee", "calls", "fanout_mean"]].iloc[3].to_dict()
{'caller': 'frontend', 'callee': 'price', 'calls': 2, 'fanout_mean': 2.0}
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from .schema import ReadReport, TraceError, conform

__all__ = ["RAW_COLUMNS", "read_otlp_json", "read_jaeger_json", "server_spans", "exclusive_times",
           "root_classes", "call_graph", "CLIENT_CALLER"]

UNSPECIFIED, INTERNAL, SERVER, CLIENT, PRODUCER, CONSUMER = range(6)  # OTLP's SpanKind numbers
_OTLP_KINDS = {**{k: k for k in range(6)}, **{f"SPAN_KIND_{n}": k for k, n in enumerate(
    ("UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER"))}}
_OTLP_ERROR = {0: False, 1: False, 2: True, "STATUS_CODE_UNSET": False, "STATUS_CODE_OK": False,
               "STATUS_CODE_ERROR": True}
_JAEGER_KINDS = {"internal": INTERNAL, "server": SERVER, "client": CLIENT, "producer": PRODUCER,
                 "consumer": CONSUMER}
CLIENT_CALLER = "<client>"  # the caller of a root span in ``call_graph``
_MAX_NS = 2**63 - 1

#: The all-spans table ``server_spans`` takes (one row per span of any kind, ids as hex text):
#: parent_span_id None for a root, kind an OTLP SpanKind number, start_ns/end_ns integer Unix
#: nanoseconds, http_status/bytes_in/bytes_out/session/key None or NaN where unknown.
RAW_COLUMNS = ("trace_id", "span_id", "parent_span_id", "name", "service", "kind", "start_ns", "end_ns",
               "error", "http_status", "bytes_in", "bytes_out", "session", "key")

# Attributes (tags) behind the optional columns, the current semantic-convention name first.
_FROM_ATTRIBUTES = {
    "http_status": ("http.response.status_code", "http.status_code"),
    "bytes_in": ("http.request.body.size", "http.request_content_length"),
    "bytes_out": ("http.response.body.size", "http.response_content_length"),
    "session": ("session.id", "enduser.id"),
    "key": ("twin.key", "db.key"),
}
_WANTED = frozenset(k for names in _FROM_ATTRIBUTES.values() for k in names) | {"span.kind", "error",
                                                                                 "otel.status_code"}
_HEX = re.compile(r"[0-9a-f]+")
_INTEGER = re.compile(r"\s*-?[0-9]+\s*")
_NOTHING = (None, np.nan, np.nan, None, None)  # what _optional gives for no attributes


class _Bad(Exception):
    """A malformed document or span; the reader adds where it is."""


# -- readers ---------------------------------------------------------------------------------

def read_otlp_json(path, *, keep_going: bool = False) -> tuple[pd.DataFrame, ReadReport]:
    """Server spans of an OTLP JSON file: one document, or one per line as the collector's file
    exporter writes (``.gz`` is read compressed).

    Malformed lines (or, in a single document, malformed spans) are counted and stop the read
    with a ``TraceError`` naming the first few; with ``keep_going`` they are skipped and reported.

    >>> frame, report = read_otlp_json("tests/fixtures/traces/spans/otlp_shop.json")
    >>> report.rows, report.warnings[0].endswith("taken as roots")
    (8, True)
    """
    return _read(path, keep_going, _otlp_document)


def read_jaeger_json(path, *, keep_going: bool = False) -> tuple[pd.DataFrame, ReadReport]:
    """Server spans of a Jaeger JSON file (query API or UI download: ``{"data": [trace, ...]}``,
    or one trace object), also one document per line.  Same errors and ``keep_going`` as OTLP.

    >>> frame, _ = read_jaeger_json("tests/fixtures/traces/spans/jaeger_shop.json")
    >>> frame["service"].tolist()[:2]
    ['gateway', 'orders']
    """
    return _read(path, keep_going, _jaeger_document)


def _read(path, keep_going: bool, parse: Callable) -> tuple[pd.DataFrame, ReadReport]:
    path = Path(path)
    source = str(path)
    report = ReadReport(source)
    rows: list[tuple] = []
    bad_spans, first_problem = 0, None
    for number, doc in _documents(path, source):
        where = source if number is None else f"{source} line {number}"
        spans: list[tuple] = []
        problems: list[str] = []
        try:
            if isinstance(doc, _Bad):
                raise doc
            parse(doc, spans, problems)
        except _Bad as e:
            if number is None:
                raise TraceError(f"{where}: {e}") from None
            spans, problems = [], [str(e)]
        if problems:
            first_problem = first_problem or f"{where}: {problems[0]}"
            if number is None:  # one document: only its bad spans go
                bad_spans += len(problems)
                rows.extend(spans)
            else:  # JSON Lines: the whole line goes
                report.bad_line(number)
        else:
            rows.extend(spans)
    if first_problem and not keep_going:
        count = report.malformed_message() if report.malformed else f"{source}: {bad_spans} malformed span(s)"
        raise TraceError(f"{count}; the first: {first_problem}.  Pass keep_going=True to skip them")
    if report.malformed:
        report.warnings.append(report.malformed_message() + " skipped")
    if bad_spans:
        report.warnings.append(f"{source}: {bad_spans} malformed span(s) skipped; the first: {first_problem}")
    if not rows:
        raise TraceError(f"{source}: no spans in the trace")
    frame, warnings = server_spans(_raw_frame(rows), source=source)
    report.warnings.extend(f"{source}: {w}" for w in warnings)
    report.rows = len(frame)
    return frame, report


def _documents(path: Path, source: str) -> Iterator[tuple[int | None, object]]:
    """(line number, parsed JSON) for each JSON line, or (None, document) for a whole-file
    document; a line that is not JSON comes as (line number, _Bad)."""
    try:
        with (gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else
              open(path, encoding="utf-8")) as f:
            number, head = 0, ""
            for number, head in enumerate(f, 1):
                if head.strip():
                    break
            else:
                raise TraceError(f"{source}: empty file")
            try:
                first = json.loads(head)
            except ValueError:  # not a document on one line: the file is one (pretty-printed) document
                text = head + f.read()
                try:
                    yield None, json.loads(text)
                    return
                except ValueError as e:
                    whole = e
                pieces = [(k, _parse_line(line)) for k, line in enumerate(text.splitlines(), number)
                          if line.strip()]
                if head.strip() in ("{", "[") or all(isinstance(doc, _Bad) for _, doc in pieces):
                    raise TraceError(f"{source}: not valid JSON (line {whole.lineno + number - 1}, "
                                     f"column {whole.colno}: {whole.msg})") from None
                yield from pieces
                return
            yield number, first
            for number, line in enumerate(f, number + 1):
                if line.strip():
                    yield number, _parse_line(line)
    except UnicodeDecodeError:
        raise TraceError(f"{source}: not UTF-8 text; expected a JSON trace") from None
    except (OSError, EOFError) as e:
        raise TraceError(f"{source}: cannot read the file ({e})") from None


def _parse_line(line: str) -> object:
    try:
        return json.loads(line)
    except ValueError as e:
        return _Bad(f"not JSON: {e.msg} (column {e.colno})")


def _raw_frame(rows: list[tuple]) -> pd.DataFrame:
    c = dict(zip(RAW_COLUMNS, zip(*rows)))
    return pd.DataFrame({
        "trace_id": pd.array(c["trace_id"], dtype="string"), "span_id": pd.array(c["span_id"], dtype="string"),
        "parent_span_id": pd.array(c["parent_span_id"], dtype="string"),
        "name": pd.array(c["name"], dtype="string"), "service": pd.array(c["service"], dtype="string"),
        "kind": np.array(c["kind"], dtype=np.int8), "start_ns": np.array(c["start_ns"], dtype=np.int64),
        "end_ns": np.array(c["end_ns"], dtype=np.int64), "error": np.array(c["error"], dtype=bool),
        "http_status": pd.array(c["http_status"], dtype="Int64"),
        "bytes_in": np.array(c["bytes_in"], dtype=float), "bytes_out": np.array(c["bytes_out"], dtype=float),
        "session": pd.array(c["session"], dtype="string"), "key": pd.array(c["key"], dtype="string"),
    })


# -- OTLP and Jaeger documents ---------------------------------------------------------------

def _otlp_document(doc, spans: list, problems: list) -> None:
    if not isinstance(doc, dict) or "resourceSpans" not in doc:
        hint = "; this looks like Jaeger JSON: use read_jaeger_json" if isinstance(doc, dict) and "data" in doc else ""
        raise _Bad(f"expected an object with a 'resourceSpans' list (OTLP JSON){hint}")
    for i, rs in enumerate(_items(doc, "resourceSpans", "document")):
        where = f"resourceSpans[{i}]"
        resource = _mapping(rs, where).get("resource")
        resource = {} if resource is None else _mapping(resource, f"{where}.resource")
        service = str(_attributes(resource.get("attributes"), ("service.name",)).get("service.name", "unknown_service"))
        scopes = "scopeSpans" if "scopeSpans" in rs else "instrumentationLibrarySpans"  # the pre-1.0 name
        for j, ss in enumerate(_items(rs, scopes, where)):
            for k, span in enumerate(_items(_mapping(ss, f"{where}.{scopes}[{j}]"), "spans", where)):
                try:
                    spans.append(_otlp_span(span, service))
                except _Bad as e:
                    problems.append(f"{where}.{scopes}[{j}].spans[{k}]: {e}")


def _otlp_span(span, service: str) -> tuple:
    span = _mapping(span, "span")
    trace = _hex_id(span.get("traceId"), 16, "traceId")
    sid = _hex_id(span.get("spanId"), 8, "spanId")
    parent = _hex_id(span.get("parentSpanId"), 8, "parentSpanId", optional=True)
    start = _whole(span.get("startTimeUnixNano"), "startTimeUnixNano")
    end = _whole(span.get("endTimeUnixNano"), "endTimeUnixNano")
    if not 0 < start <= _MAX_NS or not 0 < end <= _MAX_NS:
        raise _Bad(f"span {sid}: start or end time missing or out of range")
    if end < start:
        raise _Bad(f"span {sid} ends {(start - end) / 1e9:g} s before it starts")
    kind = _lookup(_OTLP_KINDS, span.get("kind", 0))
    status = span.get("status") or {}
    error = _lookup(_OTLP_ERROR, status.get("code", 0)) if type(status) is dict else None
    if kind is None:
        raise _Bad(f"span {sid}: unknown kind {span.get('kind')!r}")
    if error is None:
        raise _Bad(f"span {sid}: unknown status {status!r}")
    attrs = span.get("attributes")
    return (trace, sid, parent, str(span.get("name", "")), service, kind, start, end, error,
            *(_optional(_attributes(attrs, _WANTED)) if attrs else _NOTHING))


def _jaeger_document(doc, spans: list, problems: list) -> None:
    if isinstance(doc, dict) and "data" in doc:
        traces = doc["data"] or []
    elif isinstance(doc, dict) and "spans" in doc:
        traces = [doc]
    else:
        otlp = isinstance(doc, dict) and "resourceSpans" in doc
        hint = "; this looks like OTLP JSON: use read_otlp_json" if otlp else ""
        raise _Bad(f"expected an object with a 'data' list of traces (Jaeger JSON){hint}")
    if not isinstance(traces, list):
        raise _Bad("'data': expected a list of traces")
    for i, trace in enumerate(traces):
        processes = _mapping(trace, f"data[{i}]").get("processes") or {}
        for k, span in enumerate(_items(trace, "spans", f"data[{i}]")):
            try:
                spans.append(_jaeger_span(_mapping(span, "span"), trace, processes))
            except _Bad as e:
                problems.append(f"data[{i}].spans[{k}]: {e}")


def _jaeger_span(span: dict, trace: dict, processes) -> tuple:
    tid = _hex_id(span.get("traceID", trace.get("traceID")), 16, "traceID")
    sid = _hex_id(span.get("spanID"), 8, "spanID")
    refs = [r for r in span.get("references") or [] if isinstance(r, dict)
            and _hex_id(r.get("traceID", tid), 16, "references.traceID") == tid]
    ref = next((r for kind in ("CHILD_OF", "FOLLOWS_FROM") for r in refs if r.get("refType") == kind), None)
    parent = _hex_id(ref.get("spanID"), 8, "references.spanID") if ref else \
        _hex_id(span.get("parentSpanID"), 8, "parentSpanID", optional=True)
    start_us = _whole(span.get("startTime"), "startTime")
    duration_us = _whole(span.get("duration"), "duration")
    if duration_us < 0:
        raise _Bad(f"span {sid} has a negative duration ({duration_us} us)")
    start, end = start_us * 1000, (start_us + duration_us) * 1000
    if not (0 < start and end <= _MAX_NS):
        raise _Bad(f"span {sid}: startTime missing or out of range")
    pid = span.get("processID")
    process = span.get("process") or (processes.get(pid) if isinstance(processes, dict) and isinstance(pid, str)
                                      else None)
    if not isinstance(process, dict) or not process.get("serviceName"):
        raise _Bad(f"span {sid}: no process with a serviceName (processID {span.get('processID')!r})")
    tags = _tags(span.get("tags"))
    kind = _JAEGER_KINDS.get(str(tags.get("span.kind", "")).lower(), UNSPECIFIED)
    error = str(tags.get("error", "")).lower() == "true" or str(tags.get("otel.status_code", "")).upper() == "ERROR"
    return (tid, sid, parent, str(span.get("operationName", "")), str(process["serviceName"]), kind, start, end,
            error, *_optional(tags))


# -- small parsers -------------------------------------------------------------------------

def _mapping(value, where: str) -> dict:
    if not isinstance(value, dict):
        raise _Bad(f"{where}: expected an object, got {type(value).__name__}")
    return value


def _items(obj: dict, key: str, where: str) -> list:
    value = obj.get(key) or []
    if not isinstance(value, list):
        raise _Bad(f"{where}.{key}: expected a list, got {type(value).__name__}")
    return value


def _attributes(items, wanted) -> dict:
    """OTLP ``[{"key": k, "value": {"stringValue": v}}]`` as ``{k: v}``, for the wanted keys."""
    out = {}
    for kv in items if type(items) is list else ():
        key = kv.get("key") if type(kv) is dict else None
        if type(key) is str and key in wanted and type(value := kv.get("value")) is dict:
            for kind in ("stringValue", "intValue", "doubleValue", "boolValue"):
                if kind in value:
                    out[key] = value[kind]
                    break
    return out


def _tags(items) -> dict:
    """Jaeger ``[{"key": k, "type": t, "value": v}]`` as ``{k: v}``, for the wanted keys."""
    return {t["key"]: t.get("value") for t in items if type(t) is dict and _lookup(_WANTED, t.get("key"))} \
        if type(items) is list else {}


def _lookup(table, value):
    """``table.get(value)`` (or membership, for a set) for JSON scalars; None for anything else."""
    if type(value) is not str and type(value) is not int:  # not a bool, nor unhashable
        return None
    return value in table if isinstance(table, (set, frozenset, tuple)) else table.get(value)


def _hex_id(value, n_bytes: int, field: str, *, optional: bool = False) -> str | None:
    """A trace or span id as lowercase hex of ``n_bytes`` (left-padded, as Jaeger trims zeros);
    base64 (protobuf's JSON mapping) is converted.  All zeros means none."""
    if type(value) is str and len(value) == 2 * n_bytes and _HEX.fullmatch(value) and value.strip("0"):
        return value  # the common case, quickly
    if value is None or value == "":
        if optional:
            return None
        raise _Bad(f"no {field}")
    if not isinstance(value, str):
        raise _Bad(f"{field} {value!r} is not a string")
    text = value.lower()
    if len(text) <= 2 * n_bytes and _HEX.fullmatch(text):
        text = text.rjust(2 * n_bytes, "0")
    else:
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != n_bytes:
            raise _Bad(f"{field} {value!r} is neither hex nor base64 of {n_bytes} bytes")
        text = raw.hex()
    if not text.strip("0"):
        if optional:
            return None
        raise _Bad(f"{field} is all zeros")
    return text


def _whole(value, field: str) -> int:
    """An exact integer from a JSON number or a decimal string (OTLP writes int64 as strings)."""
    if type(value) is int:
        return value
    if type(value) is str and _INTEGER.fullmatch(value):
        return int(value)
    if type(value) is float and value.is_integer():
        return int(value)
    raise _Bad(f"no {field}" if value is None else f"{field} {value!r} is not a whole number")


def _optional(attrs: dict) -> tuple:
    """http_status, bytes_in, bytes_out, session, key from the attributes (None/NaN if absent)."""
    if not attrs:
        return _NOTHING
    got = []
    for names in _FROM_ATTRIBUTES.values():
        value = None
        for name in names:
            value = attrs.get(name)
            if value is not None:
                break
        got.append(value)
    status, size_in, size_out, session, key = got
    try:
        status = _whole(status, "status") if status is not None else None
    except _Bad:
        status = None
    return (status if status is not None and 100 <= status <= 999 else None, _size(size_in), _size(size_out),
            None if session is None else str(session), None if key is None else str(key))


def _size(value) -> float:
    if value is None or type(value) is bool:
        return np.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return np.nan


# -- from all spans to server spans --------------------------------------------------------

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
    [['web', <NA>, 6.2e-08], ['db', 'a', 3.8e-08]]
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
    position = np.full(len(raw), -1)
    position[rows] = np.arange(len(rows))
    parent = np.where(above >= 0, position[above], -1)
    srv = raw.iloc[rows]
    start, end = srv["start_ns"].to_numpy(np.int64), srv["end_ns"].to_numpy(np.int64)
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
        "parent_id": pd.array(np.where(parent >= 0, span_id[parent], None), dtype="string"),
        "exclusive_s": _exclusive_ns(start, end, parent) / 1e9,
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


def _exclusive_ns(start: np.ndarray, end: np.ndarray, parent: np.ndarray) -> np.ndarray:
    """Each span's duration minus the union of its children's intervals clipped to its own:
    sort children by (parent, start), sweep with the furthest end reached so far."""
    child = np.flatnonzero(parent >= 0)
    p = parent[child]
    lo, hi = np.maximum(start[child], start[p]), np.minimum(end[child], end[p])
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

    >>> frame, _ = read_otlp_json("tests/fixtures/traces/spans/otlp_shop.json")
    >>> bool((exclusive_times(frame) == frame["exclusive_s"]).all())
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
