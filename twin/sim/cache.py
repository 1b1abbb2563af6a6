"""Byte-capacity key stores with an eviction policy: what a twin cache really holds.

The hit ratio is not a parameter: it emerges from the key stream, the capacity and the policy.
``Store`` is the one base class; each policy implements ``lookup`` and ``insert``.
"""

from __future__ import annotations

from collections import OrderedDict


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
