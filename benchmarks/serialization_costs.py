"""Measure per-byte encode/decode costs and size ratios of serialization methods on this machine.

DESIGN: ``serialization_method`` in the twin is a per-byte encode/decode cost and a stored-size
ratio per method, *measured by really encoding synthetic payloads that resemble production ones*.
This script builds catalogue-like records (ids, names, free text, prices, tags, nested
attributes) at a spread of sizes, times each method with ``timeit`` (best of several repeats),
fits time = per_op_s + s_per_byte * raw_bytes by least squares, and prints the YAML block for a
model's ``serialization`` table.  The raw size of a record is its compact JSON size.

    python benchmarks/serialization_costs.py [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import marshal
import pickle
import platform
import timeit

import numpy as np

WORDS = ("stock ship fast cotton steel blue red large small warranty premium eco pack set kit "
         "wireless charger cable adapter case cover stand mount light lamp desk chair table").split()


def record(rng: np.random.Generator, target_bytes: int) -> dict:
    n_reviews = max(0, int((target_bytes - 600) / 220))
    return {
        "id": int(rng.integers(1, 10**9)),
        "sku": f"SKU-{rng.integers(10**7):07d}",
        "name": " ".join(rng.choice(WORDS, 4)),
        "price": round(float(rng.uniform(1, 500)), 2),
        "in_stock": bool(rng.random() < 0.8),
        "tags": list(rng.choice(WORDS, 6)),
        "attributes": {f"attr_{i}": float(rng.normal()) for i in range(8)},
        "description": " ".join(rng.choice(WORDS, 40)),
        "reviews": [{"user": int(rng.integers(10**6)), "stars": int(rng.integers(1, 6)),
                     "text": " ".join(rng.choice(WORDS, 25))} for _ in range(n_reviews)],
    }


def methods():
    out = {
        "json": (lambda o: json.dumps(o, separators=(",", ":")).encode(), lambda b: json.loads(b)),
        "pickle": (lambda o: pickle.dumps(o, protocol=5), pickle.loads),
        "marshal": (marshal.dumps, marshal.loads),
    }
    try:
        import msgpack

        out["msgpack"] = (msgpack.packb, msgpack.unpackb)
    except ImportError:
        pass
    return out


def best_time(fn, number=200, repeat=5) -> float:
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    sizes = [512, 1024, 2048, 4096, 8192, 16384, 32768, 65536]
    payloads = [record(rng, s) for s in sizes]
    raw = np.array([len(json.dumps(p, separators=(",", ":"))) for p in payloads], dtype=float)
    print(f"# measured by benchmarks/serialization_costs.py on {platform.processor() or platform.machine()}, "
          f"Python {platform.python_version()}")
    print("serialization:")
    design = np.column_stack([np.ones_like(raw), raw])
    for name, (enc, dec) in methods().items():
        enc_t, dec_t, ratios = [], [], []
        for p in payloads:
            blob = enc(p)
            enc_t.append(best_time(lambda: enc(p)))
            dec_t.append(best_time(lambda: dec(blob)))
            ratios.append(len(blob))
        (e0, e1), *_ = np.linalg.lstsq(design, np.array(enc_t), rcond=None)
        (d0, d1), *_ = np.linalg.lstsq(design, np.array(dec_t), rcond=None)
        ratio = float(np.sum(ratios) / np.sum(raw))
        per_op = max(0.0, float((e0 + d0) / 2))
        print(f"  {name}: {{encode_s_per_byte: {max(e1, 0):.3g}, decode_s_per_byte: {max(d1, 0):.3g}, "
              f"per_op_s: {per_op:.3g}, size_ratio: {ratio:.3f}}}")


if __name__ == "__main__":
    main()
