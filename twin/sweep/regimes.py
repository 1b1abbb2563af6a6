"""Load regimes: the steps of a forecast grouped by the load they carry, each swept once.

A step's load vector (``load_vector``) holds what changes the best settings: the request rate,
data volume and user concurrency (on a log scale: a doubling is one unit), the class mix (a fifth
of the requests changing class is one unit) and the burstiness (a doubling of the index of
dispersion is one unit).  The same units make the policy engine's distance, so "close" means the
same thing when regimes are cut and when a profile is matched to them.

``regimes`` clusters the steps by k-means (k-means++ starts, seeded) for k up to ``max``, keeps
the k with the best silhouette (at least 0.25, with centres at least ``MIN_SEPARATION`` apart:
else the load is one regime), and folds a cluster holding fewer than ``min_share`` of the steps
into its nearest neighbour.  Each regime's representative load is the forecast at ``quantile``
(its quantile column, e.g. ``requests_per_s_q0.9``) averaged over the regime's steps, with the
regime's mean class mix and burstiness: a busy hour of that kind of load, for risk-averse tuning.

>>> import numpy as np, pandas as pd
>>> idx = pd.date_range("2026-01-01", periods=48, freq="h", tz="UTC")
>>> rate = np.where((idx.hour >= 8) & (idx.hour < 20), 100.0, 10.0)
>>> p = pd.DataFrame({"requests_per_s": rate, "requests_per_s_q0.9": rate * 1.2}, index=idx)
>>> found = regimes(p, max_regimes=3, quantile=0.9, seed=0)
>>> [(r.name, r.steps, round(r.representative["requests_per_s"])) for r in found.regimes]
[('regime-1', 24, 12), ('regime-2', 24, 120)]
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..load.profile_workload import rate_column
from ..spec import TwinError

TARGETS = ("requests_per_s", "data_volume_bytes_per_s", "user_concurrency")
MIX_UNIT = 0.2  # a fifth of the mix moved is one unit of distance
MIN_SEPARATION = 0.25  # regimes' centres at least this far apart (a rate 19% higher, alone)
SILHOUETTE_SAMPLE = 2000  # steps the silhouette is computed on (it is quadratic in them)
LOG2 = math.log(2.0)


def load_vector(values: dict) -> dict[str, float]:
    """The named coordinates of one load (a step, a regime, a profile asked about)."""
    out = {}
    for t in TARGETS:
        v = values.get(t)
        if v is not None and math.isfinite(v):
            out[t] = math.log1p(max(v, 0.0)) / LOG2
    for k, v in values.items():
        if k.startswith("mix_") and v is not None and math.isfinite(v):
            out[k] = float(v) / MIX_UNIT / 2  # L1 over the mix is twice the share moved
    b = values.get("burstiness")
    if b is not None and math.isfinite(b) and b > 0:
        out["burstiness"] = math.log(b) / LOG2
    return out


def distance(a: dict[str, float], b: dict[str, float]) -> float:
    """Distance between two load vectors over their shared coordinates (mix: L1, others: L2)."""
    keys = [k for k in a if k in b]
    if not keys:
        return math.inf
    mix = sum(abs(a[k] - b[k]) for k in keys if k.startswith("mix_"))
    rest = sum((a[k] - b[k]) ** 2 for k in keys if not k.startswith("mix_"))
    return math.sqrt(rest + mix**2)


@dataclass
class Regime:
    name: str
    steps: int
    share: float
    representative: dict[str, float]  # the load at the quantile: requests_per_s, mix_*, burstiness...
    vector: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"name": self.name, "steps": self.steps, "share": self.share, "representative": self.representative,
                "vector": self.vector}


@dataclass
class Regimes:
    regimes: list[Regime]
    labels: pd.Series  # regime name per step of the profile
    silhouette: float | None
    quantile: float

    def to_dict(self) -> dict:
        return {"quantile": self.quantile, "silhouette": self.silhouette,
                "regimes": [r.to_dict() for r in self.regimes],
                "labels": {str(k): v for k, v in self.labels.items()}}


def _step_values(profile: pd.DataFrame, quantile: float | None) -> list[dict]:
    cols = {}
    for t in TARGETS:
        try:
            cols[t] = rate_column(profile, t, quantile)
        except Exception:  # a target the profile does not hold
            if t == "requests_per_s":
                raise
    mix = [c for c in profile.columns if c.startswith("mix_")]
    rows = []
    for i in range(len(profile)):
        row = {t: float(profile[c].iloc[i]) for t, c in cols.items()}
        row.update({c: float(profile[c].iloc[i]) for c in mix})
        if "burstiness" in profile:
            row["burstiness"] = float(profile["burstiness"].iloc[i])
        rows.append(row)
    return rows


def _matrix(vectors: list[dict]) -> np.ndarray:
    """Load vectors as rows (k-means works in L2 on them; for the mix that is close to the L1 of
    ``distance`` when a share moves between two classes)."""
    keys = sorted(set().union(*vectors))
    return np.array([[v.get(k, 0.0) for k in keys] for v in vectors], dtype=float)


def _kmeans(x: np.ndarray, k: int, rng: np.random.Generator, iterations: int = 100) -> np.ndarray:
    n = len(x)
    centres = [x[rng.integers(n)]]
    for _ in range(1, k):  # k-means++
        d2 = np.min([((x - c) ** 2).sum(axis=1) for c in centres], axis=0)
        if d2.sum() <= 0:
            break
        centres.append(x[rng.choice(n, p=d2 / d2.sum())])
    c = np.array(centres)
    labels = np.zeros(n, np.int64)
    for _ in range(iterations):
        d = ((x[:, None, :] - c[None, :, :]) ** 2).sum(axis=2)
        new = d.argmin(axis=1)
        if np.array_equal(new, labels) and _ > 0:
            break
        labels = new
        c = np.array([x[labels == j].mean(axis=0) if (labels == j).any() else c[j] for j in range(len(c))])
    return labels


def _silhouette(x: np.ndarray, labels: np.ndarray) -> float:
    ks = np.unique(labels)
    if len(ks) < 2:
        return -1.0
    d = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(axis=2))
    s = np.zeros(len(x))
    for i in range(len(x)):
        own = labels == labels[i]
        if own.sum() <= 1:
            continue
        a = d[i, own].sum() / (own.sum() - 1)
        b = min(d[i, labels == k].mean() for k in ks if k != labels[i])
        s[i] = (b - a) / max(a, b) if max(a, b) > 0 else 0.0
    return float(s.mean())


def regimes(profile: pd.DataFrame, *, max_regimes: int = 3, quantile: float = 0.9, min_share: float = 0.05,
            seed: int = 0) -> Regimes:
    """Cut a load profile (a forecast) into at most ``max_regimes`` regimes; see the module."""
    if len(profile) == 0:
        raise TwinError("load profile: no steps to cut into regimes")
    median = _step_values(profile, None)
    try:
        at_q = _step_values(profile, quantile)
    except Exception:
        raise TwinError(f"load profile: no quantile {quantile:g} columns (requests_per_s_q{quantile:g}); forecast "
                        f"with that quantile or choose another in regimes.quantile") from None
    x = _matrix([load_vector(v) for v in median])
    rng = np.random.default_rng(seed)
    n = len(x)
    best_labels, best_score = np.zeros(n, np.int64), None
    if max_regimes > 1 and n >= 4 and np.ptp(x, axis=0).max() > 1e-9:
        sample = rng.choice(n, SILHOUETTE_SAMPLE, replace=False) if n > SILHOUETTE_SAMPLE else np.arange(n)
        for k in range(2, min(max_regimes, n - 1) + 1):
            labels = _kmeans(x, k, np.random.default_rng(rng.integers(2**63)))
            centres = [x[labels == j].mean(axis=0) for j in np.unique(labels)]
            apart = min(np.sqrt(((a - b) ** 2).sum()) for i, a in enumerate(centres) for b in centres[i + 1:])
            if len(centres) < 2 or apart < MIN_SEPARATION:  # regimes that differ by noise, not by load
                continue
            score = _silhouette(x[sample], labels[sample])
            if score >= 0.25 and (best_score is None or score > best_score + 1e-9):
                best_labels, best_score = labels, score
    labels = _fold_small(x, best_labels, min_share)
    if len(np.unique(labels)) < 2:
        best_score = None
    # name regimes by load, quietest first
    rate = np.array([m["requests_per_s"] for m in median])
    order = sorted(np.unique(labels), key=lambda j: rate[labels == j].mean())
    names = {j: f"regime-{i + 1}" for i, j in enumerate(order)}
    found = []
    for j in order:
        idx = np.flatnonzero(labels == j)
        rep = {}
        for key in at_q[0]:
            vals = [at_q[i][key] for i in idx if math.isfinite(at_q[i].get(key, math.nan))]
            if vals:
                rep[key] = float(np.mean(vals))
        mix_total = sum(v for k, v in rep.items() if k.startswith("mix_"))
        if mix_total > 0:
            rep.update({k: v / mix_total for k, v in rep.items() if k.startswith("mix_")})
        found.append(Regime(names[j], len(idx), len(idx) / n, rep, load_vector(rep)))
    series = pd.Series([names[j] for j in labels], index=profile.index, name="regime")
    return Regimes(found, series, best_score, quantile)


def _fold_small(x: np.ndarray, labels: np.ndarray, min_share: float) -> np.ndarray:
    labels = labels.copy()
    while True:
        ks, counts = np.unique(labels, return_counts=True)
        small = [k for k, c in zip(ks, counts) if c < min_share * len(x)]
        if not small or len(ks) == 1:
            return labels
        k = small[0]
        centre = x[labels == k].mean(axis=0)
        others = [j for j in ks if j != k]
        nearest = min(others, key=lambda j: ((x[labels == j].mean(axis=0) - centre) ** 2).sum())
        labels[labels == k] = nearest


__all__ = ["Regime", "Regimes", "distance", "load_vector", "regimes"]
