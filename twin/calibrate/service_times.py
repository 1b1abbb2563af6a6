"""Service times from a trace: what each service spends on a request itself, not its latency.

With spans, a service's own time is the span's exclusive time (its duration minus the time its
callees took).  With only request latencies (an access log), latency is queueing plus service.  Each log line
gives a request's arrival and completion, so the number of requests in progress when it arrived
is known; one that found fewer in progress than there are workers did not queue, and its
latency *is* its service time.  Those requests are the sample.  (Where that leaves too few, the
quietest periods are used instead.)  The utilisation law (S = U c / X) is reported beside it
when a utilisation series is given.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from ..traces.spangraph import root_classes
from .fit import Fit, TooFewSamples, fit_distribution
from .requests import ClassMap


@dataclass(frozen=True)
class ServiceFit:
    service: str
    pooled: Fit
    by_class: dict[str, Fit] = field(default_factory=dict)
    source: str = "exclusive span time"
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        out = {"source": self.source, **self.pooled.to_dict()}
        if self.by_class:
            out["by_class"] = {c: f.to_dict() for c, f in self.by_class.items()}
        if self.notes:
            out["notes"] = list(self.notes)
        return out


def request_class_of_spans(spans: pd.DataFrame, classes: ClassMap) -> pd.Series:
    """Each span's *request* class: the model class of the root span of its trace."""
    return pd.Series(classes.of(root_classes(spans)).to_numpy(), index=spans.index)


def fit_services(spans: pd.DataFrame, classes: ClassMap, services: list[str], *, rng: np.random.Generator,
                 min_class_samples: int = 200, split_p: float = 1e-3, split_effect: float = 0.05,
                 request_class: pd.Series | None = None) -> tuple[dict[str, ServiceFit], list[str]]:
    """Fit each service's exclusive times; a class gets its own fit when its times differ clearly.

    "Clearly" means both a two-sample KS test against the service's other classes with
    p < ``split_p`` and a mean that differs by more than ``split_effect``: with a million spans a
    KS test finds differences nobody would model.  The service's own (pooled) fit then covers the
    other classes only.  Failed spans (rejected, timed out, errors) are left out: their durations
    say how the failure went, not how long the work takes.  Returns the fits and warnings.
    """
    cls = request_class if request_class is not None else request_class_of_spans(spans, classes)
    out, warnings = {}, []
    ok_spans = ~spans["error"].to_numpy(dtype=bool)
    for service in services:
        mine = (spans["service"].astype(str) == service).to_numpy() & ok_spans
        x = spans.loc[mine, "exclusive_s"].to_numpy(dtype=float)
        c = cls[mine].to_numpy()
        ok = np.isfinite(x)
        x, c = x[ok], c[ok]
        notes = []
        skewed = int((x < 0).sum())
        if skewed:  # clocks of caller and callee disagree: a callee seems to outlast its caller
            notes.append(f"{skewed} span(s) with negative exclusive time (clock skew) counted as 0 s")
            x = np.maximum(x, 0.0)
        by_class = {}
        labels = [k for k in pd.unique(c) if isinstance(k, str)]
        if len(labels) > 1:
            for label in labels:
                sel = c == label
                a, b = x[sel], x[~sel]
                if len(a) < min_class_samples or len(b) < min_class_samples:
                    continue
                differs = abs(a.mean() - b.mean()) > split_effect * b.mean()
                if differs and stats.ks_2samp(a, b).pvalue < split_p:
                    by_class[label] = fit_distribution(a, rng=rng)
        rest = ~np.isin(c, list(by_class)) if by_class else np.ones(len(x), bool)
        try:
            pooled = fit_distribution(x[rest] if rest.sum() >= min_class_samples else x, rng=rng)
        except TooFewSamples as e:
            warnings.append(f"{service}: {e.count} successful spans, too few to fit; the skeleton's service "
                            f"time stays")
            continue
        if pooled.dist.mean() == 0:
            warnings.append(f"{service}: every measured service time is 0 s")
        out[service] = ServiceFit(service, pooled, by_class, notes=tuple(notes))
    return out, warnings


def quiet_latencies(requests: pd.DataFrame, *, window_s: float | None = None,
                    quantile: float = 0.2) -> tuple[np.ndarray, float, float]:
    """Latencies of requests that arrived in the quietest windows (rate at or below ``quantile``).

    Returns the latencies, the window length and the rate threshold (req/s).
    """
    t = (requests["timestamp"] - requests["timestamp"].iloc[0]).dt.total_seconds().to_numpy()
    span = max(float(t[-1]), 1e-9)
    window_s = window_s or max(10.0, span / 200)
    bins = (t // window_s).astype(np.int64)
    counts = np.bincount(bins)
    limit = np.quantile(counts[counts > 0], quantile)
    quiet = counts[bins] <= limit
    return requests["latency_s"].to_numpy(dtype=float)[quiet], window_s, float(limit) / window_s


def unqueued_latencies(requests: pd.DataFrame, servers: int) -> np.ndarray:
    """Latencies of requests that found fewer than ``servers`` requests in progress on arrival.

    In progress at t: arrived before t and not yet completed (completion = arrival + latency).
    With several instances behind a load balancer a request may still have queued on a busy
    instance while another was free; the count is then a close, slightly generous filter.
    """
    start = (requests["timestamp"] - requests["timestamp"].iloc[0]).dt.total_seconds().to_numpy()
    lat = requests["latency_s"].to_numpy(dtype=float)
    order = np.argsort(start, kind="stable")
    start, lat = start[order], lat[order]
    ends = np.sort(start + lat)
    arrived_before = np.arange(len(start))
    done_before = np.searchsorted(ends, start, side="right")
    return lat[arrived_before - done_before < servers]


def fit_from_latency(service: str, requests: pd.DataFrame, *, rng: np.random.Generator,
                     utilisation: pd.Series | None = None, servers: int = 1,
                     min_samples: int = 500, resolution_s: float = 0.0) -> ServiceFit:
    """Service time of a service seen only through its request latencies (no downstream calls).

    Counting requests in progress needs timestamps finer than the latencies; with coarser ones
    (a Common Log Format second against 100 ms requests) the quietest periods are used.
    Raises ``TooFewSamples`` when there is too little to fit.
    """
    requests = requests[~requests["error"].to_numpy(dtype=bool)]
    fine = resolution_s < 0.1 * float(np.median(requests["latency_s"])) if len(requests) else False
    lat = unqueued_latencies(requests, servers) if fine else np.empty(0)
    if len(lat) >= min_samples:
        source = "latency of unqueued requests"
        notes = [f"{len(lat):,} of {len(requests):,} requests found a free worker (of {servers}) on arrival; "
                 f"their latency is their service time"]
    else:
        lat, window_s, rate = quiet_latencies(requests)
        source = "quiet-period latency"
        notes = [f"latency of the requests in the quietest 20% of {window_s:g} s windows (<= {rate:.3g} req/s), "
                 f"where queueing is assumed negligible"]
        if not fine:
            notes.append(f"timestamps resolve {resolution_s:g} s only: too coarse to tell which requests queued")
    fit = fit_distribution(lat, rng=rng)
    law = utilisation_law(requests, utilisation, servers) if utilisation is not None else None
    if law is not None:
        notes.append(f"utilisation law: mean service time {law[0]:.4g} s (median over {law[1]} windows of the "
                     f"utilisation series) against {fit.dist.mean():.4g} s fitted")
    return ServiceFit(service, fit, source=source, notes=tuple(notes))


def utilisation_law(requests: pd.DataFrame, utilisation: pd.Series, servers: int) -> tuple[float, int] | None:
    """Mean service time from the utilisation law S = U c / X, per interval of the series.

    ``utilisation`` is the busy fraction of all ``servers`` workers, indexed by UTC time; X is the
    trace's completions per second in the same intervals.  Returns (median S, intervals used).
    """
    u = utilisation.dropna()
    if len(u) < 3:
        return None
    step = pd.Series(u.index).diff().median()
    counts = requests.set_index("timestamp")["latency_s"].resample(step).count() / step.total_seconds()
    both = pd.concat({"u": u.resample(step).mean(), "x": counts}, axis=1, join="inner").dropna()
    both = both[(both["x"] > 0) & (both["u"] > 0)]
    if both.empty:
        return None
    law = both["u"] * servers / both["x"]
    return float(law.median()), int(len(law))
