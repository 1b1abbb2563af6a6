"""What one replication returns: immutable records and counters, and the metrics derived from them."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .nodes import OK, REJECTED, STATUS_NAMES, TIMEOUT
from .workload import frozen as _frozen


class FrozenMap(Mapping):
    """A read-only mapping that, unlike ``MappingProxyType``, can cross process boundaries."""

    __slots__ = ("_data",)

    def __init__(self, data=()):
        self._data = dict(data)

    def __getitem__(self, key):
        return self._data[key]

    def __iter__(self):
        return iter(self._data)

    def __len__(self):
        return len(self._data)

    def __repr__(self):
        return f"FrozenMap({self._data!r})"


@dataclass(frozen=True, eq=False)
class RequestRecords:
    """One row per request of the workload (all of them, warm-up included)."""

    cls: np.ndarray
    arrival_s: np.ndarray
    latency_s: np.ndarray  # NaN while incomplete
    status: np.ndarray  # codes into STATUS_NAMES
    attempts: np.ndarray
    visited: np.ndarray  # bit i set: the request visited node i of node_names
    class_names: tuple[str, ...]
    node_names: tuple[str, ...]
    warmup_s: float
    end_s: float

    def __post_init__(self):
        for name in ("cls", "arrival_s", "latency_s", "status", "attempts", "visited"):
            object.__setattr__(self, name, _frozen(getattr(self, name)))

    def __len__(self):
        return len(self.arrival_s)

    def in_window(self) -> np.ndarray:
        return self.arrival_s >= self.warmup_s

    def visited_nodes(self, mask: int) -> tuple[str, ...]:
        return tuple(n for i, n in enumerate(self.node_names) if mask >> i & 1)

    def to_frame(self) -> pd.DataFrame:
        """A table with class and status names and the visited nodes as 'a;b;c'."""
        masks, inverse = np.unique(self.visited, return_inverse=True)
        paths = np.array([";".join(self.visited_nodes(int(m))) for m in masks], dtype=object)
        return pd.DataFrame({
            "class": pd.Categorical.from_codes(self.cls, categories=list(self.class_names)),
            "arrival_s": self.arrival_s,
            "latency_s": self.latency_s,
            "status": pd.Categorical.from_codes(self.status, categories=list(STATUS_NAMES)),
            "attempts": self.attempts,
            "services_visited": paths[inverse] if len(self) else np.array([], dtype=object),
            "warmup": ~self.in_window(),
        })


SERVER_SPAN, CLIENT_SPAN = 0, 1


@dataclass(frozen=True, eq=False)
class SpanRecords:
    """The twin's own trace (when the run recorded spans).

    A *server* span per visit of a node: ``arrive_s`` at the node, ``start_s`` when a worker took
    it, ``end_s`` when it finished.  A *client* span per call attempt that has a timeout, retries,
    a pool or a network delay: from the caller's start of the call (before its pool wait and
    delay) to the response or the caller's timeout; ``node`` is the callee, and the callee's
    server span is its child.  A plain call has no client span: its interval is the callee's
    ``arrive_s`` to ``end_s``.
    """

    COLUMNS = {"span": "q", "parent": "q", "request": "q", "node": "h", "instance": "h",
               "arrive_s": "d", "start_s": "d", "end_s": "d", "status": "b", "kind": "b"}
    DTYPES = {"span": np.int64, "parent": np.int64, "request": np.int64, "node": np.int16,
              "instance": np.int16, "arrive_s": np.float64, "start_s": np.float64, "end_s": np.float64,
              "status": np.int8, "kind": np.int8}

    columns: Mapping[str, np.ndarray]
    node_names: tuple[str, ...]

    def __post_init__(self):
        object.__setattr__(self, "columns", FrozenMap({k: _frozen(v) for k, v in self.columns.items()}))

    def to_frame(self) -> pd.DataFrame:
        df = pd.DataFrame({k: np.asarray(v) for k, v in self.columns.items()})
        df["node"] = pd.Categorical.from_codes(df["node"], categories=list(self.node_names))
        df["status"] = pd.Categorical.from_codes(df["status"], categories=list(STATUS_NAMES))
        df["kind"] = pd.Categorical.from_codes(df["kind"], categories=["server", "client"])
        return df.sort_values(["request", "span"], kind="stable", ignore_index=True)


@dataclass(frozen=True)
class ServiceStats:
    """Counters of one service over the requests that arrived after the warm-up."""

    name: str
    instances: int
    workers: int
    arrivals: int  # visits that reached the load balancer
    admitted: int  # got a worker
    served: int  # finished service (whatever their calls returned)
    completed: int
    rejected: int  # queue full
    errors: int
    unavailable: int  # no instance up
    timeouts: int  # callers that stopped waiting for it
    abandoned: int  # visits cut short because the caller's own instance failed
    waited: int
    wait_s: float
    sojourn_s: float
    busy_s: float  # worker-seconds held inside the window
    capacity_s: float  # worker-seconds available inside the window
    downtime_s: float  # instance-seconds down inside the window
    mean_queue_length: float

    @property
    def utilisation(self) -> float:
        return self.busy_s / self.capacity_s if self.capacity_s else math.nan

    @property
    def wait_mean_s(self) -> float:
        return self.wait_s / self.admitted if self.admitted else math.nan

    @property
    def wait_probability(self) -> float:
        return self.waited / self.admitted if self.admitted else math.nan

    @property
    def blocking_probability(self) -> float:
        return self.rejected / self.arrivals if self.arrivals else math.nan

    @property
    def sojourn_mean_s(self) -> float:
        return self.sojourn_s / self.served if self.served else math.nan


@dataclass(frozen=True)
class CacheStats:
    name: str
    lookups: int
    hits: int
    timeouts: int
    entries: int
    used_bytes: int
    capacity_bytes: int
    evictions: int

    @property
    def hit_ratio(self) -> float:
        return self.hits / self.lookups if self.lookups else math.nan


@dataclass(frozen=True, eq=False)
class TimeSeries:
    """Per-service series at a fixed interval starting at ``time_s``: '<service>.utilisation' (busy
    worker-seconds in the interval over those available, exact), '.queue_length' and
    '.instances_up' (sampled at the interval's start)."""

    time_s: np.ndarray
    values: Mapping[str, np.ndarray]

    def __post_init__(self):
        object.__setattr__(self, "time_s", _frozen(self.time_s))
        object.__setattr__(self, "values", FrozenMap({k: _frozen(v) for k, v in self.values.items()}))

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame({"time_s": self.time_s, **{k: np.asarray(v) for k, v in self.values.items()}})


def _latency_metrics(lat: np.ndarray, prefix: str, out: dict) -> None:
    if len(lat):
        p50, p95, p99 = np.percentile(lat, [50, 95, 99])
        out.update({f"{prefix}latency_mean_s": float(lat.mean()), f"{prefix}latency_p50_s": float(p50),
                    f"{prefix}latency_p95_s": float(p95), f"{prefix}latency_p99_s": float(p99)})
    else:
        for k in ("mean", "p50", "p95", "p99"):
            out[f"{prefix}latency_{k}_s"] = math.nan


class Metrics(dict):
    """A replication's metrics (name -> value) with the samples behind ``latency_*``: ``latencies``,
    the latencies of the successful requests that arrived in the window, so that replications run
    elsewhere (a sweep's finalists, in worker processes) can still be pooled (``twin.sim.stats``).
    It pickles with them; as JSON or a table row it is the plain mapping."""

    latencies: np.ndarray = np.zeros(0)


@dataclass(frozen=True, eq=False)
class ReplicationResult:
    model_name: str
    seed_entropy: int
    spawn_key: tuple
    warmup_s: float
    end_s: float
    requests: RequestRecords
    services: Mapping[str, ServiceStats]
    caches: Mapping[str, CacheStats]
    timeseries: TimeSeries
    cost: float
    spans: SpanRecords | None = field(default=None)
    #: what a person should look at before trusting the numbers (a service that stalled: work held, none done)
    warnings: tuple[str, ...] = ()

    @property
    def window_s(self) -> float:
        return self.end_s - self.warmup_s

    def window_latencies(self, class_name: str | None = None) -> np.ndarray:
        """Latencies of the successful requests that arrived in the window (of one class, if named):
        the samples behind ``latency_*`` (``twin.sim.summarize`` pools them over replications)."""
        r = self.requests
        ok = r.in_window() & (r.status == OK)
        if class_name is not None:
            ok &= r.cls == r.class_names.index(class_name)
        return r.latency_s[ok]

    def metrics(self) -> Metrics:
        """Flat performance metrics of this replication (DESIGN's performance-metrics contract).

        Keys: ``latency_{mean,p50,p95,p99}_s`` (successful requests), ``throughput_per_s``,
        ``error_rate``, ``rejection_rate``, ``timeout_rate``, ``cache_hit_ratio``, ``cost``, and
        ``service.<name>.<metric>``, ``cache.<name>.hit_ratio``, ``class.<name>.<metric>``.
        """
        r = self.requests
        win = r.in_window()
        status = r.status[win]
        ok = win & (r.status == OK)
        n = int(win.sum())
        out = Metrics()
        out.latencies = r.latency_s[ok]
        _latency_metrics(out.latencies, "", out)
        out["throughput_per_s"] = float(ok.sum()) / self.window_s
        out["error_rate"] = float((status != OK).mean()) if n else math.nan
        out["rejection_rate"] = float((status == REJECTED).mean()) if n else math.nan
        out["timeout_rate"] = float((status == TIMEOUT).mean()) if n else math.nan
        lookups = sum(c.lookups for c in self.caches.values())
        out["cache_hit_ratio"] = sum(c.hits for c in self.caches.values()) / lookups if lookups else math.nan
        out["cost"] = self.cost
        for name, s in self.services.items():
            p = f"service.{name}."
            out[p + "utilisation"] = s.utilisation
            out[p + "queue_length_mean"] = s.mean_queue_length
            out[p + "wait_mean_s"] = s.wait_mean_s
            out[p + "wait_probability"] = s.wait_probability
            out[p + "sojourn_mean_s"] = s.sojourn_mean_s
            out[p + "blocking_probability"] = s.blocking_probability
            out[p + "throughput_per_s"] = s.completed / self.window_s
            out[p + "availability"] = 1.0 - s.downtime_s / (s.instances * self.window_s)
        for name, c in self.caches.items():
            out[f"cache.{name}.hit_ratio"] = c.hit_ratio
        if len(r.class_names) > 1:
            for code, name in enumerate(r.class_names):
                mine = win & (r.cls == code)
                p = f"class.{name}."
                _latency_metrics(r.latency_s[mine & (r.status == OK)], p, out)
                k = int(mine.sum())
                out[p + "error_rate"] = float((r.status[mine] != OK).mean()) if k else math.nan
                out[p + "throughput_per_s"] = float((mine & (r.status == OK)).sum()) / self.window_s
        return out
