"""Service times from a trace: what each service spends on a request itself, not its latency.

With spans, a service's own time is the span's exclusive time (its duration minus the time its
callees took).  With only request latencies (an access log), latency is queueing plus service;
in the quietest periods queueing is negligible, so the latencies seen there estimate the
service time, and the utilisation law (S = U c / X) checks or corrects the mean when a
utilisation series is given.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from ..traces.spans import root_classes
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
                 min_class_samples: int = 200, split_p: float = 1e-3,
                 split_effect: float = 0.05) -> dict[str, ServiceFit]:
    """Fit each service's exclusive times; a class gets its own fit when its times differ clearly.

    "Clearly" means both a two-sample KS test against the service's other classes with
    p < ``split_p`` and a mean that differs by more than ``split_effect``: with a million spans a
    KS test finds differences nobody would model.
    """
    cls = request_class_of_spans(spans, classes)
    out = {}
    for service in services:
        mine = (spans["service"].astype(str) == service).to_numpy()
        x = spans.loc[mine, "exclusive_s"].to_numpy(dtype=float)
        c = cls[mine].to_numpy()
        ok = np.isfinite(x)
        x, c = x[ok], c[ok]
        notes = []
        skewed = int((x < 0).sum())
        if skewed:  # clocks of caller and callee disagree: a callee seems to outlast its caller
            notes.append(f"{skewed} span(s) with negative exclusive time (clock skew) counted as 0 s")
            x = np.maximum(x, 0.0)
        pooled = fit_distribution(x, rng=rng)
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
        out[service] = ServiceFit(service, pooled, by_class, notes=tuple(notes))
    return out


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


def fit_from_latency(service: str, requests: pd.DataFrame, *, rng: np.random.Generator,
                     utilisation: pd.Series | None = None, servers: int = 1) -> ServiceFit:
    """Service time of a service seen only through its request latencies (no downstream calls)."""
    lat, window_s, rate = quiet_latencies(requests)
    try:
        fit = fit_distribution(lat, rng=rng)
    except TooFewSamples:
        fit = fit_distribution(requests["latency_s"].to_numpy(dtype=float), rng=rng)
    notes = [f"latency of the requests in the quietest 20% of {window_s:g} s windows (<= {rate:.3g} req/s), "
             f"where queueing is assumed negligible"]
    if utilisation is not None and len(utilisation):
        # utilisation law per window: S = U c / X
        t = requests.set_index("timestamp")["latency_s"]
        per = t.resample(pd.Timedelta(seconds=window_s)).count() / window_s
        u = utilisation.reindex(per.index, method="nearest", tolerance=pd.Timedelta(seconds=window_s))
        law = (u * servers / per).replace([np.inf, -np.inf], np.nan).dropna()
        if len(law):
            notes.append(f"utilisation law: mean service time {float(law.median()):.4g} s over {len(law)} windows "
                         f"(quiet-latency fit: {fit.dist.mean():.4g} s)")
    return ServiceFit(service, fit, source="quiet-period latency", notes=tuple(notes))
