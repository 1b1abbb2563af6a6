"""Closed-form queueing results, and an oracle that applies them to a system model.

The oracle reads a model and says what theory predicts for it, or why theory has nothing exact
to say (``NotAnalytic``).  It covers M/M/c and M/M/c/K nodes, M/G/1 (Pollaczek-Khinchine) for a
single node, open Jackson/Kelly networks of ./M/c nodes with probabilistic (feedback) routing,
and the hit ratio of an LRU cache under independent Zipf requests (Che's approximation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq

from ..spec import SystemModel, expected_visits


class NotAnalytic(Exception):
    """Theory has no exact answer for this model; the message says which feature is in the way."""


@dataclass(frozen=True)
class Queue:
    """Steady-state figures of one station (per visit)."""

    utilisation: float
    wait_probability: float
    wait_mean_s: float
    sojourn_mean_s: float
    blocking_probability: float = 0.0


def erlang_b(c: int, a: float) -> float:
    """Blocking probability of M/M/c/c with offered load a = lambda/mu (stable recursion)."""
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return b


def erlang_c(c: int, a: float) -> float:
    """Probability that an arrival waits in M/M/c with offered load a < c."""
    if a >= c:
        raise ValueError(f"unstable: offered load {a:g} >= {c} servers")
    b = erlang_b(c, a)
    return c * b / (c - a * (1 - b))


def mmc(lam: float, mu: float, c: int) -> Queue:
    a = lam / mu
    pw = erlang_c(c, a)
    wq = pw / (c * mu - lam)
    return Queue(a / c, pw, wq, wq + 1 / mu)


def mg1(lam: float, mean_s: float, second_moment: float) -> Queue:
    """Pollaczek-Khinchine: Wq = lambda E[S^2] / (2 (1 - rho))."""
    rho = lam * mean_s
    if rho >= 1:
        raise ValueError(f"unstable: rho = {rho:g}")
    wq = lam * second_moment / (2 * (1 - rho))
    return Queue(rho, rho, wq, wq + mean_s)


def mmck(lam: float, mu: float, c: int, k: int) -> Queue:
    """M/M/c/K: at most K in the system (c in service, K - c waiting); arrivals beyond are lost."""
    a = lam / mu
    p = np.empty(k + 1)
    p[0] = 1.0
    for n in range(1, k + 1):
        p[n] = p[n - 1] * a / min(n, c)
    p /= p.sum()
    n = np.arange(k + 1)
    blocking = float(p[k])
    lam_eff = lam * (1 - blocking)
    lq = float(np.sum(np.maximum(n - c, 0) * p))
    wq = lq / lam_eff
    wait_probability = float(p[c:k].sum() / (1 - blocking))
    return Queue(lam_eff / (c * mu), wait_probability, wq, wq + 1 / mu, blocking)


def mm1_sojourn_quantile(lam: float, mu: float, q: float) -> float:
    """M/M/1 FCFS sojourn time is exponential with rate mu - lambda."""
    return -math.log1p(-q) / (mu - lam)


def mmc_sojourn_quantile(lam: float, mu: float, c: int, q: float) -> float:
    """M/M/c FCFS sojourn time W + S: S ~ Exp(mu); W is 0 with probability 1 - C (Erlang C), else
    Exp(gamma) with gamma = c mu - lambda.  P(W + S > t) = (1 - C) e^{-mu t} + C P(Exp(gamma) + Exp(mu) > t)."""
    if c == 1:
        return mm1_sojourn_quantile(lam, mu, q)
    wait = erlang_c(c, lam / mu)
    gamma = c * mu - lam

    def tail(t: float) -> float:
        both = (math.exp(-mu * t) * (1 + mu * t) if abs(gamma - mu) < 1e-12 * mu else
                (gamma * math.exp(-mu * t) - mu * math.exp(-gamma * t)) / (gamma - mu))
        return (1 - wait) * math.exp(-mu * t) + wait * both - (1 - q)

    hi = 1.0 / mu
    while tail(hi) > 0:
        hi *= 2
    return brentq(tail, 0.0, hi, xtol=1e-14, rtol=1e-12)


def che_hit_ratio(popularity: np.ndarray, capacity_objects: int) -> float:
    """LRU hit ratio under the independent reference model (Che, Tung and Wang 2002).

    The characteristic time T solves sum_i (1 - exp(-p_i T)) = C; then h = sum_i p_i (1 - exp(-p_i T)).
    """
    p = np.asarray(popularity, dtype=float)
    p = p / p.sum()
    if capacity_objects >= len(p):
        return 1.0
    if capacity_objects <= 0:
        return 0.0
    f = lambda t: np.sum(-np.expm1(-p * t)) - capacity_objects  # noqa: E731
    hi = 1.0
    while f(hi) < 0:
        hi *= 2
    t = brentq(f, 0.0, hi, xtol=1e-12, rtol=1e-12)
    return float(np.sum(p * -np.expm1(-p * t)))


@dataclass(frozen=True)
class Check:
    """A metric of the twin's summary and the value theory gives for it."""

    metric: str
    expected: float
    formula: str


def predict(model: SystemModel, rate_per_s: float) -> list[Check]:
    """What theory says about ``model`` under Poisson arrivals at ``rate_per_s``."""
    _require_exact_features(model)
    if model.caches:
        return _predict_caches(model)
    shares = {c: k.share for c, k in model.classes.items()}
    visits = {c: expected_visits(model, c) for c in model.classes}
    lam = {s: rate_per_s * sum(shares[c] * visits[c][s] for c in model.classes) for s in model.services}
    active = [s for s in model.services if lam[s] > 0]
    checks: list[Check] = []
    queues: dict[str, Queue] = {}
    # A lone node that every request visits exactly once sees the external Poisson stream itself;
    # with feedback (a node calling itself) its arrivals are no longer Poisson, and only the
    # product form for exponential nodes survives.
    single = len(active) == 1 and all(abs(visits[c][active[0]] - 1) < 1e-9 for c in model.classes)
    for name in active:
        svc = model.services[name]
        dists = [svc.service_time_for(c) for c in model.classes if visits[c][name] > 0]
        if any(d != dists[0] for d in dists):
            raise NotAnalytic(f"service {name!r} has class-dependent service times")
        dist = dists[0]
        c = svc.workers
        if dist.dist == "exponential":
            mu = 1 / dist.mean()
            if lam[name] >= c * mu and svc.queue_capacity is None:
                raise NotAnalytic(f"service {name!r} is unstable (rho = {lam[name] / (c * mu):.3g} >= 1)")
            if svc.queue_capacity is not None:
                if not single:
                    raise NotAnalytic("finite queues inside a network or with feedback break the product form")
                q, formula = mmck(lam[name], mu, c, c + svc.queue_capacity), f"M/M/{c}/{c + svc.queue_capacity}"
            else:
                q, formula = mmc(lam[name], mu, c), ("M/M/1" if c == 1 else f"M/M/{c} (Erlang C)")
                if not single:
                    formula = f"Jackson network, node {formula}"
        else:
            if not single or c != 1 or svc.queue_capacity is not None:
                raise NotAnalytic(f"service {name!r} has {dist.dist} service times; exact only for a lone M/G/1 "
                                  f"node without feedback")
            if lam[name] * dist.mean() >= 1:
                raise NotAnalytic(f"service {name!r} is unstable")
            q, formula = mg1(lam[name], dist.mean(), dist.second_moment()), f"M/G/1 Pollaczek-Khinchine ({dist.dist})"
        queues[name] = q
        p = f"service.{name}."
        checks += [Check(p + "utilisation", q.utilisation, formula), Check(p + "wait_mean_s", q.wait_mean_s, formula),
                   Check(p + "wait_probability", q.wait_probability, formula)]
        if not single:  # alone, a node's sojourn is the request latency, checked below
            checks.append(Check(p + "sojourn_mean_s", q.sojourn_mean_s, formula))
        if svc.queue_capacity is not None:
            checks.append(Check(p + "blocking_probability", q.blocking_probability, formula))
    sojourn = sum(shares[c] * sum(visits[c][s] * queues[s].sojourn_mean_s for s in active) for c in model.classes)
    label = "sum of visits x node sojourn (Kelly/Jackson)" if not single else checks[0].formula
    checks.append(Check("latency_mean_s", sojourn, label))
    blocking = queues[active[0]].blocking_probability if single else 0.0
    checks.append(Check("throughput_per_s", rate_per_s * (1 - blocking), "arrival rate x (1 - blocking)"))
    if single:
        svc = model.services[active[0]]
        if svc.queue_capacity is None and dist.dist == "exponential":
            mu, c = 1 / dist.mean(), svc.workers
            formula = "M/M/1 sojourn ~ Exp(mu - lambda)" if c == 1 else \
                f"M/M/{c} sojourn: Erlang C wait + Exp(mu) service"
            for q in (0.5, 0.95, 0.99):
                checks.append(Check(f"latency_p{round(q * 100)}_s", mmc_sojourn_quantile(rate_per_s, mu, c, q), formula))
    return checks


def _require_exact_features(model: SystemModel) -> None:
    if model.network.links or not (model.network.delay_s.dist == "deterministic" and model.network.delay_s.value == 0):
        raise NotAnalytic("network delays")
    for cname, c in model.classes.items():
        if c.client.timeout_s is not None or c.client.retries:
            raise NotAnalytic(f"class {cname!r} has client timeouts or retries")
    for name, s in model.services.items():
        if s.instances != 1:
            raise NotAnalytic(f"service {name!r} has {s.instances} instances with separate queues")
        if s.failures is not None or s.pools:
            raise NotAnalytic(f"service {name!r} has failures or pools")
        if s.calls and s.calls_hold_worker:
            raise NotAnalytic(f"service {name!r} holds its worker during calls (a nested, not a Jackson, network)")
        for call in s.calls:
            if call.count != 1 or call.timeout_s is not None or call.retries:
                raise NotAnalytic(f"service {name!r} has fan-out, call timeouts or retries")
        if len(s.calls) > 1 and s.call_mode == "parallel":
            raise NotAnalytic(f"service {name!r} makes parallel calls (fork-join)")


def _predict_caches(model: SystemModel) -> list[Check]:
    checks = []
    for name, cache in model.caches.items():
        users = {cname: c for cname, c in model.classes.items() if c.entry == name}
        if cache.policy != "lru" or len(users) != len(model.classes):
            raise NotAnalytic("only an LRU cache that every request enters first has an exact-enough estimate")
        spaces = {(c.keys.space or cname, c.keys.count, c.keys.zipf_exponent) if c.keys else None
                  for cname, c in users.items()}
        sizes = {(c.payload_bytes.dist, c.payload_bytes.mean()) for c in users.values()}
        if len(spaces) != 1 or None in spaces or len(sizes) != 1 or next(iter(sizes))[0] != "deterministic":
            raise NotAnalytic("Che's approximation needs one Zipf key space and one fixed value size")
        _, count, exponent = spaces.pop()
        size = next(iter(sizes))[1]
        ratio = model.serialization[cache.serialization_method].size_ratio if cache.serialization_method else 1.0
        entry = int(size * ratio) + cache.entry_overhead_bytes
        capacity = cache.capacity_bytes // entry if entry else count
        popularity = np.arange(1, count + 1, dtype=float) ** -exponent
        checks.append(Check(f"cache.{name}.hit_ratio", che_hit_ratio(popularity, capacity),
                            f"Che's approximation, LRU of {capacity} objects, Zipf({exponent:g}) over {count} keys"))
    return checks
