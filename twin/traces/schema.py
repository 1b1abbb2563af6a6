"""The request-trace contract every reader produces and calibration consumes.

A trace is a pandas DataFrame, one row per request (access and request logs) or per server span
(OpenTelemetry, Jaeger), with these columns:

================  =========================  ==================================================
column            dtype                      meaning
================  =========================  ==================================================
timestamp         datetime64[ns, UTC]        when the request (span) started, an exact instant
class             category                   request class: endpoint, route or operation
service           category                   the service that handled it
latency_s         float64                    duration as its handler saw it (span duration)
bytes_in          float64 (NaN: unknown)     request payload size
bytes_out         float64 (NaN: unknown)     response payload size
status            Int64 (<NA>: unknown)      HTTP status, or 200/500 for span OK/ERROR
error             bool                       a failed request (status >= 500 or span error)
trace_id          string[pyarrow] (<NA>)     spans only
span_id           string[pyarrow]            spans only
parent_id         string[pyarrow] (<NA>)     the nearest *server* span that called this one; NA: a root
exclusive_s       float64 (NaN for logs)     the span's own time: duration minus its callees'
session           string[pyarrow] (<NA>)     session or user id where the source has one
key               string[pyarrow] (<NA>)     the data key a request touched, where known
================  =========================  ==================================================

Rows are sorted by ``timestamp``.  Columns a source cannot fill hold their missing value, never
a guess.  Readers report what they skipped or repaired in a ``ReadReport``.  Strings are
Arrow-backed: an all-missing id column costs a bit per row, not a pointer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..spec import TwinError

COLUMNS: dict[str, str] = {
    "timestamp": "datetime64[ns, UTC]",
    "class": "category",
    "service": "category",
    "latency_s": "float64",
    "bytes_in": "float64",
    "bytes_out": "float64",
    "status": "Int64",
    "error": "bool",
    "trace_id": "string[pyarrow]",
    "span_id": "string[pyarrow]",
    "parent_id": "string[pyarrow]",
    "exclusive_s": "float64",
    "session": "string[pyarrow]",
    "key": "string[pyarrow]",
}


class TraceError(TwinError):
    """A trace file that cannot be read as asked; the message names the file and the line."""


@dataclass
class ReadReport:
    """What a reader did besides reading: skipped lines, repairs, warnings."""

    source: str
    rows: int = 0
    malformed: int = 0
    first_malformed: list[int] = field(default_factory=list)  # line numbers (1-based), at most 5
    warnings: list[str] = field(default_factory=list)
    time_resolution_s: float | None = None  # how finely times were written, where coarse (1 s in CLF)

    def bad_line(self, line_number: int) -> None:
        self.malformed += 1
        if len(self.first_malformed) < 5:
            self.first_malformed.append(line_number)

    def malformed_message(self) -> str:
        lines = ", ".join(map(str, self.first_malformed))
        more = ", ..." if self.malformed > len(self.first_malformed) else ""
        return f"{self.source}: {self.malformed} malformed line(s) (lines {lines}{more})"


def missing(dtype: str, n: int):
    """``n`` missing values of a contract dtype, made without a Python object per row."""
    if dtype == "string[pyarrow]":
        import pyarrow as pa

        return pd.array(pa.nulls(n, pa.large_string()), dtype=dtype)
    if dtype == "Int64":
        return pd.arrays.IntegerArray(np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool))
    if dtype == "bool":
        return np.zeros(n, dtype=bool)
    return np.full(n, np.nan)


def empty(n: int = 0) -> dict[str, object]:
    """Missing-value columns of length ``n``, to start a frame that a reader then fills."""
    return {name: missing(dtype, n) for name, dtype in COLUMNS.items()
            if name not in ("timestamp", "class", "service", "latency_s")}


def _check(df: pd.DataFrame, source: str, require_latency: bool) -> None:
    if df["timestamp"].isna().any():
        raise TraceError(f"{source}: {int(df['timestamp'].isna().sum())} request(s) without a timestamp")
    lat = pd.to_numeric(df["latency_s"], errors="coerce")
    bad = (lat.isna() & require_latency) | (lat < 0) | ~np.isfinite(lat.fillna(0))
    if bad.any():
        raise TraceError(f"{source}: {int(bad.sum())} request(s) with a missing, negative or infinite latency "
                         f"(first at row {int(np.argmax(bad.to_numpy())) + 1})")


def conform(frame: pd.DataFrame, source: str, *, require_latency: bool = True) -> pd.DataFrame:
    """Check and coerce a reader's output to the contract: all columns, right dtypes, sorted.

    Raises ``TraceError`` for what would make a silently wrong model: negative or missing
    latencies, missing timestamps, an empty trace.  ``require_latency=False`` is for sources
    that record no latency at all (an access log without a latency field): ``latency_s`` may
    then be NaN, but a negative or infinite one is still an error.
    """
    if frame.empty:
        raise TraceError(f"{source}: no requests in the trace")
    if list(frame.columns) == list(COLUMNS) and all(frame[c].dtype == t for c, t in COLUMNS.items()):
        _check(frame, source, require_latency)  # already in shape: checked, not copied
        if not frame["timestamp"].is_monotonic_increasing:
            frame = frame.sort_values("timestamp", kind="stable", ignore_index=True)
        return frame
    out = {}
    blanks = None
    for name, dtype in COLUMNS.items():
        if name not in frame:
            if name in ("timestamp", "class", "service", "latency_s"):
                raise TraceError(f"{source}: the reader produced no {name!r} column")
            blanks = blanks or empty(len(frame))
            out[name] = blanks[name]
            continue
        out[name] = frame[name]
    df = pd.DataFrame(out, index=frame.index, copy=False)
    _check(df, source, require_latency)
    for name, dtype in COLUMNS.items():
        if name == "timestamp":
            ts = df[name]
            if ts.dt.tz is None:
                raise TraceError(f"{source}: timestamps carry no time zone; readers must state one (UTC)")
            df[name] = ts.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")
        elif dtype == "category":
            if not isinstance(df[name].dtype, pd.CategoricalDtype):
                df[name] = df[name].astype(str).astype("category")
        elif str(df[name].dtype) != dtype:
            df[name] = df[name].astype(dtype)
    df = df.sort_values("timestamp", kind="stable", ignore_index=True)
    return df
