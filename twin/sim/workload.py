"""Workloads: the arrival table the twin consumes, and the sources that make one.

An arrival table has one row per request: ``time_s`` (sorted), ``class``, ``size_bytes``, ``key``
(-1: none) and ``session`` (-1: none).  The twin reads nothing else about the load, so a Poisson
stream, a synthesized forecast and a replayed production trace all plug in the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from ..spec import Problem, SpecError, SystemModel

COLUMNS = ("time_s", "class", "size_bytes", "key", "session")
MAX_ARRIVALS = 1e8  # per replication; about 3.4 GB of arrival table
MIN_ARRIVALS = 1.0  # expected per replication: fewer, and a run measures nothing


def frozen(a: np.ndarray) -> np.ndarray:
    """A read-only array that owns its memory (a copy where the input is a view or writable)."""
    a = np.array(a, copy=True)
    a.flags.writeable = False
    return a


@dataclass(frozen=True, eq=False)
class Workload:
    """An immutable arrival table covering ``[0, duration_s)``; class codes index ``class_names``."""

    time_s: np.ndarray
    cls: np.ndarray
    size_bytes: np.ndarray
    key: np.ndarray
    session: np.ndarray
    class_names: tuple[str, ...]
    duration_s: float

    def __post_init__(self):
        for name in ("time_s", "cls", "size_bytes", "key", "session"):
            object.__setattr__(self, name, frozen(getattr(self, name)))

    def __len__(self) -> int:
        return len(self.time_s)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame({
            "time_s": self.time_s,
            "class": pd.Categorical.from_codes(self.cls, categories=list(self.class_names)),
            "size_bytes": self.size_bytes,
            "key": self.key,
            "session": self.session,
        })

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, model: SystemModel, *, duration_s: float | None = None,
                   source: str = "workload") -> "Workload":
        """Check a table against the model (columns, classes, order, signs) and freeze it."""
        def bad(column, msg):
            raise SpecError([Problem(column, msg, source)])

        missing = [c for c in ("time_s", "class") if c not in frame.columns]
        if missing:
            bad("", f"expected columns {', '.join(COLUMNS)} (time_s and class required), missing {', '.join(missing)}")
        unknown = [c for c in frame.columns if c not in COLUMNS]
        if unknown:
            bad("", f"unknown columns {', '.join(map(str, unknown))}; expected {', '.join(COLUMNS)}")
        t = frame["time_s"].to_numpy(dtype=float)
        if len(t) and (not np.all(np.isfinite(t)) or t.min() < 0):
            bad("time_s", "expected finite times >= 0")
        if np.any(np.diff(t) < 0):
            row = int(np.argmax(np.diff(t) < 0)) + 1
            bad("time_s", f"expected times sorted ascending; row {row} goes back in time")
        names = list(model.classes)
        labels = frame["class"].astype(str)
        strangers = sorted(set(labels) - set(names))
        if strangers:
            bad("class", f"unknown request classes {', '.join(strangers)} (the model has {', '.join(names)})")
        codes = pd.Categorical(labels, categories=names).codes.astype(np.int16)
        n = len(t)

        def whole(column, default, low):
            if column not in frame:
                return np.full(n, default, np.int64)
            x = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
            wrong = ~np.isfinite(x) | (x != np.round(x)) | (x < low)
            if wrong.any():
                row = int(np.argmax(wrong))
                bad(column, f"expected whole numbers >= {low}, row {row + 1} holds {frame[column].tolist()[row]!r}")
            return x.astype(np.int64)

        size = whole("size_bytes", 0, 0)
        key = whole("key", -1, -1)
        session = whole("session", -1, -1)
        span = float(t[-1]) if n else 0.0
        if duration_s is not None and duration_s < span:
            bad("time_s", f"arrivals run to {span:g} s, past the stated duration {duration_s:g} s")
        return cls(t, codes, size, key, session, tuple(names), float(duration_s if duration_s is not None else span))


def read_workload(path, model: SystemModel, *, duration_s: float | None = None) -> Workload:
    """An arrival table from a CSV or Parquet file (columns as in ``COLUMNS``), checked against ``model``."""
    from pathlib import Path

    from ..spec import TwinError

    path = Path(path)
    if not path.is_file():
        raise TwinError(f"{path}: no such file")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path)
    except Exception as e:  # pandas raises many kinds; the user needs the file and the reason
        raise TwinError(f"{path}: cannot read an arrival table ({type(e).__name__}: {str(e).splitlines()[0]})") \
            from None
    if frame.empty:
        raise TwinError(f"{path}: the arrival table has no rows")
    for column in ("time_s", "size_bytes", "key", "session"):
        if column in frame and not pd.api.types.is_numeric_dtype(frame[column]):
            bad = pd.to_numeric(frame[column], errors="coerce").isna() & frame[column].notna()
            row = int(bad.to_numpy().argmax())
            raise SpecError([Problem(column, f"expected numbers; row {row + 2} holds {frame[column].iloc[row]!r}",
                                     str(path))])
    for column in ("time_s", "class"):
        if column in frame and frame[column].isna().any():
            row = int(frame[column].isna().to_numpy().argmax())
            raise SpecError([Problem(column, f"missing value on row {row + 2}", str(path))])
    return Workload.from_frame(frame, model, duration_s=duration_s, source=str(path))


class WorkloadSource:
    """Makes a fresh arrival table per replication; the extension point for arrival processes.

    ``generate`` is called once per replication with that replication's own generator; it must
    draw every random number from it (same generator state, same table).
    """

    duration_s: float

    def generate(self, model: SystemModel, rng: np.random.Generator) -> Workload:
        raise NotImplementedError


@lru_cache(maxsize=32)
def _zipf_cdf(count: int, exponent: float) -> np.ndarray:
    weights = np.arange(1, count + 1, dtype=float) ** -exponent
    cdf = np.cumsum(weights)
    cdf /= cdf[-1]
    cdf.flags.writeable = False
    return cdf


def zipf_keys(count: int, exponent: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` keys in ``[0, count)``; key k has probability proportional to (k+1)**-exponent."""
    return np.minimum(np.searchsorted(_zipf_cdf(count, exponent), rng.random(n), side="right"), count - 1)


def key_space_offsets(model: SystemModel) -> dict[str, int]:
    """Where each key space starts, so classes in different spaces never share a key."""
    offsets, nxt = {}, 0
    for cname, c in model.classes.items():
        if c.keys is not None:
            space = c.keys.space or cname
            if space not in offsets:
                offsets[space] = nxt
                nxt += c.keys.count
    return offsets


def fill_request_data(model: SystemModel, codes: np.ndarray, rng: np.random.Generator):
    """Payload sizes and keys for requests of the given class codes, per the model's classes."""
    n = len(codes)
    size = np.zeros(n, dtype=np.int64)
    key = np.full(n, -1, dtype=np.int64)
    offsets = key_space_offsets(model)
    streams = rng.spawn(2 * len(model.classes))
    for i, (cname, c) in enumerate(model.classes.items()):
        rows = np.flatnonzero(codes == i)
        if not len(rows):
            continue
        size[rows] = np.rint(c.payload_bytes.sample(streams[2 * i], len(rows))).astype(np.int64)
        if c.keys is not None:
            space = c.keys.space or cname
            key[rows] = offsets[space] + zipf_keys(c.keys.count, c.keys.zipf_exponent, len(rows), streams[2 * i + 1])
    return size, key


@dataclass(frozen=True)
class PoissonArrivals(WorkloadSource):
    """A homogeneous Poisson stream at ``rate_per_s`` over ``duration_s``, classes by their shares."""

    rate_per_s: float
    duration_s: float

    def __post_init__(self):
        if not (np.isfinite(self.rate_per_s) and self.rate_per_s > 0):
            raise SpecError([Problem("rate_per_s", f"expected a rate > 0, got {self.rate_per_s!r}")])
        if not (np.isfinite(self.duration_s) and self.duration_s > 0):
            raise SpecError([Problem("duration_s", f"expected a duration > 0, got {self.duration_s!r}")])
        expected = self.rate_per_s * self.duration_s
        if expected > MAX_ARRIVALS:
            raise SpecError([Problem("rate_per_s", f"expected at most {MAX_ARRIVALS:.0e} arrivals per replication, "
                                                   f"got rate x duration = {expected:.3g}")])
        if expected < MIN_ARRIVALS:
            raise SpecError([Problem("duration_s", f"expected a window in which at least {MIN_ARRIVALS:g} arrival is "
                                                   f"expected, got rate x duration = {expected:.3g} (--rate, "
                                                   f"--duration)")])

    def generate(self, model: SystemModel, rng: np.random.Generator) -> Workload:
        times_rng, class_rng, data_rng = rng.spawn(3)
        n = times_rng.poisson(self.rate_per_s * self.duration_s)
        # Given their number, Poisson arrival times are ordered uniforms on the window.
        t = np.sort(times_rng.uniform(0.0, self.duration_s, n))
        shares = np.array([c.share for c in model.classes.values()])
        codes = class_rng.choice(len(shares), size=n, p=shares / shares.sum()).astype(np.int16)
        size, key = fill_request_data(model, codes, data_rng)
        return Workload(t, codes, size, key, np.full(n, -1, np.int64), tuple(model.classes), self.duration_s)
