"""Metric series (request rates, utilisation) from CSV files and Prometheus range queries.

A metric frame has a UTC ``DatetimeIndex`` named ``timestamp`` and one float column per series.

>>> frame, report = read_metric_csv("tests/fixtures/traces/nab_nyc_taxi_500.csv", time_zone="UTC")  # doctest: +SKIP
>>> list(frame.columns)  # doctest: +SKIP
['value']
"""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation
from pathlib import Path

import numpy as np
import pandas as pd

from .jsontext import loads
from .requestlog import TimestampParser
from .schema import ReadReport, TraceError

TIME_NAMES = ("timestamp", "time", "ts", "date", "datetime")
LABEL_NAMES = ("label", "labels", "is_anomaly", "anomaly")
# What Prometheus writes for a sample value: a decimal number, NaN or an infinity.
_SAMPLE = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|NaN|[+-]?Inf")


def _pick(columns: list[str], wanted, what: str, source: str) -> list[str]:
    missing = [c for c in wanted if c not in columns]
    if missing:
        raise TraceError(f"{source}: no {what} column {', '.join(map(repr, missing))}; "
                         f"its columns are {', '.join(map(repr, columns))}")
    return list(wanted)


def _tidy(frame: pd.DataFrame, report: ReadReport, lines: np.ndarray | None = None) -> pd.DataFrame:
    """Sorted by time, one row per instant (the last one written wins), each repair a warning."""
    where = "" if lines is None else f" (first at line {int(lines[np.argmax(frame.index.duplicated())])})"
    dupes = int(frame.index.duplicated().sum())
    if dupes:
        report.warnings.append(f"{dupes} duplicate timestamp(s){where}: kept the last value of each")
    if not frame.index.is_monotonic_increasing:
        report.warnings.append("rows were not in time order: sorted by timestamp")
    frame = frame.sort_index(kind="stable")
    frame = frame[~frame.index.duplicated(keep="last")]
    report.rows = len(frame)
    return frame


def read_csv_text(path: Path, error: type[Exception] = TraceError) -> tuple[pd.DataFrame, list[str]]:
    """A CSV file's cells as strings and its column names; a missing, empty, unreadable or
    header-only file raises ``error`` naming the file."""
    source = str(path)
    if not Path(path).is_file():
        raise error(f"{source}: no such file")
    try:
        raw = pd.read_csv(path, dtype="string", skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise error(f"{source}: empty file") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise error(f"{source}: not a readable CSV file ({exc})") from None
    if raw.empty:
        raise error(f"{source}: no rows under the header")
    return raw, [str(c) for c in raw.columns]


def read_metric_csv(path, *, time_column: str | None = None, value_columns: list[str] | None = None,
                    time_zone: str | None = None, time_unit: str | None = None) -> tuple[pd.DataFrame, ReadReport]:
    """Read metric series from a CSV file: one time column, one column per series.

    ``time_column`` defaults to the first column named timestamp/time/ts/date/datetime (any case),
    else the first column; ``value_columns`` to every other column except anomaly labels (Label).
    Timestamps written with an offset (the Microsoft format, ``"2017-11-01T00:00:00Z"``) are exact;
    timestamps written without one (the NAB format, ``2014-07-01 00:00:00``) need ``time_zone``:
    nothing is assumed, so pass ``time_zone="UTC"`` for NAB files.  Epoch numbers need
    ``time_unit``.  Empty cells are NaN; other non-numbers are an error.

    >>> frame, report = read_metric_csv("tests/fixtures/traces/microsoft_api-01_500.csv")  # doctest: +SKIP
    >>> frame["Value"].iloc[0]  # doctest: +SKIP
    49.6747222222222
    """
    path = Path(path)
    source = str(path)
    raw, columns = read_csv_text(path, TraceError)
    if time_column is None:
        time_column = next((c for c in columns if c.strip().lower() in TIME_NAMES), columns[0])
    _pick(columns, [time_column], "time", source)
    if value_columns is None:
        value_columns = [c for c in columns if c != time_column and c.strip().lower() not in LABEL_NAMES]
    value_columns = _pick(columns, value_columns, "value", source)
    if not value_columns:
        raise TraceError(f"{source}: no value columns besides {time_column!r}")
    stamps = TimestampParser(source, time_column, time_unit=time_unit, time_zone=time_zone)(raw[time_column], 2)
    if stamps.isna().any():
        i = int(np.argmax(stamps.isna().to_numpy()))
        raise TraceError(f"{source}: line {i + 2}: unreadable timestamp {raw[time_column].iloc[i]!r} "
                         f"in {time_column!r} (expected ISO 8601)")
    values = {}
    for name in value_columns:
        text = raw[name].str.strip()
        numbers = pd.to_numeric(text, errors="coerce")
        bad = (text.notna() & (text != "") & numbers.isna() & ~text.str.lower().isin(["nan", "inf", "+inf", "-inf"]))
        if bad.any():
            i = int(np.argmax(bad.to_numpy()))
            raise TraceError(f"{source}: line {i + 2}: {text.iloc[i]!r} in {name!r} is not a number")
        values[name] = numbers.to_numpy(dtype="float64", na_value=np.nan)
    frame = pd.DataFrame(values, index=pd.DatetimeIndex(stamps, name="timestamp"))
    report = ReadReport(source)
    return _tidy(frame, report, lines=np.arange(2, len(frame) + 2)), report


def series_name(labels: dict) -> str:
    """A Prometheus series name: ``__name__{label="value",...}``, labels sorted.

    >>> series_name({"__name__": "http_requests_total", "service": "api"})
    'http_requests_total{service="api"}'
    """
    labels = dict(labels)
    name = str(labels.pop("__name__", ""))
    inner = ",".join(f"{k}={json.dumps(str(v))}" for k, v in sorted(labels.items()))
    return f"{name}{{{inner}}}" if inner or not name else name


def _series(entry, source: str, report: ReadReport) -> pd.Series:
    if not isinstance(entry, dict) or not isinstance(entry.get("values"), list):
        raise TraceError(f"{source}: a result without 'values': not a range-query (matrix) response")
    labels = entry.get("metric") or {}
    if not isinstance(labels, dict):
        raise TraceError(f"{source}: a series' metric is {labels!r}, not a mapping of labels")
    name = series_name(labels)
    stamps, values = [], []
    for k, pair in enumerate(entry["values"]):
        try:
            ts, value = pair
            ns = int(Decimal(str(ts)) * 1_000_000_000)
            if not -(2**63) < ns < 2**63:
                raise ValueError
        except (TypeError, ValueError, InvalidOperation, OverflowError):
            raise TraceError(f"{source}: series {name}: sample {k + 1} is {pair!r}, not [unix_time, \"value\"]") from None
        if not isinstance(value, (str, int, float)) or isinstance(value, bool) or not _SAMPLE.fullmatch(str(value)):
            raise TraceError(f"{source}: series {name}: sample {k + 1} has value {value!r}, not a number")
        stamps.append(ns)
        values.append(float(value))
    index = pd.DatetimeIndex(pd.to_datetime(np.array(stamps, dtype="int64"), unit="ns", utc=True), name="timestamp")
    sub = ReadReport(source)
    series = _tidy(pd.DataFrame({name: np.array(values, dtype="float64")}, index=index), sub)[name]
    report.warnings += [f"series {name}: {w}" for w in sub.warnings]
    return series


def read_prometheus(path) -> tuple[pd.DataFrame, ReadReport]:
    """Read a Prometheus HTTP API range-query response (``/api/v1/query_range``, saved as JSON).

    One column per series, named from its labels (``series_name``); series are joined on time,
    NaN where a series has no sample.  An error response, a result type other than 'matrix', or a
    value that is not a number ('NaN' and '+Inf' are numbers) is a ``TraceError`` naming the file.

    >>> frame, report = read_prometheus("rate.json")  # doctest: +SKIP
    >>> list(frame.columns)  # doctest: +SKIP
    ['http_requests_total{service="api"}']
    """
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise TraceError(f"{source}: no such file")
    try:
        text = path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError) as exc:
        raise TraceError(f"{source}: cannot read as UTF-8 text ({exc})") from None
    if not text.strip():
        raise TraceError(f"{source}: empty file")
    try:
        doc = loads(text)
    except json.JSONDecodeError as exc:
        raise TraceError(f"{source}: not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    if not isinstance(doc, dict) or "status" not in doc:
        raise TraceError(f"{source}: not a Prometheus API response (no 'status')")
    if doc["status"] != "success":
        raise TraceError(f"{source}: Prometheus answered {doc['status']!r}: "
                         f"{doc.get('errorType', 'error')}: {doc.get('error', 'no message')}")
    data = doc.get("data")
    kind = data.get("resultType") if isinstance(data, dict) else None
    if kind != "matrix":
        raise TraceError(f"{source}: resultType is {kind!r}, not 'matrix': save a range query (/api/v1/query_range)")
    result = data.get("result")
    if not isinstance(result, list) or not result:
        raise TraceError(f"{source}: the response holds no series")
    warnings = doc.get("warnings") or []
    warnings = warnings if isinstance(warnings, list) else [warnings]
    report = ReadReport(source, warnings=[f"Prometheus: {w}" for w in warnings])
    columns = [_series(entry, source, report) for entry in result]
    names = [c.name for c in columns]
    if len(set(names)) < len(names):
        twice = next(n for n in names if names.count(n) > 1)
        raise TraceError(f"{source}: two series with the same labels: {twice}")
    frame = pd.concat(columns, axis=1).sort_index()
    frame.index.name = "timestamp"
    report.rows = len(frame)
    return frame, report
