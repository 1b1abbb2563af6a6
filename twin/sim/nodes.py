"""The twin's runtime parts: instances with workers and a bounded queue, services behind a load
balancer, caches holding real keys, and the synchronous calls between them.

Every visit is a plain generator run inside the request's SimPy process (``yield from``); a
separate process is spawned only where the semantics need one: parallel calls and fan-out,
and calls or clients with a timeout (the abandoned call keeps running, as in a real system).

Instance failures interrupt the processes in service there; each frame that holds a worker or a
pool connection gives it back on the way out, and the frame whose own instance failed turns
the interruption into an ``ERROR`` for its caller.  A failure starts a new *epoch* of the
instance: a worker taken in an earlier epoch died with it and is never given back, which keeps
the accounting right even when one request holds two workers of the same instance.
"""

from __future__ import annotations

import math
from collections import deque

from simpy import Interrupt

OK, REJECTED, TIMEOUT, ERROR, UNAVAILABLE, INCOMPLETE = range(6)
STATUS_NAMES = ("ok", "rejected", "timeout", "error", "unavailable", "incomplete")


class Request:
    """One request in flight: what every node it visits may read."""

    __slots__ = ("index", "cls", "size", "key", "arrival", "counted", "mask", "attempts")

    def __init__(self, index, cls, size, key, arrival, counted):
        self.index = index
        self.cls = cls
        self.size = size
        self.key = key
        self.arrival = arrival
        self.counted = counted  # arrived after the warm-up: its outcome enters the statistics
        self.mask = 0
        self.attempts = 0


class Slots:
    """``free`` interchangeable slots (workers, pool connections) and a FIFO of waiting events.

    An event in ``waiting`` succeeds with True when a slot is handed over, False when the slots
    are gone (instance failure).
    """

    __slots__ = ("env", "free", "waiting")

    def __init__(self, env, size):
        self.env = env
        self.free = size
        self.waiting = deque()

    def acquire(self):
        if self.free:
            self.free -= 1
            return True
        ev = self.env.event()
        self.waiting.append(ev)
        try:
            granted = yield ev
        except Interrupt:
            self.cancel(ev)
            raise
        return granted

    def release(self):
        if self.waiting:
            self.waiting.popleft().succeed(True)
        else:
            self.free += 1

    def cancel(self, ev):
        """The waiter of ``ev`` left (interrupted): give back what it got, or leave the queue."""
        if ev.triggered:
            if ev.value:
                self.release()
        else:
            self.waiting.remove(ev)


class Instance(Slots):
    """One instance of a service: its workers, queue, health and outgoing connection pools."""

    __slots__ = ("index", "workers", "up", "epoch", "in_service", "pools", "down_since", "outages")

    def __init__(self, env, index, workers, pools):
        super().__init__(env, workers)
        self.index = index
        self.workers = workers
        self.up = True
        self.epoch = 0
        # process -> how many of its frames are in service here (a dict: failures interrupt in a
        # fixed order, so the same seed gives the same run)
        self.in_service = {}
        self.pools = pools
        self.down_since = 0.0
        self.outages = []  # (down, up) times

    def enter(self, proc):
        self.in_service[proc] = self.in_service.get(proc, 0) + 1

    def leave(self, proc):
        n = self.in_service.get(proc, 0)
        if n > 1:
            self.in_service[proc] = n - 1
        elif n:
            del self.in_service[proc]

    def release(self):
        if self.up:
            Slots.release(self)

    def fail(self):
        self.up = False
        self.epoch += 1
        self.free = 0
        self.down_since = self.env.now
        waiting, self.waiting = self.waiting, deque()
        for ev in waiting:
            ev.succeed(False)
        procs = list(self.in_service)
        self.in_service.clear()
        for proc in procs:
            if proc.is_alive:
                proc.interrupt(self)

    def recover(self):
        self.up = True
        self.free = self.workers
        self.outages.append((self.down_since, self.env.now))

    def downtime(self, start: float, end: float, now: float) -> float:
        """Seconds down inside [start, end), counting an outage still open at ``now``."""
        spans = self.outages + ([] if self.up else [(self.down_since, now)])
        return sum(max(0.0, min(b, end) - max(a, start)) for a, b in spans)

    def load(self):
        return self.workers - self.free + len(self.waiting)


class Node:
    """What a call can target: a service or a cache. ``visit`` is a generator returning a status."""

    __slots__ = ("eng", "name", "code", "bit", "arrivals", "timeouts")

    def __init__(self, eng, name, code):
        self.eng = eng
        self.name = name
        self.code = code
        self.bit = 1 << code
        self.arrivals = 0
        self.timeouts = 0  # callers gave up waiting for this node

    def visit(self, req, parent):
        raise NotImplementedError


class ServiceNode(Node):
    __slots__ = ("instances", "pick", "service_time", "calls", "parallel_calls", "hold", "queue_cap",
                 "tracks_failures", "rr", "u", "admitted", "served", "completed", "rejected", "errors",
                 "unavailable", "abandoned", "waited", "wait_s", "sojourn_s", "busy_s", "bins", "bin_s", "per_bin",
                 "holding", "token", "released_at", "queue_area")

    def __init__(self, eng, name, code, spec, service_time, instances, u):
        super().__init__(eng, name, code)
        self.instances = instances
        self.service_time = service_time  # per class code: Draws or Constant
        self.calls = None  # per class code: list of Call, set once every node exists
        self.parallel_calls = spec.call_mode == "parallel"
        self.hold = spec.calls_hold_worker
        self.queue_cap = spec.queue_capacity
        self.tracks_failures = spec.failures is not None
        self.rr = -1
        self.u = u
        self.pick = {"round_robin": self._pick_round_robin, "random": self._pick_random,
                     "least_outstanding": self._pick_least}[spec.load_balancer]
        if len(instances) == 1:
            self.pick = self._pick_only
        self.admitted = self.served = self.completed = self.rejected = self.errors = self.unavailable = 0
        self.abandoned = self.waited = 0  # abandoned: the caller's own instance failed meanwhile
        self.wait_s = self.sojourn_s = self.busy_s = 0.0
        self.bin_s = eng.sample_interval
        self.per_bin = 1.0 / self.bin_s
        self.bins = [0.0] * eng.n_samples  # busy worker-seconds per sample interval
        self.holding = {}  # token -> start: the workers held now (booked as busy at the run's end if still held)
        self.token = 0
        self.released_at = -math.inf  # when a worker was last given back
        self.queue_area = 0.0  # the integral of the queue length over the window [warmup, end): see _queued

    def _pick_only(self):
        inst = self.instances[0]
        return inst if inst.up else None

    def _pick_round_robin(self):
        insts = self.instances
        n = len(insts)
        for _ in range(n):
            self.rr = (self.rr + 1) % n
            if insts[self.rr].up:
                return insts[self.rr]
        return None

    def _pick_random(self):
        up = [i for i in self.instances if i.up]
        return up[int(self.u.next() * len(up))] if up else None

    def _pick_least(self):
        up = [i for i in self.instances if i.up]
        return min(up, key=Instance.load) if up else None

    def _hold(self, start):
        """A worker taken at ``start``: booked as in flight until ``_account_busy`` gives it back."""
        self.token += 1
        self.holding[self.token] = start
        return self.token

    def _account_busy(self, token, now):
        self.released_at = now
        self._book(self.holding.pop(token), now)

    def book_in_flight(self, now):
        """Busy time of the workers still held at ``now`` (the run's end), up to ``now``."""
        for start in self.holding.values():
            self._book(start, now)

    def _book(self, start, now):
        eng = self.eng
        lo = start if start > eng.warmup else eng.warmup
        hi = now if now < eng.end else eng.end
        if hi > lo:
            self.busy_s += hi - lo
        # the utilisation series: split the busy time over the sample intervals it spans
        if start >= eng.end:
            return
        now = hi
        bins = self.bins
        b0, b1 = int(start * self.per_bin), int(now * self.per_bin)
        if b0 == b1:
            if b0 < len(bins):
                bins[b0] += now - start
            return
        width, last = self.bin_s, len(bins) - 1
        for b in range(b0, min(b1, last) + 1):
            lo, hi = max(start, b * width), min(now, (b + 1) * width)
            if hi > lo:
                bins[b] += hi - lo

    def _queued(self, t, sign):
        """A visit joins (sign 1) or leaves (sign -1) an instance's queue at ``t``.  Each visit adds
        (end - max(t, warmup))+ on joining and takes it away on leaving, which leaves exactly its
        time queued inside [warmup, end): the sum is the integral of the queue length over the window."""
        eng = self.eng
        if t < eng.end:
            self.queue_area += sign * (eng.end - (t if t > eng.warmup else eng.warmup))

    def visit(self, req, parent):
        eng = self.eng
        env = eng.env
        counted = req.counted
        if counted:
            self.arrivals += 1
        inst = self.pick()
        if inst is None:
            if counted:
                self.unavailable += 1
            return UNAVAILABLE
        req.mask |= self.bit
        arrived = env.now
        if inst.free:
            inst.free -= 1
        else:
            cap = self.queue_cap
            if cap is not None and len(inst.waiting) >= cap:
                if counted:
                    self.rejected += 1
                if eng.spans is not None:
                    eng.span(req, self.code, inst.index, parent, arrived, arrived, REJECTED)
                return REJECTED
            ev = env.event()
            inst.waiting.append(ev)
            self._queued(arrived, 1.0)
            try:
                granted = yield ev
            except Interrupt:
                self._queued(env.now, -1.0)
                inst.cancel(ev)
                if counted:
                    self.abandoned += 1
                raise
            self._queued(env.now, -1.0)
            if not granted or not inst.up:
                if counted:
                    self.errors += 1
                if eng.spans is not None:
                    eng.span(req, self.code, inst.index, parent, arrived, env.now, ERROR)
                return ERROR
        start = env.now
        token = self._hold(start)
        if counted:
            self.admitted += 1
            if start > arrived:
                self.waited += 1
                self.wait_s += start - arrived
        span = eng.next_span_id() if eng.spans is not None else -1
        calls = self.calls[req.cls]
        status = OK
        proc = None
        epoch = inst.epoch
        if self.tracks_failures:
            proc = env.active_process
            inst.enter(proc)
        try:
            yield env.timeout(self.service_time[req.cls].next())
            if calls and self.hold:
                status = yield from self.run_calls(calls, req, inst, span)
        except Interrupt as stop:
            if proc is not None:
                inst.leave(proc)
            self._account_busy(token, env.now)
            if stop.cause is not inst:
                if inst.epoch == epoch:
                    inst.release()
                if counted:
                    self.abandoned += 1
                raise
            if counted:
                self.errors += 1
            if eng.spans is not None:
                eng.span(req, self.code, inst.index, parent, arrived, start, ERROR, span)
            return ERROR
        now = env.now
        if proc is not None:
            inst.leave(proc)
            if inst.epoch != epoch:
                # the instance failed while a nested visit of this same request held it; that
                # visit took the interruption, and this worker died with the instance
                self._account_busy(token, now)
                if counted:
                    self.errors += 1
                if eng.spans is not None:
                    eng.span(req, self.code, inst.index, parent, arrived, start, ERROR, span)
                return ERROR
        self._account_busy(token, now)
        inst.release()
        if calls and not self.hold:
            status = yield from self.run_calls(calls, req, inst, span)
        if counted:
            self.served += 1
            self.sojourn_s += now - arrived
            if status == OK:
                self.completed += 1
            else:
                self.errors += 1
        if eng.spans is not None:
            eng.span(req, self.code, inst.index, parent, arrived, start, status, span)
        return status

    def run_calls(self, calls, req, inst, span):
        if self.parallel_calls and len(calls) > 1:
            env = self.eng.env
            procs = [env.process(call.execute(req, inst, span)) for call in calls]
            yield env.all_of(procs)
            for call, proc in zip(calls, procs):
                if proc.value != OK and call.fail:
                    return proc.value
            return OK
        for call in calls:
            if call.direct:
                target = call.pick()
                if target is None:
                    continue
                status = yield from target.visit(req, span)
            else:
                status = yield from call.execute(req, inst, span)
            if status != OK and call.fail:
                return status
        return OK


class CacheNode(Node):
    __slots__ = ("store", "hit_time", "backend_call", "structure", "structure_cost", "decode_op",
                 "decode_byte", "encode_op", "encode_byte", "size_ratio", "overhead", "lookups", "hits")

    def __init__(self, eng, name, code, spec, store, hit_time, serialization):
        super().__init__(eng, name, code)
        self.store = store
        self.hit_time = hit_time
        self.backend_call = None  # a Call to the backend service, set once every node exists
        self.structure = spec.data_structure
        self.structure_cost = spec.structure_cost_s.get(spec.data_structure, 0.0)
        ser = serialization
        self.decode_op = ser.per_op_s if ser else 0.0
        self.encode_op = ser.per_op_s if ser else 0.0
        self.decode_byte = ser.decode_s_per_byte if ser else 0.0
        self.encode_byte = ser.encode_s_per_byte if ser else 0.0
        self.size_ratio = ser.size_ratio if ser else 1.0
        self.overhead = spec.entry_overhead_bytes
        self.lookups = self.hits = 0

    def structure_op(self, scan_all: bool = False) -> float:
        """Cost of one lookup or update of the data structure at its current live entries.

        A list finds a present key after n/2 comparisons on average and learns that a key is
        absent (or where to update) after all n.
        """
        c = self.structure_cost
        if not c:
            return 0.0
        n = len(self.store)
        if self.structure == "hash":
            return c
        if self.structure == "tree":
            return c * math.log2(n + 1)
        return c * (n if scan_all else n / 2)

    def visit(self, req, parent):
        eng = self.eng
        env = eng.env
        counted = req.counted
        req.mask |= self.bit
        arrived = env.now
        if req.key < 0:  # nothing to look up: straight through to the backend
            return (yield from self.backend_call.execute(req, None, parent))
        if counted:
            self.arrivals += 1
            self.lookups += 1
        stored = self.store.lookup(req.key)
        cost = self.hit_time.next() + self.structure_op(scan_all=stored is None)
        if stored is not None:
            cost += self.decode_op + self.decode_byte * req.size
            if cost > 0:
                yield env.timeout(cost)
            if counted:
                self.hits += 1
            if eng.spans is not None:
                eng.span(req, self.code, 0, parent, arrived, arrived, OK)
            return OK
        if cost > 0:
            yield env.timeout(cost)
        span = eng.next_span_id() if eng.spans is not None else -1
        status = yield from self.backend_call.execute(req, None, span)
        if status == OK:
            encode = self.encode_op + self.encode_byte * req.size + self.structure_op(scan_all=True)
            if encode > 0:
                yield env.timeout(encode)
            self.store.insert(req.key, int(req.size * self.size_ratio) + self.overhead)
        if eng.spans is not None:
            eng.span(req, self.code, 0, parent, arrived, arrived, status, span)
        return status


class Backoff:
    """Delay before retry n: min(max, initial * multiplier**(n-1)), times U(0,1) with full jitter."""

    __slots__ = ("initial", "multiplier", "max", "jitter")

    def __init__(self, spec, jitter_draws):
        self.initial = spec.initial_s
        self.multiplier = spec.multiplier
        self.max = spec.max_s
        self.jitter = jitter_draws if spec.jitter == "full" else None

    def delay(self, retry: int) -> float:
        d = min(self.max, self.initial * self.multiplier ** (retry - 1))
        return d * self.jitter.next() if self.jitter is not None else d


class Call:
    """A compiled call: which target (drawn per visit), how many copies, timeout, retries, pool."""

    __slots__ = ("eng", "single", "p", "choices", "u", "count", "parallel", "timeout", "retries",
                 "backoff", "fail", "delays", "pools", "root", "plain", "direct")

    def __init__(self, eng, targets, u, *, count=1, parallel=True, timeout=None, retries=0, backoff=None,
                 fail=True, delays=None, pools=None, root=False):
        self.eng = eng
        if len(targets) == 1:
            (self.single, self.p), = targets
            self.choices = None
        else:
            self.single, self.p = None, 1.0
            acc, self.choices = 0.0, []
            for node, p in targets:
                acc += p
                self.choices.append((acc, node))
        self.u = u
        self.count = count
        self.parallel = parallel
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.fail = fail
        self.delays = delays or {}  # node code -> (request, response) one-way delay draws
        self.pools = pools or {}  # node code -> name of the caller instance's pool for it
        self.root = root  # the client's own call: counts the request's attempts
        # No timeout, retry, pool or delay: the visit runs straight in the caller's frame.
        self.plain = timeout is None and not retries and not self.pools and not self.delays
        self.direct = self.plain and count == 1 and not root  # the caller may visit the target itself

    def pick(self):
        """The target this visit calls, or None when the draw says no call."""
        target = self.single
        if target is not None:
            if self.p < 1.0 and self.u.next() >= self.p:
                return None
            return target
        x = self.u.next()
        for acc, node in self.choices:
            if x < acc:
                return node
        return None

    def execute(self, req, inst, span):
        target = self.pick()
        if target is None:
            return OK
        if self.count == 1:
            if self.plain:
                if self.root:
                    req.attempts = 1
                return (yield from target.visit(req, span))
            return (yield from self.with_retries(target, req, inst, span))
        env = self.eng.env
        if self.parallel:
            procs = [env.process(self.with_retries(target, req, inst, span)) for _ in range(self.count)]
            yield env.all_of(procs)
            statuses = [p.value for p in procs]
        else:
            statuses = []
            for _ in range(self.count):
                statuses.append((yield from self.with_retries(target, req, inst, span)))
        return next((s for s in statuses if s != OK), OK)

    def with_retries(self, target, req, inst, span):
        eng = self.eng
        env = eng.env
        status = OK
        # each attempt is a client span of the caller: from before its pool wait and network delay
        # to the response, or to the caller's timeout (the external client's own call is not traced)
        tracing = eng.spans is not None and not self.root
        for attempt in range(self.retries + 1):
            if attempt:
                yield env.timeout(self.backoff.delay(attempt))
            if self.root:
                req.attempts = attempt + 1
            call = eng.next_span_id() if tracing else span
            began = env.now
            if self.timeout is None:
                status = yield from self.roundtrip(target, req, inst, call)
            else:
                child = env.process(self.roundtrip(target, req, inst, call))
                yield child | env.timeout(self.timeout)
                if child.triggered:
                    status = child.value
                else:
                    status = TIMEOUT
                    if req.counted:
                        target.timeouts += 1
            if tracing:
                eng.client_span(req, target.code, span, call, began, status)
            if status == OK:
                return OK
        return status

    def roundtrip(self, target, req, inst, span):
        env = self.eng.env
        name = self.pools.get(target.code) if inst is not None else None
        pool = inst.pools[name] if name is not None else None
        if pool is not None:
            yield from pool.acquire()
        delay = self.delays.get(target.code)
        try:
            if delay is not None:
                yield env.timeout(delay.next())
            status = yield from target.visit(req, span)
            if delay is not None:
                yield env.timeout(delay.next())
        except Interrupt:
            if pool is not None:
                pool.release()
            raise
        if pool is not None:
            pool.release()
        return status
