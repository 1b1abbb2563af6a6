"""The twin's engine against Ciw and against bare SimPy, on the same Jackson network, in one run.

Each contender simulates models/validation/jackson.yaml (three nodes with feedback routing) for
the same simulated horizon at the same arrival rate; the figure is simulated requests per wall
second (best of --repeats), and the ratios are to Ciw.  "Bare SimPy" is the obvious hand-written
model: simpy.Resource per node and the stdlib random module, nothing else.  The twin's time
includes generating its arrival table.

Peak memory: one million requests through the twin (and, for comparison, Ciw) in a fresh
process each; the figure is the growth of peak resident memory over the process after imports
(VmHWM against VmRSS after imports, from /proc/self/status).

    python benchmarks/engine_vs_ciw.py [--horizon 20000] [--repeats 3] [--memory-requests 1000000]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import simpy

from twin.sim import PoissonArrivals, run_replication
from twin.spec import load_model
from twin.validation.ciw import simulate as ciw_simulate

MODEL = Path(__file__).resolve().parent.parent / "models" / "validation" / "jackson.yaml"


def routing(model):
    names = list(model.services)
    table = {}
    for name, s in model.services.items():
        row, acc = [], 0.0
        for call in s.calls:
            for target, p in call.targets().items():
                acc += p
                row.append((acc, names.index(target)))
        table[names.index(name)] = row
    return names, table


def bare_simpy(model, rate, horizon, seed) -> int:
    """Jackson network the plain way: a Resource per node, random.expovariate, one process per request."""
    names, table = routing(model)
    mu = [1.0 / model.services[n].service_time_s.mean() for n in names]
    rnd = random.Random(seed)
    env = simpy.Environment()
    nodes = [simpy.Resource(env, model.services[n].workers) for n in names]
    entry = names.index(next(iter(model.classes.values())).entry)
    done = [0]

    def request():
        node = entry
        while node is not None:
            with nodes[node].request() as slot:
                yield slot
                yield env.timeout(rnd.expovariate(mu[node]))
            u, nxt = rnd.random(), None
            for acc, j in table[node]:
                if u < acc:
                    nxt = j
                    break
            node = nxt
        done[0] += 1

    def source():
        while True:
            yield env.timeout(rnd.expovariate(rate))
            env.process(request())

    env.process(source())
    env.run(until=horizon)
    return done[0]


def twin_engine(model, rate, horizon, seed) -> int:
    workload = PoissonArrivals(rate, horizon).generate(model, np.random.default_rng(seed))
    result = run_replication(model, workload, seed=seed, warmup_s=0.0, drain_s=0.0)
    return int((result.requests.status == 0).sum())


def ciw(model, rate, horizon, seed) -> int:
    _, sim = ciw_simulate(model, seed, rate, horizon)
    return len({r.id_number for r in sim.get_all_records() if r.record_type == "service"})


def best_rate(fn, model, rate, horizon, repeats) -> tuple[float, int]:
    best, count = 0.0, 0
    for k in range(repeats):
        t0 = time.perf_counter()
        count = fn(model, rate, horizon, seed=k)
        best = max(best, count / (time.perf_counter() - t0))
    return best, count


def peak_memory(which: str, requests: int) -> dict:
    code = f"""
import json, time
import numpy as np
from twin.spec import load_model
from twin.sim import PoissonArrivals, run_replication
from twin.validation.ciw import simulate
m = load_model({str(MODEL)!r}); rate = m.defaults.rate_per_s; horizon = {requests} / rate
def status(key):
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith(key))
base = status("VmRSS:")
t0 = time.perf_counter()
if {which!r} == "twin":
    w = PoissonArrivals(rate, horizon).generate(m, np.random.default_rng(0))
    r = run_replication(m, w, seed=0, warmup_s=0.0, drain_s=0.0)
    n = len(r.requests)
else:
    _, sim = simulate(m, 0, rate, horizon)
    n = len({{x.id_number for x in sim.get_all_records()}})
peak = status("VmHWM:")
print(json.dumps({{"requests": n, "peak_mib": peak / 1024, "growth_mib": (peak - base) / 1024,
                  "seconds": time.perf_counter() - t0}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--horizon", type=float, default=20000.0, help="simulated seconds per run")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--memory-requests", type=int, default=1_000_000)
    ap.add_argument("--skip-ciw-memory", action="store_true", help="Ciw needs minutes for a million requests")
    args = ap.parse_args()
    model = load_model(MODEL)
    rate = model.defaults.rate_per_s
    print(f"# {platform.machine()}, {platform.python_implementation()} {platform.python_version()}, "
          f"{MODEL.name}, {rate:g} req/s for {args.horizon:g} simulated s, best of {args.repeats}")
    results = {}
    for name, fn in (("twin", twin_engine), ("ciw", ciw), ("bare simpy", bare_simpy)):
        results[name] = best_rate(fn, model, rate, args.horizon, args.repeats)
    base = results["ciw"][0]
    print(f"{'engine':12s} {'requests/s':>12s} {'vs Ciw':>8s}  requests")
    for name, (r, n) in results.items():
        print(f"{name:12s} {r:12,.0f} {r / base:7.2f}x  {n}")
    print(f"\n# peak memory for {args.memory_requests:,} requests (fresh process each)")
    for which in ("twin",) + (() if args.skip_ciw_memory else ("ciw",)):
        m = peak_memory(which, args.memory_requests)
        print(f"{which:6s} {m['requests']:>9,} requests: peak RSS {m['peak_mib']:.0f} MiB "
              f"(+{m['growth_mib']:.0f} MiB over imports), {m['seconds']:.0f} s")


if __name__ == "__main__":
    main()
