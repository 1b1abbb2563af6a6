"""Build the same network in Ciw (an independent simulator) and measure it the same way.

Only what both tools express is translated: single-instance services with c workers, a finite
waiting room, exponential/deterministic/lognormal/gamma service, and Markov routing from calls
that do not hold the caller's worker.  Ciw is a test and benchmark dependency
(``pip install twin[test]``); it is imported only here, on first use.
"""

from __future__ import annotations

import math

import numpy as np

from ..spec import SystemModel


def _dist(d):
    import ciw

    if d.dist == "exponential":
        return ciw.dists.Exponential(1.0 / d.mean())
    if d.dist == "deterministic":
        return ciw.dists.Deterministic(d.value)
    if d.dist == "lognormal":
        sigma2 = math.log1p(d.cv**2)
        return ciw.dists.Lognormal(math.log(d.mean()) - sigma2 / 2, math.sqrt(sigma2))
    if d.dist == "gamma":
        shape = 1 / d.cv**2
        return ciw.dists.Gamma(shape, d.mean() / shape)
    raise ValueError(f"no Ciw translation for {d.dist}")


def network(model: SystemModel, rate_per_s: float):
    """Ciw's network for ``model`` under Poisson arrivals; returns (node names, network)."""
    import ciw

    names = list(model.services)
    entry = {c.entry for c in model.classes.values()}
    if len(entry) != 1 or model.caches:
        raise ValueError("Ciw translation needs one entry service and no caches")
    routing = [[0.0] * len(names) for _ in names]
    for i, name in enumerate(names):
        s = model.services[name]
        if (s.calls and s.calls_hold_worker) or s.instances != 1:
            raise ValueError(f"{name}: Ciw routing needs one instance and calls that release the worker")
        for call in s.calls:
            for target, p in call.targets().items():
                routing[i][names.index(target)] += float(p)
    return names, ciw.create_network(
        arrival_distributions=[ciw.dists.Exponential(rate_per_s) if n in entry else None for n in names],
        service_distributions=[_dist(model.services[n].service_time_s) for n in names],
        number_of_servers=[model.services[n].workers for n in names],
        queue_capacities=[model.services[n].queue_capacity if model.services[n].queue_capacity is not None
                          else float("inf") for n in names],
        routing=routing,
    )


def simulate(model: SystemModel, seed: int, rate_per_s: float, until_s: float):
    """A finished Ciw simulation (Ciw seeds its global generators: one run at a time per process)."""
    import ciw

    names, net = network(model, rate_per_s)
    ciw.seed(seed)
    sim = ciw.Simulation(net)
    sim.simulate_until_max_time(until_s)
    return names, sim


def replication(model: SystemModel, seed: int) -> dict[str, float]:
    """One Ciw run with the model's defaults; metrics named as twin names them."""
    d = model.defaults
    names, sim = simulate(model, seed, d.rate_per_s, d.duration_s + d.drain_s)
    recs = sim.get_all_records()
    first, last, rejected = {}, {}, set()
    wait = {n: [] for n in names}
    busy = {n: 0.0 for n in names}
    for r in recs:
        if r.record_type == "rejection":
            rejected.add(r.id_number)
            first[r.id_number] = min(first.get(r.id_number, math.inf), r.arrival_date)
            continue
        first[r.id_number] = min(first.get(r.id_number, math.inf), r.arrival_date)
        last[r.id_number] = max(last.get(r.id_number, -math.inf), r.exit_date)
        node = names[r.node - 1]
        start, end = r.service_start_date, r.service_end_date
        busy[node] += max(0.0, min(end, d.duration_s) - max(start, d.warmup_s))
        if d.warmup_s <= r.arrival_date < d.duration_s:
            wait[node].append(r.waiting_time)
    window = d.duration_s - d.warmup_s
    counted = [i for i, t in first.items() if d.warmup_s <= t < d.duration_s]
    admitted = [i for i in counted if i not in rejected and i in last]
    out = {"latency_mean_s": float(np.mean([last[i] - first[i] for i in admitted])),
           "throughput_per_s": len(admitted) / window}
    for n in names:
        s = model.services[n]
        out[f"service.{n}.utilisation"] = busy[n] / (s.workers * window)
        out[f"service.{n}.wait_mean_s"] = float(np.mean(wait[n])) if wait[n] else math.nan
    if any(model.services[n].queue_capacity is not None for n in names):
        out["rejection_rate"] = sum(1 for i in counted if i in rejected) / len(counted)
    return out
