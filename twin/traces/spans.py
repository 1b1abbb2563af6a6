"""Distributed traces in: OTLP JSON and Jaeger JSON spans as the request-trace contract.

The readers parse every span into one table and hand it to ``spangraph.server_spans``: only
*server* spans become rows, linked to the nearest server span above them, with their exclusive
time (see ``spangraph``).  Times stay exact: OTLP nanoseconds are parsed as integers and Jaeger
microseconds scaled.

``class`` is the span name at every row.  Downstream operations in real traces are named their
own way; ``root_classes(frame)`` gives each row the class of its trace's root.

>>> frame, report = read_otlp_json("tests/fixtures/traces/spans/otlp_shop.json")
>>> frame[["class", "service", "exclusive_s"]].head(1).to_dict("records")
[{'class': 'GET /cart', 'service': 'frontend', 'exclusive_s': 0.015}]
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

from .jsontext import loads
from .schema import ReadReport, TraceError
from .spangraph import CLIENT, CONSUMER, INTERNAL, PRODUCER, RAW_COLUMNS, SERVER, UNSPECIFIED, server_spans

__all__ = ["read_otlp_json", "read_jaeger_json"]

_OTLP_KINDS = {**{k: k for k in range(6)}, **{f"SPAN_KIND_{n}": k for k, n in enumerate(
    ("UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER"))}}
_OTLP_ERROR = {0: False, 1: False, 2: True, "STATUS_CODE_UNSET": False, "STATUS_CODE_OK": False,
               "STATUS_CODE_ERROR": True}
_JAEGER_KINDS = {"internal": INTERNAL, "server": SERVER, "client": CLIENT, "producer": PRODUCER,
                 "consumer": CONSUMER}
_MAX_NS = 2**63 - 1


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
    return _linked(*read_raw(path, "otlp", keep_going=keep_going))


def read_jaeger_json(path, *, keep_going: bool = False) -> tuple[pd.DataFrame, ReadReport]:
    """Server spans of a Jaeger JSON file (query API or UI download: ``{"data": [trace, ...]}``,
    or one trace object), also one document per line.  Same errors and ``keep_going`` as OTLP.

    >>> frame, _ = read_jaeger_json("tests/fixtures/traces/spans/jaeger_shop.json")
    >>> frame["service"].tolist()[:2]
    ['gateway', 'orders']
    """
    return _linked(*read_raw(path, "jaeger", keep_going=keep_going))


def read_raw(path, kind: str, *, keep_going: bool = False) -> tuple[pd.DataFrame, ReadReport]:
    """Every span of an OTLP ('otlp') or Jaeger ('jaeger') file, of any kind, unlinked
    (``spangraph.RAW_COLUMNS``): spans of one trace spread over several files are linked
    together by ``spangraph.server_spans`` on the joined tables."""
    return _read(path, keep_going, {"otlp": _otlp_document, "jaeger": _jaeger_document}[kind])


def _linked(raw: pd.DataFrame, report: ReadReport) -> tuple[pd.DataFrame, ReadReport]:
    frame, warnings = server_spans(raw, source=report.source)
    report.warnings.extend(warnings)
    report.rows = len(frame)
    return frame, report


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
        raise TraceError(f"{count}; the first: {first_problem}.  Pass --keep-going to skip them")
    if report.malformed:
        report.warnings.append(report.malformed_message() + " skipped")
    if bad_spans:
        report.warnings.append(f"{source}: {bad_spans} malformed span(s) skipped; the first: {first_problem}")
    if not rows:
        raise TraceError(f"{source}: no spans in the trace")
    return _raw_frame(rows), report


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
                first = loads(head)
            except ValueError:  # not a document on one line: the file is one (pretty-printed) document
                text = head + f.read()
                try:
                    yield None, loads(text)
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
        return loads(line)
    except ValueError as e:
        return _Bad(f"not JSON: {e.msg} (column {e.colno})")


def _raw_frame(rows: list[tuple]) -> pd.DataFrame:
    c = dict(zip(RAW_COLUMNS, zip(*rows)))
    return pd.DataFrame({
        "trace_id": pd.array(c["trace_id"], dtype="string[pyarrow]"), "span_id": pd.array(c["span_id"], dtype="string[pyarrow]"),
        "parent_span_id": pd.array(c["parent_span_id"], dtype="string[pyarrow]"),
        "name": pd.array(c["name"], dtype="string[pyarrow]"), "service": pd.array(c["service"], dtype="string[pyarrow]"),
        "kind": np.array(c["kind"], dtype=np.int8), "start_ns": np.array(c["start_ns"], dtype=np.int64),
        "end_ns": np.array(c["end_ns"], dtype=np.int64), "error": np.array(c["error"], dtype=bool),
        "http_status": pd.array(c["http_status"], dtype="Int64"),
        "bytes_in": np.array(c["bytes_in"], dtype=float), "bytes_out": np.array(c["bytes_out"], dtype=float),
        "session": pd.array(c["session"], dtype="string[pyarrow]"), "key": pd.array(c["key"], dtype="string[pyarrow]"),
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
    refs = [r for r in _items(span, "references", f"span {sid}") if isinstance(r, dict)
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

