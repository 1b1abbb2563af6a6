"""Independent replications and their summary: the numbers a user reads, with 95% intervals."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..spec import SystemModel, apply_params
from .engine import run_replication
from .results import ReplicationResult
from .stats import TAIL_SAMPLES, Estimate, estimate, pooled_mean, pooled_quantile
from .streams import substream
from .workload import Workload, WorkloadSource


def replication_seeds(seed: int, replications: int) -> list[np.random.SeedSequence]:
    """Independent seed sequences, one per replication; the same for the same (seed, count)."""
    return np.random.SeedSequence(seed).spawn(replications)


def _one(model, workload, seq, kwargs) -> ReplicationResult:
    if isinstance(workload, WorkloadSource):
        workload = workload.generate(model, substream(seq, "workload"))
    return run_replication(model, workload, seed=seq, **kwargs)


def run_replications(model: SystemModel, workload: Workload | WorkloadSource, *, replications: int, seed: int = 0,
                     params=None, jobs: int = 1, progress: Callable[[int], None] | None = None,
                     **kwargs) -> list[ReplicationResult]:
    """Run ``replications`` independent replications, in ``jobs`` processes.

    A ``WorkloadSource`` draws a fresh arrival table per replication from that replication's own
    stream; a fixed ``Workload`` (a replayed trace) is shared by all of them.  ``progress`` is
    called with the number of replications done so far.  Results come back in replication order
    and do not depend on ``jobs``.
    """
    if params:
        model = apply_params(model, params)
    seeds = replication_seeds(seed, replications)
    jobs = max(1, min(jobs, replications))
    results: list[ReplicationResult] = []
    if jobs == 1:
        for seq in seeds:
            results.append(_one(model, workload, seq, kwargs))
            if progress:
                progress(len(results))
        return results
    with process_pool(jobs) as pool:
        futures = [pool.submit(_one, model, workload, seq, kwargs) for seq in seeds]
        for fut in futures:
            results.append(fut.result())
            if progress:
                progress(len(results))
    return results


def process_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of ``workers`` processes that end when this process ends, killed or not, so that
    none is left behind blocked on a pipe."""
    return ProcessPoolExecutor(max_workers=workers, mp_context=_context(), initializer=_end_with_parent,
                               initargs=(os.getpid(),))


def _end_with_parent(parent: int) -> None:
    """In a pool worker: on Linux the kernel sends SIGKILL when the worker's parent dies
    (prctl PR_SET_PDEATHSIG); everywhere, and behind a fork server (then the worker's parent is
    the server), a thread ends the worker once ``parent`` is gone or the worker was handed to
    another parent."""
    import signal
    import sys
    import threading

    first = os.getppid()
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # 1: PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass

    def gone() -> bool:
        if os.getppid() != first:
            return True
        try:
            os.kill(parent, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass
        return False

    def watch():
        while not gone():
            threading.Event().wait(1.0)
        os._exit(1)

    if gone():  # the parent died before the signal was asked for
        os._exit(1)
    threading.Thread(target=watch, daemon=True, name="twin-end-with-parent").start()


def _context():
    """How worker processes start: forked (fast) unless JAX is loaded here (the forecaster):
    JAX runs threads, and a fork of a threaded process can deadlock, so then from a fork server."""
    import multiprocessing
    import sys

    return multiprocessing.get_context("forkserver" if "jax" in sys.modules else "fork")


def default_jobs() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


@dataclass(frozen=True)
class Summary:
    """Metrics across replications: each an ``Estimate`` (mean and 95% CI)."""

    model_name: str
    replications: int
    warmup_s: float
    end_s: float
    metrics: dict[str, Estimate]
    per_replication: pd.DataFrame
    #: the replications' warnings, one per kind, with how many replications had it
    warnings: tuple[str, ...] = ()
    #: what the intervals cannot promise (a tail quantile on too few samples beyond it); unlike a
    #: warning, the numbers stand
    cautions: tuple[str, ...] = ()

    def __getitem__(self, key: str) -> Estimate:
        return self.metrics[key]

    def to_dict(self) -> dict:
        top, services, caches, classes = {}, {}, {}, {}
        for key, est in self.metrics.items():
            kind, _, rest = key.partition(".")
            if kind in ("service", "cache", "class") and rest:
                name, _, metric = rest.partition(".")
                {"service": services, "cache": caches, "class": classes}[kind].setdefault(name, {})[metric] = \
                    est.to_dict()
            else:
                top[key] = est.to_dict()
        return {"model": self.model_name, "replications": self.replications, "warmup_s": self.warmup_s,
                "duration_s": self.end_s, "confidence_level": 0.95, "metrics": top, "services": services,
                "caches": caches, "classes": classes, "warnings": list(self.warnings),
                "cautions": list(self.cautions)}


LATENCY_QUANTILES = {"p50": 0.50, "p95": 0.95, "p99": 0.99}


def summarize(results: Sequence[ReplicationResult], level: float = 0.95) -> Summary:
    """Each metric's estimate over ``results``.  Latencies (``latency_{mean,p50,p95,p99}_s``, overall
    and per class) pool every replication's in-window samples, with sectioning intervals
    (``twin.sim.stats``); the other metrics are means over replications with t-intervals.  The
    per-replication values of every metric are in ``per_replication``."""
    rows = [r.metrics() for r in results]
    table = pd.DataFrame(rows)
    metrics = {k: estimate(table[k].tolist(), level) for k in table.columns}
    first = results[0]
    classes = first.requests.class_names
    thin = []
    for prefix, cls in [("", None)] + ([(f"class.{c}.", c) for c in classes] if len(classes) > 1 else []):
        samples = [r.window_latencies(cls) for r in results]
        metrics[f"{prefix}latency_mean_s"] = pooled_mean(samples, level)
        total = sum(len(x) for x in samples)
        for name, q in LATENCY_QUANTILES.items():
            metrics[f"{prefix}latency_{name}_s"] = pooled_quantile(samples, q, level)
            if 0 < total * (1 - q) < TAIL_SAMPLES and q >= 0.9:
                thin.append((f"{prefix}latency_{name}_s", total * (1 - q), q, total))
    return Summary(first.model_name, len(results), first.warmup_s, first.end_s, metrics, table,
                   _warnings(results), _tail_cautions(thin, len(results)))


def _tail_cautions(thin: list[tuple[str, float, float, int]], replications: int) -> tuple[str, ...]:
    """One caution for the tail quantiles that rest on fewer than ``TAIL_SAMPLES`` samples beyond
    them, naming the thinnest and the replications that would lift it to ``TAIL_SAMPLES``."""
    if not thin:
        return ()
    name, tail, q, total = min(thin, key=lambda t: t[1])
    need = math.ceil(replications * TAIL_SAMPLES / tail)
    more = f" and {len(thin) - 1} more" if len(thin) > 1 else ""
    return (f"{name}{more}: the interval rests on {tail:.0f} samples beyond the {q:.0%} quantile "
            f"({total} in {replications} replications); a tail quantile's interval holds its 95% coverage "
            f"from about {TAIL_SAMPLES} (benchmarks/RESULTS.md), so it may be too narrow: run about {need} "
            f"replications, or windows {need / replications:.2g} times as long",)


def _warnings(results: Sequence[ReplicationResult]) -> tuple[str, ...]:
    """Each kind of warning once (the first replication's wording), with the replications that had it."""
    seen: dict[str, tuple[str, list[int]]] = {}
    for i, r in enumerate(results):
        for w in r.warnings:
            kind = re.sub(r"t=\S+ s", "t", w)
            seen.setdefault(kind, (w, []))[1].append(i)
    return tuple(f"{w} (replication {reps[0]}" + (f"; {len(reps)} of {len(results)} replications)" if len(reps) > 1
                                                  else ")") for w, reps in seen.values())
