"""Byte-capacity key stores with an eviction policy: what a twin cache really holds.

The hit ratio is not a parameter: it emerges from the key stream, the capacity and the policy.
``Store`` is the one base class; each policy implements ``lookup`` and ``insert``.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np


class Store:
    """A key -> stored-size map bounded by ``capacity_bytes``.

    ``lookup(key)`` returns the stored size (and updates recency/frequency) or None;
    ``insert(key, size)`` stores a value, evicting per the policy; a value larger than the whole
    capacity is not stored.  Not thread-safe; one store belongs to one replication.
    """

    def __init__(self, capacity_bytes: int):
        self.capacity_bytes = capacity_bytes
        self.used_bytes = 0
        self.evictions = 0

    def __len__(self) -> int:
        raise NotImplementedError

    def lookup(self, key: int) -> int | None:
        raise NotImplementedError

    def insert(self, key: int, size: int) -> None:
        raise NotImplementedError


class LRUStore(Store):
    """Evicts the least recently used entry."""

    def __init__(self, capacity_bytes: int):
        super().__init__(capacity_bytes)
        self._entries: OrderedDict[int, int] = OrderedDict()

    def __len__(self):
        return len(self._entries)

    def __contains__(self, key):
        return key in self._entries

    def lookup(self, key):
        size = self._entries.get(key)
        if size is not None:
            self._entries.move_to_end(key)
        return size

    def insert(self, key, size):
        entries = self._entries
        old = entries.pop(key, None)
        if old is not None:
            self.used_bytes -= old
        if size > self.capacity_bytes:
            return
        while self.used_bytes + size > self.capacity_bytes:
            _, evicted = entries.popitem(last=False)
            self.used_bytes -= evicted
            self.evictions += 1
        entries[key] = size
        self.used_bytes += size


class FIFOStore(LRUStore):
    """Evicts the oldest inserted entry; a hit does not refresh it."""

    def lookup(self, key):
        return self._entries.get(key)


class LFUStore(Store):
    """Evicts the least frequently used entry (oldest first among equals), in O(1) per hit."""

    def __init__(self, capacity_bytes: int):
        super().__init__(capacity_bytes)
        self._size: dict[int, int] = {}
        self._freq: dict[int, int] = {}
        self._buckets: dict[int, OrderedDict[int, None]] = {}
        self._min = 0

    def __len__(self):
        return len(self._size)

    def __contains__(self, key):
        return key in self._size

    def _bump(self, key):
        f = self._freq[key]
        bucket = self._buckets[f]
        del bucket[key]
        if not bucket:
            del self._buckets[f]
            if self._min == f:
                self._min = f + 1
        self._freq[key] = f + 1
        self._buckets.setdefault(f + 1, OrderedDict())[key] = None

    def lookup(self, key):
        size = self._size.get(key)
        if size is not None:
            self._bump(key)
        return size

    def _evict_one(self):
        if self._min not in self._buckets:
            self._min = min(self._buckets)
        bucket = self._buckets[self._min]
        key = next(iter(bucket))
        self._remove(key)
        self.evictions += 1

    def _remove(self, key) -> int:
        f = self._freq.pop(key)
        bucket = self._buckets[f]
        del bucket[key]
        if not bucket:
            del self._buckets[f]
        self.used_bytes -= self._size.pop(key)
        return f

    def insert(self, key, size):
        # Re-inserting a key keeps its history: it counts as one more use.
        freq = self._remove(key) + 1 if key in self._size else 1
        if size > self.capacity_bytes:
            return
        while self.used_bytes + size > self.capacity_bytes:
            self._evict_one()
        self._size[key] = size
        self._freq[key] = freq
        self._buckets.setdefault(freq, OrderedDict())[key] = None
        self._min = freq if len(self._size) == 1 else min(self._min, freq)
        self.used_bytes += size


STORES = {"lru": LRUStore, "lfu": LFUStore, "fifo": FIFOStore}


# -- warm start: a store filled from its key stream before the run ------------------------------

#: draws of the key stream tried before the keys never drawn are inserted directly, per key of the space
WARM_DRAWS_PER_KEY = 4
WARM_CHUNK = 8192
#: at most this many entries inserted by one fill (a bound on its time: a few seconds)
WARM_MAX_INSERTS = 4_000_000


def key_sources(model, cache: str) -> list[tuple[float, int, int, float, object]]:
    """The key stream that reaches ``cache``: per class with keys that visits it, (weight, key
    offset, key count, Zipf exponent, payload distribution); the weight is the class's share
    times its expected visits to the cache (the traffic equations)."""
    from ..spec.model import expected_visits
    from .workload import key_space_offsets

    offsets = key_space_offsets(model)
    out = []
    for cname, c in model.classes.items():
        if c.keys is None:
            continue
        visits = expected_visits(model, cname).get(cache, 0.0)
        if visits > 0:
            out.append((c.share * visits, offsets[c.keys.space or cname], c.keys.count, c.keys.zipf_exponent,
                        c.payload_bytes))
    return out


def warm_fill(store: Store, sources, rng: np.random.Generator, *, size_ratio: float = 1.0,
              overhead: int = 0) -> int:
    """Fill ``store`` as the key stream would have left it after a long run: draw requests (class by
    weight, key by its Zipf law, size by the payload distribution) and insert them until the store
    has evicted and then taken one more chunk (its state no longer depends on where the fill
    stopped); a space that fits whole gets its never-drawn keys too, rarest first.  Evictions
    made while filling are not counted; a fill stops after ``WARM_MAX_INSERTS`` inserts (a key space
    of many millions may then be left partly cold).  Returns the requests drawn."""
    from .workload import zipf_keys

    if not sources:
        return 0
    weights = np.array([s[0] for s in sources], dtype=float)
    weights /= weights.sum()
    total_keys = sum(s[2] for s in sources)
    budget = min(WARM_DRAWS_PER_KEY * total_keys, WARM_MAX_INSERTS)
    drawn, full_since = 0, None
    while drawn < budget and (full_since is None or drawn - full_since < WARM_CHUNK):
        n = WARM_CHUNK
        which = rng.choice(len(sources), size=n, p=weights)
        keys = np.empty(n, dtype=np.int64)
        sizes = np.empty(n, dtype=np.int64)
        for i, (_, offset, count, exponent, payload) in enumerate(sources):
            rows = np.flatnonzero(which == i)
            keys[rows] = offset + zipf_keys(count, exponent, len(rows), rng)
            sizes[rows] = np.rint(payload.sample(rng, len(rows))).astype(np.int64)
        for k, sz in zip(keys.tolist(), (sizes * size_ratio).astype(np.int64).tolist()):
            store.insert(k, sz + overhead)
        drawn += n
        if full_since is None and store.evictions:
            full_since = drawn
    if full_since is None:  # everything drawn fits: the long run holds the rest of the space too
        mean = int(np.mean([float(s[4].mean()) for s in sources]) * size_ratio) + overhead
        left = WARM_MAX_INSERTS - drawn
        for _, offset, count, _, _ in sources:
            for k in range(offset + count - 1, max(offset + count - 1 - left, offset - 1), -1):
                if k not in store:
                    store.insert(k, mean)
            left -= count
    store.evictions = 0
    return drawn
