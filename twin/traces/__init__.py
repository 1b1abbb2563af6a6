"""Readers: production traces, logs and metric series into the request-trace contract (schema.py).

``read_trace`` picks the reader from the file (or ``format``); ``read_traces`` reads several
files into one trace.  Readers only read: they never change a file.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd

from .schema import COLUMNS, ReadReport, TraceError, conform

FORMATS = ("auto", "otlp", "jaeger", "combined", "common", "csv", "parquet")


def sniff(path: Path) -> str:
    """The format of a trace file from its name and first bytes."""
    if path.is_file() and path.stat().st_size == 0:
        raise TraceError(f"{path}: empty file")
    name = path.name.lower()
    stem = name[:-3] if name.endswith(".gz") else name
    if stem.endswith((".parquet", ".pq")):
        return "parquet"
    if stem.endswith(".csv"):
        return "csv"
    if stem.endswith((".json", ".jsonl", ".ndjson")):
        opener = gzip.open if name.endswith(".gz") else open
        try:
            with opener(path, "rb") as f:
                head = f.read(1 << 16)
        except OSError as e:
            raise TraceError(f"{path}: cannot read ({e})") from None
        if b'"resourceSpans"' in head:
            return "otlp"
        if b'"traceID"' in head or b'"data"' in head:
            return "jaeger"
        raise TraceError(f"{path}: JSON that is neither OpenTelemetry (resourceSpans) nor Jaeger (data/traceID); "
                         f"pass --format")
    return "combined"


def read_trace(path, *, format: str = "auto", log_format: str | None = None, columns: dict | None = None,
               service: str | None = None, keep_going: bool = False, time_zone: str | None = None,
               latency_unit: str = "s", time_unit: str | None = None) -> tuple[pd.DataFrame, ReadReport, str]:
    """Read one trace file; returns the contract frame, the reader's report and the format used."""
    path = Path(path)
    if not path.exists():
        raise TraceError(f"{path}: no such file")
    if format not in FORMATS:
        raise TraceError(f"{path}: unknown format {format!r}; expected one of {', '.join(FORMATS)}")
    kind = sniff(path) if format == "auto" else format
    if log_format and kind in ("combined", "common"):
        kind = "log"
    if kind == "otlp":
        from .spans import read_otlp_json

        frame, report = read_otlp_json(path, keep_going=keep_going)
    elif kind == "jaeger":
        from .spans import read_jaeger_json

        frame, report = read_jaeger_json(path, keep_going=keep_going)
    elif kind in ("csv", "parquet"):
        from .requestlog import read_request_log

        frame, report = read_request_log(path, columns=columns, time_unit=time_unit, latency_unit=latency_unit,
                                         time_zone=time_zone, keep_going=keep_going, service=service or "app")
    else:
        from .accesslog import read_access_log

        fmt = log_format or kind
        frame, report = read_access_log(path, format=fmt, service=service or "web", keep_going=keep_going,
                                        time_zone=time_zone)
        kind = fmt if kind != "log" else f"access log ({log_format})"
    return frame, report, kind


def _describe(path, kind: str, frame: pd.DataFrame, report: ReadReport) -> dict:
    return {"file": str(path), "format": kind, "rows": int(len(frame)), "malformed": report.malformed,
            "first": frame["timestamp"].iloc[0].isoformat(), "last": frame["timestamp"].iloc[-1].isoformat(),
            "warnings": [w.removeprefix(f"{path}: ") for w in report.warnings],
            "time_resolution_s": report.time_resolution_s}


def read_traces(paths, **options) -> tuple[pd.DataFrame, list[dict]]:
    """Read and merge several trace files; returns the trace and a description of each input.

    Span files (OTLP, Jaeger) are linked together: a trace's spans may be spread over several
    files (one per service, or a collector's rotated files), so parents are found across them.
    """
    paths = [Path(p) for p in paths]
    kinds = {p: (options.get("format") if options.get("format", "auto") != "auto" else sniff(p)) for p in paths
             if p.exists()}
    span_files = [p for p in paths if kinds.get(p) in ("otlp", "jaeger")]
    frames, inputs = [], []
    if len(span_files) > 1:
        from .spans import read_raw
        from .spangraph import server_spans

        raws = []
        for path in span_files:
            raw, report = read_raw(path, kinds[path], keep_going=options.get("keep_going", False))
            raws.append(raw)
            inputs.append({"file": str(path), "format": kinds[path], "rows": int(len(raw)), "malformed": report.malformed,
                           "warnings": [w.removeprefix(f"{path}: ") for w in report.warnings]})
        frame, warnings = server_spans(pd.concat(raws, ignore_index=True), source=", ".join(map(str, span_files)))
        frames.append(frame)
        inputs[-1]["warnings"] += warnings
        paths = [p for p in paths if p not in span_files]
    for path in paths:
        frame, report, kind = read_trace(path, **options)
        frames.append(frame)
        inputs.append(_describe(path, kind, frame, report))
    if len(frames) == 1:
        return frames[0], inputs
    merged = pd.concat(frames, ignore_index=True)
    for name in ("class", "service"):
        merged[name] = merged[name].astype(str)
    return conform(merged, ", ".join(str(p) for p in paths), require_latency=False), inputs


def read_series(path, *, time_zone: str | None = None, fraction: bool = False) -> pd.Series:
    """One metric series (the first value column) from a metric CSV or a Prometheus JSON file.

    ``fraction``: the series is a busy fraction, so values must lie in [0, 1].
    """
    from .metrics import read_metric_csv, read_prometheus

    path = Path(path)
    frame, _ = read_prometheus(path) if path.suffix.lower() == ".json" else read_metric_csv(path, time_zone=time_zone)
    if frame.shape[1] == 0:
        raise TraceError(f"{path}: no value column")
    series = frame.iloc[:, 0]
    if fraction and ((series < 0) | (series > 1)).any():
        raise TraceError(f"{path}: expected a utilisation between 0 and 1, got values up to {series.max():g} "
                         f"(a percentage? divide by 100)")
    return series


__all__ = ["COLUMNS", "FORMATS", "ReadReport", "TraceError", "conform", "read_series", "read_trace",
           "read_traces", "sniff"]
