"""Traces from known models: simulate the truth, write what production would have written."""

from __future__ import annotations

import numpy as np
import pandas as pd

from twin.sim import PoissonArrivals, Workload, run_replication
from twin.traces.export import twin_spans_to_otlp, write_otlp_json

EPOCH = pd.Timestamp("2026-01-05T10:00:00Z")


def otlp_trace(model, path, *, rate_per_s, duration_s, seed=1):
    """Simulate ``model`` with spans and write them as OpenTelemetry JSON Lines."""
    w = PoissonArrivals(rate_per_s, duration_s).generate(model, np.random.default_rng(seed))
    r = run_replication(model, w, seed=seed, warmup_s=0.0, record_spans=True)
    write_otlp_json(twin_spans_to_otlp(r, epoch=EPOCH, workload=w), path)
    return r


def phased_workload(model, phases, seed=1) -> Workload:
    """Poisson arrivals whose rate changes by phase: [(rate_per_s, seconds), ...]."""
    rng = np.random.default_rng(seed)
    frames, t0 = [], 0.0
    for rate, seconds in phases:
        part = PoissonArrivals(rate, seconds).generate(model, rng).to_frame()
        part["time_s"] += t0
        frames.append(part)
        t0 += seconds
    frame = pd.concat(frames, ignore_index=True).drop(columns=["session"])
    frame["class"] = frame["class"].astype(str)
    return Workload.from_frame(frame, model, duration_s=t0)


NGINX = '$remote_addr - $remote_user $msec "$request" $status $body_bytes_sent $request_time'
PATHS = {"items": "GET /items/{k}", "orders": "POST /orders"}


def nginx_log(model, workload, path, *, seed=1):
    """Simulate, then write one nginx line per request at its completion ($msec, $request_time)."""
    r = run_replication(model, workload, seed=seed, warmup_s=0.0)
    req = r.requests
    done = req.status == 0
    end = EPOCH.timestamp() + req.arrival_s + req.latency_s
    rng = np.random.default_rng(seed)
    lines = []
    for i in np.flatnonzero(done)[np.argsort(end[done], kind="stable")]:
        cls = req.class_names[req.cls[i]]
        target = PATHS[cls].format(k=rng.integers(1, 10_000))
        lines.append(f'10.0.{i % 250}.{i % 200} - - {end[i]:.3f} "{target} HTTP/1.1" 200 {512 + i % 100} '
                     f'{req.latency_s[i]:.3f}\n')
    path.write_text("".join(lines))
    return r
