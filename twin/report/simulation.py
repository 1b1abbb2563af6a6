"""What ``twin simulate --out DIR`` writes: the summary, the raw records and a report page.

    summary.json       metrics with 95% confidence intervals (the JSON of ``--json``)
    replications.csv   one row of metrics per replication
    requests.parquet   every request of every replication (class, arrival, latency, status, path)
    timeseries.csv     per-service utilisation, queue length and instances up, sampled over time
    spans.parquet      one row per visit, with --spans
    model.yaml         the model as simulated (overrides and parameters applied)
    report.html        figures and tables; opens offline
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from ..sim import ReplicationResult, Summary
from ..spec import SystemModel
from .html import esc, figure_tag, page, table


def interval_text(value: float, low: float, high: float, scale: float = 1.0, digits: int = 4) -> str:
    """``value`` with its interval: ``value ± half-width`` where the interval is symmetric about it,
    ``value [low, high]`` where it is not (a pooled quantile's, skewed as a tail's error is), so
    that a skewed interval is never printed as if it were symmetric."""
    v, lo, hi = value * scale, low * scale, high * scale
    up, down = hi - v, v - lo
    if abs(up - down) <= 1e-9 * max(abs(v), abs(up) + abs(down)):  # equal up to rounding of mean -+ half
        return f"{v:.{digits}g} ± {(up + down) / 2:.2g}"
    # more digits where a narrow interval's ends would print as the value itself
    while digits < 10 and len({f"{x:.{digits}g}" for x in (lo, v, hi)}) < len({lo, v, hi}):
        digits += 1
    return f"{v:.{digits}g} [{lo:.{digits}g}, {hi:.{digits}g}]"


#: what a column of ``fmt`` shows, for headers and captions
INTERVAL_HEADER = "value, 95% CI"
INTERVAL_NOTE = ("95% confidence intervals over replications: value ± half-width, or value [low, high] where "
                 "skewed (the pooled latency quantiles)")


def fmt(est, scale: float = 1.0, digits: int = 4) -> str:
    """An ``Estimate`` as text: see ``interval_text``; its value alone without an interval (n < 2)."""
    if est is None or est.n == 0 or not math.isfinite(est.mean):
        return "–"
    if not (math.isfinite(est.half_width) and math.isfinite(est.low) and math.isfinite(est.high)):
        return f"{est.mean * scale:.{digits}g}"
    return interval_text(est.mean, est.low, est.high, scale, digits)


def overview_rows(summary: Summary) -> list[list[str]]:
    m = summary.metrics
    rows = [
        ["latency mean (ms)", fmt(m["latency_mean_s"], 1e3)],
        ["latency p50 (ms)", fmt(m["latency_p50_s"], 1e3)],
        ["latency p95 (ms)", fmt(m["latency_p95_s"], 1e3)],
        ["latency p99 (ms)", fmt(m["latency_p99_s"], 1e3)],
        ["throughput (req/s)", fmt(m["throughput_per_s"])],
        ["error rate", fmt(m["error_rate"])],
        ["  rejected (queue full)", fmt(m["rejection_rate"])],
        ["  timed out", fmt(m["timeout_rate"])],
    ]
    if math.isfinite(m["cache_hit_ratio"].mean):
        rows.append(["cache hit ratio", fmt(m["cache_hit_ratio"])])
    rows.append(["cost (per run window)", fmt(m["cost"])])
    return rows


def service_rows(summary: Summary, model: SystemModel) -> list[list[str]]:
    m = summary.metrics
    rows = []
    for name, s in model.services.items():
        p = f"service.{name}."
        rows.append([name, f"{s.instances}×{s.workers}", fmt(m[p + "utilisation"]), fmt(m[p + "queue_length_mean"]),
                     fmt(m[p + "wait_mean_s"], 1e3), fmt(m[p + "blocking_probability"]),
                     fmt(m[p + "throughput_per_s"]), fmt(m[p + "availability"])])
    return rows


SERVICE_HEADER = ["service", "inst×workers", "utilisation", "queue length", "wait (ms)", "blocking",
                  "completed/s", "availability"]


def class_rows(summary: Summary, model: SystemModel) -> list[list[str]]:
    m = summary.metrics
    if len(model.classes) < 2:
        return []
    return [[c, fmt(m[f"class.{c}.latency_p50_s"], 1e3), fmt(m[f"class.{c}.latency_p99_s"], 1e3),
             fmt(m[f"class.{c}.throughput_per_s"]), fmt(m[f"class.{c}.error_rate"])] for c in model.classes]


def _figures(results: list[ReplicationResult], model: SystemModel) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = []
    fig, ax = plt.subplots(figsize=(6, 3.6))
    req = results[0].requests
    for code, name in enumerate(req.class_names):
        lat = np.sort(np.concatenate([r.requests.latency_s[r.requests.in_window() & (r.requests.status == 0) &
                                                            (r.requests.cls == code)] for r in results]))
        if len(lat):
            ax.plot(lat * 1e3, np.arange(1, len(lat) + 1) / len(lat), label=name)
    ax.set_xscale("log")
    ax.set_xlabel("latency (ms, log scale)")
    ax.set_ylabel("fraction of requests")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    out.append(figure_tag(fig, f"Latency CDF of successful requests, {len(results)} replications pooled"))
    plt.close(fig)

    ts = results[0].timeseries
    for what, label in (("utilisation", "utilisation (busy workers / workers)"), ("queue_length", "queue length")):
        fig, ax = plt.subplots(figsize=(6, 3.6))
        for name in model.services:
            ax.plot(ts.time_s, ts.values[f"{name}.{what}"], label=name, lw=1)
        ax.axvline(results[0].warmup_s, color="grey", ls=":", lw=1)
        ax.set_xlabel("simulated time (s); dotted: end of warm-up")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        out.append(figure_tag(fig, f"{label.capitalize()} over time, replication 1"))
        plt.close(fig)
    return out


def write_simulation(folder: Path, *, model: SystemModel, results: list[ReplicationResult], summary: Summary,
                     meta: dict) -> None:
    """Write every output of a simulation into ``folder`` (a fresh, empty folder)."""
    folder = Path(folder)
    doc = {**meta, **summary.to_dict()}
    (folder / "summary.json").write_text(json.dumps(doc, indent=2, allow_nan=False) + "\n")
    summary.per_replication.rename_axis("replication").to_csv(folder / "replications.csv")
    frames, series, spans = [], [], []
    for i, r in enumerate(results):
        f = r.requests.to_frame()
        f.insert(0, "replication", i)
        frames.append(f)
        t = r.timeseries.to_frame()
        t.insert(0, "replication", i)
        series.append(t)
        if r.spans is not None:
            s = r.spans.to_frame()
            s.insert(0, "replication", i)
            spans.append(s)
    pd.concat(frames, ignore_index=True).to_parquet(folder / "requests.parquet", index=False)
    pd.concat(series, ignore_index=True).to_csv(folder / "timeseries.csv", index=False)
    if spans:
        pd.concat(spans, ignore_index=True).to_parquet(folder / "spans.parquet", index=False)
    (folder / "model.yaml").write_text(yaml.safe_dump(model.model_dump(by_alias=True, exclude_none=True),
                                                      sort_keys=False))
    described = ", ".join(f"{k}={v}" for k, v in meta.items() if k in ("rate_per_s", "duration_s", "seed"))
    sections = [
        f"<p class='meta'>model <b>{esc(model.name)}</b>: {esc(model.description)} — {summary.replications} "
        f"replications, {esc(described)}, warm-up {summary.warmup_s:g} s. {esc(INTERVAL_NOTE)}.</p>",
        *[f"<p class='meta'><b>{kind}:</b> {esc(w)}</p>" for kind, ws in (("Warning", summary.warnings),
                                                                         ("Note", summary.cautions)) for w in ws],
        "<h2>Overview</h2>", table(["metric", INTERVAL_HEADER], overview_rows(summary)),
        "<h2>Services</h2>", table(SERVICE_HEADER, service_rows(summary, model)),
    ]
    if model.caches:
        sections += ["<h2>Caches</h2>", table(["cache", "hit ratio"], [
            [c, fmt(summary.metrics[f"cache.{c}.hit_ratio"])] for c in model.caches])]
    rows = class_rows(summary, model)
    if rows:
        sections += ["<h2>Request classes</h2>",
                     table(["class", "p50 (ms)", "p99 (ms)", "throughput/s", "error rate"], rows)]
    sections += ["<h2>Figures</h2>", *_figures(results, model)]
    (folder / "report.html").write_text(page(f"twin simulate: {model.name}", sections))
