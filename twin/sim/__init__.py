"""The shadow twin: a SimPy model of the primary, run over an arrival table."""

from .engine import run_replication
from .nodes import STATUS_NAMES
from .replicate import Summary, default_jobs, replication_seeds, run_replications, summarize
from .results import CacheStats, ReplicationResult, RequestRecords, ServiceStats, SpanRecords, TimeSeries
from .stats import Estimate, estimate, welch_difference
from .workload import PoissonArrivals, Workload, WorkloadSource, read_workload, zipf_keys

__all__ = [
    "run_replication", "run_replications", "summarize", "Summary", "default_jobs", "replication_seeds",
    "STATUS_NAMES", "CacheStats", "ReplicationResult", "RequestRecords", "ServiceStats", "SpanRecords", "TimeSeries",
    "Estimate", "estimate", "welch_difference", "PoissonArrivals", "Workload", "WorkloadSource", "read_workload",
    "zipf_keys",
]
