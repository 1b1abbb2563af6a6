"""The system model: what the twin simulates, as a frozen, validated pydantic record.

A model names request classes, services (instances behind a load balancer, workers, a bounded
queue, per-class service times, synchronous downstream calls), caches that hold real keys,
network delays, failures and recovery, prices, and the tunable parameters a sweep may change.
``twin.spec.loader.load_model`` reads one from YAML; ``SystemModel.model_validate`` builds one
from a dict.  Cross-references (call targets, class names, tunable targets) and the call graph
are checked here, so a model that validates can be simulated.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from .distributions import Distribution, NoBool, NonNegFloat, PosFloat
from .errors import Problem, SpecError
from .tunables import Tunable, check_tunables
from .units import parse_bytes, parse_seconds

Name = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_-]*$", max_length=64)]
Probability = Annotated[float, Field(gt=0, le=1), NoBool]
Retries = Annotated[int, Field(ge=0, le=100), NoBool]
PosInt = Annotated[int, Field(ge=1), NoBool]
NonNegInt = Annotated[int, Field(ge=0), NoBool]
Bytes = Annotated[int, Field(ge=0), BeforeValidator(parse_bytes)]
Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False), BeforeValidator(parse_seconds)]
NonNegSeconds = Annotated[float, Field(ge=0, allow_inf_nan=False), BeforeValidator(parse_seconds)]

MAX_NODES = 63  # services + caches; a request records the nodes it visited as a 64-bit mask
MAX_SAMPLES = 1_000_000  # time-series intervals per run
# Bounds that keep one run's memory and work finite: the twin keeps an object per instance, and a
# request's visits (fan-outs multiplied along the call graph) are each a SimPy process step.
MAX_INSTANCES = 10_000  # per service
MAX_WORKERS = 1_000_000  # per instance
MAX_FANOUT = 1_000  # copies of one call
MAX_VISITS = 100_000  # expected node visits per request


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, validate_default=True)


class Backoff(Strict):
    """Wait before retry n (1-based): min(max_s, initial_s * multiplier**(n-1)), jittered."""

    initial_s: NonNegSeconds = 0.1
    multiplier: Annotated[float, Field(ge=1, le=100), NoBool] = 2.0
    max_s: NonNegSeconds = 10.0
    jitter: Literal["full", "none"] = "full"


class Client(Strict):
    """How the client that sends a request class behaves: its timeout and retries."""

    timeout_s: Seconds | None = None
    retries: Retries = 0
    backoff: Backoff = Backoff()


class Keys(Strict):
    """Key popularity: Zipf(zipf_exponent) over ``count`` keys; classes sharing ``space`` share keys."""

    count: Annotated[int, Field(ge=1, le=100_000_000), NoBool]
    zipf_exponent: NonNegFloat = 1.0
    space: Name | None = None


class RequestClass(Strict):
    share: Probability
    entry: Name
    payload_bytes: Distribution = 0
    keys: Keys | None = None
    client: Client = Client()


class Call(Strict):
    """A synchronous downstream call made by every visit of the calling service.

    Either ``to`` one target (made with ``probability``), or ``one_of`` several targets (at most one
    is called, with the given probabilities; what is left over is the chance of no call).  ``count``
    copies are made (fan-out), in parallel or one after the other.
    """

    to: Name | None = None
    one_of: dict[Name, Probability] | None = None
    probability: Probability = 1.0
    count: Annotated[int, Field(ge=1, le=MAX_FANOUT), NoBool] = 1
    fanout: Literal["parallel", "sequential"] = "parallel"
    classes: list[Name] | None = None
    timeout_s: Seconds | None = None
    retries: Retries = 0
    backoff: Backoff = Backoff()
    on_error: Literal["fail", "ignore"] = "fail"

    @model_validator(mode="after")
    def _one_kind(self):
        if (self.to is None) == (self.one_of is None):
            raise ValueError("expected exactly one of 'to' (a target) or 'one_of' (targets with probabilities)")
        if self.one_of is not None:
            if not self.one_of:
                raise ValueError("expected at least one target in 'one_of'")
            total = sum(self.one_of.values())
            if total > 1 + 1e-9:
                raise ValueError(f"expected 'one_of' probabilities summing to at most 1, got {total:g}")
            if self.probability != 1.0:
                raise ValueError("'probability' belongs to a call with 'to'; 'one_of' carries its own")
        return self

    def targets(self) -> dict[str, float]:
        """Target -> probability that a visit calls it (before ``count``)."""
        return {self.to: self.probability} if self.to is not None else dict(self.one_of)

    def applies_to(self, cls: str) -> bool:
        return self.classes is None or cls in self.classes


class Failures(Strict):
    """Each instance fails after ``time_to_failure_s`` of uptime and returns after a recovery time
    with rate ``recovery_rate_per_s`` (mean 1/rate), exponential or deterministic."""

    time_to_failure_s: Distribution
    recovery_rate_per_s: Annotated[float, Field(gt=0, le=1000, allow_inf_nan=False), NoBool]
    recovery_time: Literal["exponential", "deterministic"] = "exponential"
    #: failures start only in [start_s, end_s) of the run (uptime counts from start_s); a
    #: recovery under way at end_s still completes
    start_s: NonNegSeconds = 0.0
    end_s: Seconds | None = None

    @model_validator(mode="after")
    def _not_flapping(self):
        if self.time_to_failure_s.mean() < 1e-3:
            raise ValueError(f"expected a mean time to failure of at least 1 ms, got "
                             f"{self.time_to_failure_s.mean():g} s")
        if self.end_s is not None and self.end_s <= self.start_s:
            raise ValueError(f"expected end_s after start_s, got {self.end_s:g} <= {self.start_s:g}")
        return self


class Slowdown(Strict):
    """Service times ``factor`` times longer for visits that start in [start_s, end_s)."""

    start_s: NonNegSeconds = 0.0
    end_s: Seconds | None = None
    factor: Annotated[float, Field(gt=0, le=1e4, allow_inf_nan=False), NoBool]

    @model_validator(mode="after")
    def _ordered(self):
        if self.end_s is not None and self.end_s <= self.start_s:
            raise ValueError(f"expected end_s after start_s, got {self.end_s:g} <= {self.start_s:g}")
        return self


class Pool(Strict):
    """A connection pool per instance: at most ``size`` concurrent calls from it to ``target``."""

    target: Name
    size: PosInt


class Service(Strict):
    instances: Annotated[int, Field(ge=1, le=MAX_INSTANCES), NoBool] = 1
    workers: Annotated[int, Field(ge=1, le=MAX_WORKERS), NoBool] = 1
    queue_capacity: NonNegInt | None = None
    load_balancer: Literal["round_robin", "random", "least_outstanding"] = "round_robin"
    service_time_s: Distribution
    service_time_s_by_class: dict[Name, Distribution] = {}
    calls: list[Call] = []
    call_mode: Literal["sequential", "parallel"] = "sequential"
    calls_hold_worker: bool = True
    failures: Failures | None = None
    slowdowns: list[Slowdown] = []
    pools: dict[Name, Pool] = {}
    price_per_instance_hour: NonNegFloat | None = None

    def service_time_for(self, cls: str):
        return self.service_time_s_by_class.get(cls, self.service_time_s)


class Cache(Strict):
    """A cache that holds real keys; a miss calls ``backend`` and stores the result.

    A lookup costs ``hit_time_s`` plus ``structure_cost_s[data_structure]`` times the structure's
    growth in the number of live entries n (hash: 1, tree: log2(n+1), list: n/2); a hit also
    decodes and a miss encodes the value with ``serialization_method`` (per-byte costs and the
    stored size ratio from the model's ``serialization`` table).
    """

    capacity_bytes: Bytes
    policy: Literal["lru", "lfu", "fifo"] = "lru"
    backend: Name
    hit_time_s: Distribution = 0
    data_structure: Literal["hash", "tree", "list"] = "hash"
    structure_cost_s: dict[Literal["hash", "tree", "list"], NonNegFloat] = {}
    serialization_method: Name | None = None
    entry_overhead_bytes: NonNegInt = 0
    price_per_gib_hour: NonNegFloat | None = None


class SerializationCost(Strict):
    """Cost of one serialization method, per byte of the raw value, and its stored-size ratio."""

    encode_s_per_byte: NonNegFloat
    decode_s_per_byte: NonNegFloat
    per_op_s: NonNegFloat = 0.0
    size_ratio: PosFloat = 1.0


class Network(Strict):
    """One-way delay of a call and of its response; ``links`` override it per 'caller->callee'."""

    delay_s: Distribution = 0
    links: dict[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_-]*->[A-Za-z_][A-Za-z0-9_-]*$")], Distribution] = {}


class Pricing(Strict):
    instance_per_hour: NonNegFloat = 0.0
    memory_gib_per_hour: NonNegFloat = 0.0


class RunDefaults(Strict):
    """What ``twin simulate MODEL`` uses when no flag says otherwise."""

    rate_per_s: PosFloat = 10.0
    duration_s: Seconds = 600.0
    warmup_s: NonNegSeconds = 60.0
    replications: PosInt = 5
    sample_interval_s: Seconds | None = None
    drain_s: NonNegSeconds = 60.0

    @model_validator(mode="after")
    def _warmup_inside(self):
        if self.warmup_s >= self.duration_s:
            raise ValueError(f"expected warmup_s < duration_s, got {self.warmup_s:g} >= {self.duration_s:g}")
        if self.sample_interval_s is not None and self.duration_s / self.sample_interval_s > MAX_SAMPLES:
            raise ValueError(f"expected at most {MAX_SAMPLES:,} sample intervals per run, got "
                             f"{self.duration_s / self.sample_interval_s:,.0f}")
        return self


class SystemModel(Strict):
    name: Name
    description: str = ""
    classes: Annotated[dict[Name, RequestClass], Field(min_length=1)]
    services: Annotated[dict[Name, Service], Field(min_length=1)]
    caches: dict[Name, Cache] = {}
    network: Network = Network()
    serialization: dict[Name, SerializationCost] = {}
    cost: Pricing = Pricing()
    tunables: dict[Name, Tunable] = {}
    defaults: RunDefaults = RunDefaults()
    provenance: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _cross_references(self):
        problems = _check_references(self)
        if not problems:
            problems = _check_call_graph(self)
        if not problems:
            problems = check_tunables(self)
        if problems:
            # Not a ValueError: pydantic lets it through with its paths intact.
            raise SpecError(problems)
        return self

    def node_names(self) -> list[str]:
        """Services then caches: the nodes a request can visit, in a fixed order."""
        return [*self.services, *self.caches]


def _check_references(m: SystemModel) -> list[Problem]:
    out: list[Problem] = []
    nodes = set(m.services) | set(m.caches)
    known = ", ".join(sorted(nodes))

    def need_node(path, name):
        if name not in nodes:
            out.append(Problem(path, f"unknown service or cache {name!r} (known: {known})"))

    for name in set(m.services) & set(m.caches):
        out.append(Problem(f"caches.{name}", f"{name!r} is already a service; services and caches share one namespace"))
    if len(nodes) > MAX_NODES:
        out.append(Problem("services", f"expected at most {MAX_NODES} services and caches in all, got {len(nodes)}"))

    total = sum(c.share for c in m.classes.values())
    if abs(total - 1.0) > 1e-6:
        out.append(Problem("classes", f"expected class shares summing to 1, got {total:g}"))
    spaces: dict[str, tuple[str, int]] = {}
    for cname, c in m.classes.items():
        need_node(f"classes.{cname}.entry", c.entry)
        if c.keys is not None:
            space = c.keys.space or cname
            if space in spaces and spaces[space][1] != c.keys.count:
                other, count = spaces[space]
                out.append(Problem(f"classes.{cname}.keys.count",
                                   f"key space {space!r} has {count} keys in class {other!r}, got {c.keys.count}"))
            spaces.setdefault(space, (cname, c.keys.count))

    classes = ", ".join(m.classes)
    for sname, s in m.services.items():
        for cname in s.service_time_s_by_class:
            if cname not in m.classes:
                out.append(Problem(f"services.{sname}.service_time_s_by_class.{cname}",
                                   f"unknown request class {cname!r} (known: {classes})"))
        for i, call in enumerate(s.calls):
            for target in call.targets():
                need_node(f"services.{sname}.calls.{i}." + ("to" if call.to else f"one_of.{target}"), target)
            for cname in call.classes or []:
                if cname not in m.classes:
                    out.append(Problem(f"services.{sname}.calls.{i}.classes",
                                       f"unknown request class {cname!r} (known: {classes})"))
        targets = set()
        for pname, pool in s.pools.items():
            need_node(f"services.{sname}.pools.{pname}.target", pool.target)
            if pool.target in targets:
                out.append(Problem(f"services.{sname}.pools.{pname}.target",
                                   f"another pool of {sname!r} already serves {pool.target!r}"))
            targets.add(pool.target)
    for cname, c in m.caches.items():
        if c.backend not in m.services:
            out.append(Problem(f"caches.{cname}.backend",
                               f"expected a service (known: {', '.join(m.services)}), got {c.backend!r}"))
        if c.serialization_method is not None and c.serialization_method not in m.serialization:
            out.append(Problem(f"caches.{cname}.serialization_method",
                               f"expected a method of the model's serialization table "
                               f"({', '.join(m.serialization) or 'which is empty'}), got {c.serialization_method!r}"))
    for link in m.network.links:
        a, b = link.split("->")
        for end in (a, b):
            need_node(f"network.links.{link}", end)
    return out


def expected_calls(m: SystemModel, cls: str):
    """Matrix M[i, j]: expected calls from one visit of node i to node j, for class ``cls``.

    A cache calls its backend on a miss; its hit ratio is not known before the run, so the worst
    case (every lookup misses) is used.
    """
    import numpy as np

    names = m.node_names()
    index = {n: i for i, n in enumerate(names)}
    mat = np.zeros((len(names), len(names)))
    for sname, s in m.services.items():
        for call in s.calls:
            if call.applies_to(cls):
                for target, p in call.targets().items():
                    mat[index[sname], index[target]] += p * call.count
    for cname, c in m.caches.items():
        mat[index[cname], index[c.backend]] += 1.0
    return names, mat


def expected_visits(m: SystemModel, cls: str) -> dict[str, float]:
    """Mean visits to each node by one request of class ``cls`` (the traffic equations)."""
    import numpy as np

    names, mat = expected_calls(m, cls)
    entry = np.zeros(len(names))
    entry[names.index(m.classes[cls].entry)] = 1.0
    visits = np.linalg.solve(np.eye(len(names)) - mat.T, entry)
    return dict(zip(names, visits))


def _check_call_graph(m: SystemModel) -> list[Problem]:
    """A call cycle is fine while it has a way out; with none, a request would never finish."""
    import numpy as np

    for cls in m.classes:
        names, mat = expected_calls(m, cls)
        reach = _reachable(names, mat, m.classes[cls].entry)
        sub = mat[np.ix_(reach, reach)]
        if sub.size and max(abs(np.linalg.eigvals(sub))) >= 1 - 1e-9:
            cycle = _find_cycle([names[i] for i in reach], sub)
            first = cycle[0]
            return [Problem(f"services.{first}.calls",
                            f"the call cycle {' -> '.join(cycle + [first])} has no way out for class {cls!r}: each "
                            f"pass repeats it at least once on average; expected probabilities x counts "
                            f"that let requests leave it")]
        # the traffic equations on the nodes this class reaches (the cycle check above makes them solvable)
        entry = np.eye(len(reach))[reach.index(names.index(m.classes[cls].entry))]
        visits = np.linalg.solve(np.eye(len(reach)) - sub.T, entry)
        if visits.sum() > MAX_VISITS:
            busiest = names[reach[int(np.argmax(visits))]]
            return [Problem(f"services.{busiest}" if busiest in m.services else f"caches.{busiest}",
                            f"a request of class {cls!r} would make {visits.sum():.3g} visits on average "
                            f"({visits.max():.3g} to {busiest!r}): the call counts multiply along the call graph; "
                            f"expected at most {MAX_VISITS:,}")]
    return []


def _reachable(names, mat, entry) -> list[int]:
    seen, todo = {names.index(entry)}, [names.index(entry)]
    while todo:
        i = todo.pop()
        for j in range(len(names)):
            if mat[i, j] > 0 and j not in seen:
                seen.add(j)
                todo.append(j)
    return sorted(seen)


def _find_cycle(names, mat) -> list[str]:
    """Some cycle in the graph (it has one, since its spectral radius is >= 1)."""
    n = len(names)
    state = [0] * n  # 0 new, 1 on stack, 2 done
    stack: list[int] = []

    def dfs(i):
        state[i] = 1
        stack.append(i)
        for j in range(n):
            if mat[i, j] > 0:
                if state[j] == 1:
                    return stack[stack.index(j):]
                if state[j] == 0:
                    found = dfs(j)
                    if found:
                        return found
        stack.pop()
        state[i] = 2
        return None

    for i in range(n):
        if state[i] == 0:
            found = dfs(i)
            if found:
                return [names[k] for k in found]
    return list(names)


def holding_cycle(m: SystemModel, start: str) -> list[str]:
    """A call cycle through service ``start`` that can hold every worker: each service on it keeps
    its worker during its calls and waits without a timeout (through caches, which pass misses on).
    Returned as [start, ..., start], or [] when there is none."""
    def edges(node):
        if node in m.caches:
            return [m.caches[node].backend]
        s = m.services[node]
        if not s.calls_hold_worker:
            return []
        return [t for call in s.calls if call.timeout_s is None for t in call.targets()]

    path, seen = [start], {start}

    def dfs(node):
        for t in edges(node):
            if t == start:
                return path + [start]
            if t not in seen:
                seen.add(t)
                path.append(t)
                found = dfs(t)
                if found:
                    return found
                path.pop()
        return None

    return dfs(start) or []
