"""``run_replication``: one run of the twin over an arrival table, with its own random streams.

The model is compiled into runtime nodes (``twin.sim.nodes``), the arrivals are fed from the
table in time order, and every request is one SimPy process.  After the last arrival the run
drains (up to ``drain_s``) so that slow requests are measured rather than censored; requests
still unfinished then are recorded as ``incomplete``.  Statistics cover requests that arrive
after ``warmup_s``; utilisation and cost cover the window ``[warmup_s, duration)``.
"""

from __future__ import annotations

import math
from array import array

import numpy as np
import simpy

from ..spec import Problem, SpecError, SystemModel, apply_params
from ..spec.distributions import Deterministic, Exponential
from ..spec.model import MAX_SAMPLES, holding_cycle
from .cache import STORES, key_sources, warm_fill
from .nodes import INCOMPLETE, Backoff, CacheNode, Call, Instance, Request, ServiceNode, Slots
from .results import CLIENT_SPAN, SERVER_SPAN, CacheStats, FrozenMap, ReplicationResult, RequestRecords, ServiceStats, SpanRecords, TimeSeries
from .streams import Slowed, Uniforms, draws, substream
from .workload import Workload

CHUNK = 4096


def _intervals(end: float, width: float) -> int:
    """How many k >= 0 have k * width < end (at least one)."""
    n = max(1, math.ceil(end / width))
    while n > 1 and (n - 1) * width >= end:
        n -= 1
    while n * width < end:
        n += 1
    return n


def _seed_sequence(seed) -> np.random.SeedSequence:
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) and seed >= 0:
        return np.random.SeedSequence(int(seed))
    raise TypeError(f"seed must be a non-negative int or a numpy SeedSequence, got {seed!r}")


class _Engine:
    def __init__(self, model: SystemModel, workload: Workload, seq: np.random.SeedSequence, *,
                 warmup_s: float, drain_s: float, sample_interval_s: float | None, record_spans: bool,
                 warm_caches: bool = False):
        self.model = model
        self.warm_caches = warm_caches
        self.workload = workload
        self.seq = seq
        self.env = simpy.Environment()
        self.warmup = warmup_s
        self.end = workload.duration_s
        self.drain_s = drain_s
        self.sample_interval = sample_interval_s or max(self.end / 200.0, 1e-6)
        # the intervals start at k * sample_interval < end: the sampler and every service's
        # utilisation bins use this one count, whatever the rounding of end / interval
        self.n_samples = _intervals(self.end, self.sample_interval)
        self.spans = {k: array(t) for k, t in SpanRecords.COLUMNS.items()} if record_spans else None
        self._span_id = 0
        self.in_flight = 0
        self.arrivals_done = False
        self.all_done = self.env.event()
        self._build()

    # -- compile the model into runtime nodes ---------------------------------------------
    def _build(self):
        m, env, seq = self.model, self.env, self.seq
        classes = list(m.classes)
        self.nodes = {}
        for code, name in enumerate(m.node_names()):
            if name in m.services:
                s = m.services[name]
                st = [draws(s.service_time_for(c), seq, "service_time", name, c) for c in classes]
                if s.slowdowns:
                    st = [Slowed(d, env, s.slowdowns) for d in st]
                insts = [Instance(env, i, s.workers, {p: Slots(env, pool.size) for p, pool in s.pools.items()})
                         for i in range(s.instances)]
                self.nodes[name] = ServiceNode(self, name, code, s, st, insts, Uniforms(substream(seq, "lb", name)))
            else:
                c = m.caches[name]
                ser = m.serialization.get(c.serialization_method) if c.serialization_method else None
                store = STORES[c.policy](c.capacity_bytes)
                if self.warm_caches:  # filled from its key stream, on a stream of its own (CRN elsewhere)
                    warm_fill(store, key_sources(m, name), substream(seq, "warm", name),
                              size_ratio=ser.size_ratio if ser else 1.0, overhead=c.entry_overhead_bytes)
                self.nodes[name] = CacheNode(self, name, code, c, store, draws(c.hit_time_s, seq, "hit_time", name),
                                             ser)
        for name, s in m.services.items():
            node = self.nodes[name]
            pool_of = {pool.target: p for p, pool in s.pools.items()}
            node.calls = [[self._call(name, i, call, pool_of) for i, call in enumerate(s.calls) if call.applies_to(c)]
                          for c in classes]
        for name, c in m.caches.items():
            self.nodes[name].backend_call = Call(self, [(self.nodes[c.backend], 1.0)], None,
                                                 delays=self._delays(name, [c.backend]))
        self.clients = []
        for cname, c in m.classes.items():
            jitter = Uniforms(substream(seq, "backoff", "client", cname))
            self.clients.append(Call(self, [(self.nodes[c.entry], 1.0)], None, timeout=c.client.timeout_s,
                                     retries=c.client.retries, backoff=Backoff(c.client.backoff, jitter), root=True))
        # Map the workload's class codes onto the model's (a replayed table may order them differently).
        self.class_map = np.array([classes.index(c) for c in self.workload.class_names], dtype=np.int64)

    def _delays(self, caller, targets):
        net = self.model.network
        out = {}
        for t in targets:
            dist = net.links.get(f"{caller}->{t}", net.delay_s)
            if not (dist.dist == "deterministic" and dist.value == 0):
                out[self.nodes[t].code] = draws(dist, self.seq, "network", caller, t)
        return out

    def _call(self, caller, i, call, pool_of):
        tag = f"{caller}.calls.{i}"
        targets = [(self.nodes[t], p) for t, p in call.targets().items()]
        u = Uniforms(substream(self.seq, "route", tag))
        pools = {self.nodes[t].code: pool_of[t] for t in call.targets() if t in pool_of}
        return Call(self, targets, u, count=call.count, parallel=call.fanout == "parallel", timeout=call.timeout_s,
                    retries=call.retries, backoff=Backoff(call.backoff, Uniforms(substream(self.seq, "backoff", tag))),
                    fail=call.on_error == "fail", delays=self._delays(caller, call.targets()), pools=pools)

    # -- spans ---------------------------------------------------------------------------
    def next_span_id(self) -> int:
        self._span_id += 1
        return self._span_id

    def span(self, req, node, instance, parent, arrive, start, status, span=-1):
        cols = self.spans
        if cols is None:
            return
        if span < 0:
            span = self.next_span_id()
        cols["span"].append(span)
        cols["parent"].append(parent)
        cols["request"].append(req.index)
        cols["node"].append(node)
        cols["instance"].append(instance)
        cols["arrive_s"].append(arrive)
        cols["start_s"].append(start)
        cols["end_s"].append(self.env.now)
        cols["status"].append(status)
        cols["kind"].append(SERVER_SPAN)

    def client_span(self, req, node, parent, span, start, status):
        """A call as its caller saw it: ``node`` is the callee, ``parent`` the caller's span."""
        cols = self.spans
        cols["span"].append(span)
        cols["parent"].append(parent)
        cols["request"].append(req.index)
        cols["node"].append(node)
        cols["instance"].append(-1)
        cols["arrive_s"].append(start)
        cols["start_s"].append(start)
        cols["end_s"].append(self.env.now)
        cols["status"].append(status)
        cols["kind"].append(CLIENT_SPAN)

    # -- processes -----------------------------------------------------------------------
    def _arrivals(self):
        w = self.workload
        env = self.env
        timeout, process, request = env.timeout, env.process, self._request
        warmup = self.warmup
        for lo in range(0, len(w), CHUNK):
            hi = min(len(w), lo + CHUNK)
            times = w.time_s[lo:hi].tolist()
            codes = self.class_map[w.cls[lo:hi]].tolist()
            sizes = w.size_bytes[lo:hi].tolist()
            keys = w.key[lo:hi].tolist()
            for j, t in enumerate(times):
                dt = t - env.now
                if dt > 0:
                    yield timeout(dt)
                self.in_flight += 1
                process(request(Request(lo + j, codes[j], sizes[j], keys[j], env.now, t >= warmup)))
        self.arrivals_done = True
        if self.in_flight == 0:
            self.all_done.succeed()

    def _request(self, req):
        status = yield from self.clients[req.cls].execute(req, None, -1)
        i = req.index
        self.latency[i] = self.env.now - req.arrival
        self.status[i] = status
        self.attempts[i] = req.attempts
        self.visited[i] = req.mask
        self.in_flight -= 1
        if self.in_flight == 0 and self.arrivals_done:
            self.all_done.succeed()

    def _failures(self, inst, ttf, recovery, start, end):
        env = self.env
        if start > 0:
            yield env.timeout(start)
        while True:
            up = ttf.next()
            if env.now + up >= end:
                return
            yield env.timeout(up)
            inst.fail()
            yield env.timeout(recovery.next())
            inst.recover()

    def _sampler(self, series):
        """At the start of every interval: queue length and healthy instances per service.
        (Utilisation per interval is exact, from the busy time each visit books; see _result.)"""
        env = self.env
        services = [(n, self.nodes[n]) for n in self.model.services]
        for k in range(self.n_samples):
            t = k * self.sample_interval
            if t > env.now:
                yield env.timeout(t - env.now)
            series["time_s"].append(t)
            for name, node in services:
                queued = up = 0
                for inst in node.instances:
                    if inst.up:
                        up += 1
                        queued += len(inst.waiting)
                series[f"{name}.queue_length"].append(queued)
                series[f"{name}.instances_up"].append(up)

    # -- run -----------------------------------------------------------------------------
    def run(self) -> ReplicationResult:
        env, m = self.env, self.model
        n = len(self.workload)
        self.latency = array("d", [math.nan]) * n
        self.status = array("b", [INCOMPLETE]) * n
        self.attempts = array("H", [0]) * n
        self.visited = array("Q", [0]) * n
        series = {"time_s": array("d")}
        for name in m.services:
            for what in ("queue_length", "instances_up"):
                series[f"{name}.{what}"] = array("d")
        for name, s in m.services.items():
            if s.failures is not None:
                rate = s.failures.recovery_rate_per_s
                for inst in self.nodes[name].instances:
                    tag = (name, str(inst.index))
                    ttf = draws(s.failures.time_to_failure_s, self.seq, "failure", *tag)
                    kind = s.failures.recovery_time
                    shape = Deterministic(dist=kind, value=1 / rate) if kind == "deterministic" else \
                        Exponential(dist=kind, mean=1 / rate)
                    recovery = draws(shape, self.seq, "recovery", *tag)
                    end = math.inf if s.failures.end_s is None else s.failures.end_s
                    env.process(self._failures(inst, ttf, recovery, s.failures.start_s, end))
        env.process(self._arrivals())
        env.process(self._sampler(series))
        env.run(until=self.end)
        if not self.all_done.triggered:
            env.run(until=self.all_done | env.timeout(self.drain_s))
        return self._result(series)

    def _result(self, series) -> ReplicationResult:
        m, w = self.model, self.workload
        window = self.end - self.warmup
        requests = RequestRecords(
            cls=self.class_map[w.cls].astype(np.int16), arrival_s=np.asarray(w.time_s),
            latency_s=np.frombuffer(self.latency, dtype=np.float64),
            status=np.frombuffer(self.status, dtype=np.int8),
            attempts=np.frombuffer(self.attempts, dtype=np.uint16),
            visited=np.frombuffer(self.visited, dtype=np.uint64),
            class_names=tuple(m.classes), node_names=tuple(m.node_names()), warmup_s=self.warmup, end_s=self.end)
        warnings = self._stalls()
        for name in m.services:  # workers still held count as busy up to the run's end
            self.nodes[name].book_in_flight(self.env.now)
        times = np.frombuffer(series.pop("time_s"), dtype=np.float64)
        values = {k: np.frombuffer(v, dtype=np.float64) for k, v in series.items()}
        width = np.minimum(self.sample_interval, self.end - times)
        for name, s in m.services.items():
            busy = np.asarray(self.nodes[name].bins[:len(times)])
            values[f"{name}.utilisation"] = busy / (s.instances * s.workers * width)
        ts = TimeSeries(times, FrozenMap(values))
        services, cost = {}, 0.0
        for name, s in m.services.items():
            node = self.nodes[name]
            services[name] = ServiceStats(
                name=name, instances=s.instances, workers=s.workers, arrivals=node.arrivals,
                admitted=node.admitted, served=node.served,
                completed=node.completed, rejected=node.rejected, errors=node.errors,
                unavailable=node.unavailable, timeouts=node.timeouts, abandoned=node.abandoned, waited=node.waited, wait_s=node.wait_s,
                sojourn_s=node.sojourn_s, busy_s=node.busy_s, capacity_s=s.instances * s.workers * window,
                downtime_s=sum(i.downtime(self.warmup, self.end, self.env.now) for i in node.instances),
                mean_queue_length=max(0.0, node.queue_area) / window)
            price = s.price_per_instance_hour if s.price_per_instance_hour is not None else m.cost.instance_per_hour
            cost += s.instances * window / 3600.0 * price
        caches = {}
        for name, c in m.caches.items():
            node = self.nodes[name]
            caches[name] = CacheStats(name=name, lookups=node.lookups, hits=node.hits, timeouts=node.timeouts,
                                      entries=len(node.store), used_bytes=node.store.used_bytes,
                                      capacity_bytes=c.capacity_bytes, evictions=node.store.evictions)
            price = c.price_per_gib_hour if c.price_per_gib_hour is not None else m.cost.memory_gib_per_hour
            cost += c.capacity_bytes / 2**30 * window / 3600.0 * price
        spans = None
        if self.spans is not None:
            spans = SpanRecords({k: np.frombuffer(v, dtype=SpanRecords.DTYPES[k]) if len(v) else
                                 np.zeros(0, SpanRecords.DTYPES[k]) for k, v in self.spans.items()},
                                node_names=tuple(m.node_names()))
        return ReplicationResult(model_name=m.name, seed_entropy=self.seq.entropy, spawn_key=tuple(self.seq.spawn_key),
                                 warmup_s=self.warmup, end_s=self.end, requests=requests,
                                 services=FrozenMap(services), caches=FrozenMap(caches),
                                 timeseries=ts, cost=cost, spans=spans, warnings=tuple(warnings))

    def _stalls(self) -> list[str]:
        """Services whose every worker was held, with none given back, from before the window's end
        through the whole drain (or with nothing left to happen at all): work held that never completes."""
        env = self.env
        idle = env.peek() == math.inf  # no event left: what is held now stays held forever
        out = []
        for name in self.model.services:
            node = self.nodes[name]
            if not node.holding:
                continue
            workers = sum(i.workers for i in node.instances if i.up)
            since = max(node.holding.values())  # every worker held from here on, none given back
            if len(node.holding) < workers or node.released_at > since:
                continue
            if not (idle or (self.drain_s > 0 and since <= self.end and env.now - since >= self.drain_s)):
                continue
            cycle = holding_cycle(self.model, name)
            why = (f"; its calls {' -> '.join(cycle)} wait for workers that the callers hold: a deadlock"
                   if cycle else "")
            out.append(f"service {name!r}: all {workers} workers held and none given back from t={since:.6g} s "
                       f"to the run's end (t={env.now:.6g} s): nothing it serves completes{why}")
        return out


def run_replication(model: SystemModel, workload: Workload, params=None, seed=0, *, warmup_s: float | None = None,
                    drain_s: float | None = None, sample_interval_s: float | None = None,
                    record_spans: bool = False, warm_caches: bool = False) -> ReplicationResult:
    """Simulate ``workload`` through ``model`` (with tunables ``params`` applied) once.

    ``seed`` is an int or a ``numpy.random.SeedSequence``; every random stream of the run derives
    from it, so the same model, workload and seed give the same result, bit for bit.  The model
    and workload are not modified.  ``warm_caches`` fills every cache from its key stream before the
    run (``twin.sim.cache.warm_fill``), so that a short window measures the steady-state hit ratio.

    >>> from twin.spec import load_model
    >>> from twin.sim import PoissonArrivals
    >>> m = load_model("models/validation/mm1.yaml")
    >>> w = PoissonArrivals(rate_per_s=7.0, duration_s=200.0).generate(m, np.random.default_rng(1))
    >>> r = run_replication(m, w, seed=1, warmup_s=20.0)
    >>> 0.5 < r.services["server"].utilisation < 0.9
    True
    """
    if params:
        model = apply_params(model, params)
    d = model.defaults
    warmup = d.warmup_s if warmup_s is None else warmup_s
    interval = sample_interval_s or d.sample_interval_s
    if interval is not None and workload.duration_s / interval > MAX_SAMPLES:
        raise SpecError([Problem("sample_interval_s", f"expected at most {MAX_SAMPLES:,} intervals per run, got "
                                                      f"{workload.duration_s / interval:,.0f}")])
    if not 0 <= warmup < workload.duration_s:
        raise SpecError([Problem("warmup_s", f"expected a warm-up in [0, {workload.duration_s:g}) s "
                                             f"(the workload's duration), got {warmup:g}")])
    engine = _Engine(model, workload, _seed_sequence(seed), warmup_s=warmup,
                     drain_s=d.drain_s if drain_s is None else drain_s,
                     sample_interval_s=interval, record_spans=record_spans, warm_caches=warm_caches)
    return engine.run()
