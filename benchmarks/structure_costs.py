"""Measure the lookup-cost constants of the twin's cache data structures on this machine.

DESIGN: ``data_structure`` costs a lookup c * f(n) at n live entries, f = 1 (hash), log2(n+1)
(tree), n/2 (list: an average linear scan), with c calibrated.  This script times real lookups
of int keys in a dict (hash), a bisect over a sorted array (a balanced-tree stand-in with the
same comparison count) and a Python list scan, at several n, and fits c for each by least
squares through the origin.  It prints the ``structure_cost_s`` block for a cache.

    python benchmarks/structure_costs.py
"""

from __future__ import annotations

import bisect
import math
import platform
import timeit

import numpy as np


def main() -> None:
    rng = np.random.default_rng(0)
    sizes = [1_000, 10_000, 100_000, 1_000_000]
    rows = {"hash": [], "tree": [], "list": []}
    for n in sizes:
        keys = rng.permutation(n * 4)[:n].tolist()
        probes = [keys[i] for i in rng.integers(0, n, 256)]
        table = dict.fromkeys(keys)
        ordered = sorted(keys)
        rows["hash"].append((1.0, min(timeit.repeat(lambda: [table.get(k) for k in probes], number=200,
                                                     repeat=5)) / (200 * len(probes))))
        rows["tree"].append((math.log2(n + 1), min(timeit.repeat(
            lambda: [bisect.bisect_left(ordered, k) for k in probes], number=50, repeat=5)) / (50 * len(probes))))
        if n <= 100_000:
            few = probes[:8]
            rows["list"].append((n / 2, min(timeit.repeat(lambda: [keys.index(k) for k in few], number=3,
                                                          repeat=3)) / (3 * len(few))))
    print(f"# measured by benchmarks/structure_costs.py on {platform.machine()}, Python {platform.python_version()}")
    print("structure_cost_s:")
    for name, pts in rows.items():
        x = np.array([p[0] for p in pts])
        y = np.array([p[1] for p in pts])
        c = float(x @ y / (x @ x))
        print(f"  {name}: {c:.3g}   # f(n) fitted over n = {', '.join(str(s) for s in sizes[:len(pts)])}")


if __name__ == "__main__":
    main()
