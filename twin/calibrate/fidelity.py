"""How faithful a calibrated twin is, measured on requests the calibration never saw.

The held-out part of the trace is replayed through the twin (its real arrival times, classes,
sizes and keys), and the twin's latencies are compared with the real ones, overall and per
class: the two-sample Kolmogorov-Smirnov statistic, the relative error of p50/p95/p99,
throughput and error rate.  A verdict holds the rows that carry a threshold to it.

A held-out sample is itself uncertain: its p95 from 3,000 requests is known to a few percent
only.  Each row carries that sampling noise (the 95% half-width of the trace's own estimate:
order-statistic interval for quantiles, the two-sample critical value for KS).  A row fails when
its error exceeds the threshold by more than that noise; otherwise it is judged only when its
noise is at most half its threshold, else the data cannot tell a pass from a fail and the row
says so.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from ..sim import ReplicationResult

QUANTILES = (50, 95, 99)


@dataclass(frozen=True)
class Thresholds:
    """Limits a faithful twin stays within; every one can be set from the command line."""

    max_ks: float = 0.05
    max_p50_error: float = 0.05
    max_p95_error: float = 0.05
    max_p99_error: float = 0.10
    max_throughput_error: float = 0.05
    min_requests: int = 200  # classes with fewer held-out requests are reported, not judged


@dataclass(frozen=True)
class Row:
    scope: str  # "all" or a class name
    metric: str
    trace: float
    twin: float
    error: float  # KS statistic, or relative error, or absolute difference of rates
    threshold: float | None
    passed: bool | None  # None: not judged (no threshold, or too noisy to judge)
    n_trace: int
    n_twin: int
    noise: float = math.nan  # 95% sampling half-width of the trace's own figure, in the error's unit


@dataclass(frozen=True)
class Fidelity:
    rows: list[Row]
    thresholds: Thresholds
    window_s: float
    replications: int
    left_out: int = 0  # held-out requests of classes calibration never saw (not replayed)
    samples: dict = field(default_factory=dict, compare=False, repr=False)  # scope -> (trace, twin) latencies

    @property
    def verdict(self) -> str:
        """'not faithful' if any judged row fails; 'faithful' if none fails and the headline rows
        (overall KS and p95) were judged; else 'undetermined' (too few held-out requests)."""
        if any(r.passed is False for r in self.rows):
            return "not faithful"
        headline = [r for r in self.rows if r.scope == "all" and r.metric in ("latency KS", "latency p95 (s)")]
        if headline and all(r.passed for r in headline):
            return "faithful"
        return "undetermined"

    @property
    def passed(self) -> bool:
        return self.verdict == "faithful"

    def failures(self) -> list[Row]:
        return [r for r in self.rows if r.passed is False]

    def to_dict(self) -> dict:
        def clean(v):
            return None if isinstance(v, float) and not math.isfinite(v) else v

        return {"verdict": self.verdict, "window_s": self.window_s, "left_out": self.left_out,
                "replications": self.replications, "thresholds": asdict(self.thresholds),
                "rows": [{k: clean(v) for k, v in asdict(r).items()} for r in self.rows]}


def _rel(a: float, b: float) -> float:
    return abs(a - b) / abs(b) if b else (0.0 if a == b else math.inf)


CLEAR_MISS_MIN = 20  # requests needed before a miss beyond limit + noise fails a row


def _judge(value: float, limit: float | None, enough: bool, noise: float = 0.0,
           n: int = CLEAR_MISS_MIN) -> tuple[float | None, bool | None]:
    """Fail what is beyond the limit even allowing for noise (at any size worth a look); else
    judge only what the sample size and its noise permit."""
    if limit is None:
        return None, None
    if n >= CLEAR_MISS_MIN and value > limit + noise:
        return limit, False
    if not enough or not noise <= limit / 2:
        return limit, None
    return limit, bool(value <= limit)


def quantile_noise(sorted_x: np.ndarray, q: float) -> float:
    """Relative 95% half-width of the q-quantile of a sample (distribution-free order statistics)."""
    n = len(sorted_x)
    half = 1.96 * math.sqrt(n * q * (1 - q))
    lo, hi = int(max(0, math.floor(n * q - half))), int(min(n - 1, math.ceil(n * q + half)))
    mid = float(np.quantile(sorted_x, q))
    return (float(sorted_x[hi]) - float(sorted_x[lo])) / 2 / mid if mid > 0 else math.inf


def twin_latencies(results: list[ReplicationResult], *, handler: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The twin's latencies (with class names and ok flags) measured as the trace measured them.

    ``handler``: as a server span does, from the entry's handler start to its end (the queue in
    front of the entry is in no span); else as a client or an access log does, from arrival.
    Only requests that arrived inside each replication's window count.
    """
    lat, cls, ok = [], [], []
    for r in results:
        req = r.requests
        names = np.asarray(req.class_names)
        if handler:
            cols = r.spans.columns
            root = np.flatnonzero((np.asarray(cols["parent"]) < 0) & (np.asarray(cols["kind"]) == 0))
            request = np.asarray(cols["request"])[root]
            win = req.in_window()[request]
            lat.append((np.asarray(cols["end_s"]) - np.asarray(cols["start_s"]))[root][win])
            cls.append(names[req.cls[request[win]]])
            ok.append(np.asarray(cols["status"])[root][win] == 0)
        else:
            win = req.in_window()
            lat.append(req.latency_s[win])
            cls.append(names[req.cls[win]])
            ok.append(req.status[win] == 0)
    return np.concatenate(lat), np.concatenate(cls), np.concatenate(ok)


def compare(observed: pd.DataFrame, observed_class: pd.Series, twin: tuple[np.ndarray, np.ndarray, np.ndarray],
            results: list[ReplicationResult], *, thresholds: Thresholds = Thresholds(), window_s: float,
            utilisation: dict[str, float] | None = None, hit_ratio: dict[str, float] | None = None,
            left_out: int = 0) -> Fidelity:
    """Compare held-out requests (``observed``: latency_s, error; ``observed_class``: model class
    names) with the twin's replays of them: ``twin`` is (latency, class, ok) from ``twin_latencies``.

    ``utilisation`` and ``hit_ratio`` (per service, per cache) are what the trace shows for the
    held-out window; they are reported beside the twin's (from ``results``), with the absolute
    difference.
    """
    lat_twin, cls_twin, ok_twin = twin
    ok_trace = ~observed["error"].to_numpy(dtype=bool)
    lat_trace = observed["latency_s"].to_numpy(dtype=float)
    cls_trace = observed_class.to_numpy()
    n_reps = len(results)
    rows: list[Row] = []
    samples = {}
    t = thresholds
    limits = {50: t.max_p50_error, 95: t.max_p95_error, 99: t.max_p99_error}
    scopes = ["all"] + sorted(set(cls_trace))
    for scope in scopes:
        mine_trace = np.ones(len(lat_trace), bool) if scope == "all" else cls_trace == scope
        mine_twin = np.ones(len(lat_twin), bool) if scope == "all" else cls_twin == scope
        a = lat_trace[mine_trace & ok_trace]
        b = lat_twin[mine_twin & ok_twin]
        n_a, n_b = len(a), len(b)
        enough = n_a >= t.min_requests and n_b >= t.min_requests
        samples[scope] = (a, b)
        if n_a and n_b:
            ks = float(stats.ks_2samp(a, b).statistic)
            ks_noise = 1.358 * math.sqrt(1 / n_a + 1 / n_b)  # two-sample KS critical value at 5%
            limit, ok = _judge(ks, t.max_ks, enough, ks_noise, min(n_a, n_b))
            rows.append(Row(scope, "latency KS", math.nan, math.nan, ks, limit, ok, n_a, n_b, ks_noise))
            qa, qb = np.percentile(a, QUANTILES), np.percentile(b, QUANTILES)
            sa = np.sort(a)
            for q, x, y in zip(QUANTILES, qa, qb):
                err = _rel(float(y), float(x))
                noise = quantile_noise(sa, q / 100)
                limit, ok = _judge(err, limits[q], enough, noise, min(n_a, n_b))
                rows.append(Row(scope, f"latency p{q} (s)", float(x), float(y), err, limit, ok, n_a, n_b, noise))
        thr_trace = float((mine_trace & ok_trace).sum()) / window_s
        thr_twin = float((mine_twin & ok_twin).sum()) / window_s / n_reps
        err = _rel(thr_twin, thr_trace)
        limit, ok = _judge(err, t.max_throughput_error, enough)
        rows.append(Row(scope, "throughput (req/s)", thr_trace, thr_twin, err, limit, ok, int(mine_trace.sum()),
                        int(mine_twin.sum()), 0.0))
        e_trace = float((~ok_trace[mine_trace]).mean()) if mine_trace.any() else math.nan
        e_twin = float((~ok_twin[mine_twin]).mean()) if mine_twin.any() else math.nan
        rows.append(Row(scope, "error rate", e_trace, e_twin, abs(e_twin - e_trace), None, None,
                        int(mine_trace.sum()), int(mine_twin.sum())))
    for name, value in (utilisation or {}).items():
        twin = float(np.mean([r.services[name].utilisation for r in results]))
        rows.append(Row(name, "utilisation (spans / skeleton workers)", value, twin, abs(twin - value), None, None,
                        0, 0))
    for name, value in (hit_ratio or {}).items():
        twin = float(np.mean([r.caches[name].hit_ratio for r in results]))
        rows.append(Row(name, "cache hit ratio", value, twin, abs(twin - value), None, None, 0, 0))
    return Fidelity(rows, thresholds, window_s, n_reps, left_out, samples)
