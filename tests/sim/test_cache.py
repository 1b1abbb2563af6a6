"""Eviction policies against naive reference implementations, on random operation sequences."""

from hypothesis import given, settings
from hypothesis import strategies as st

from twin.sim.cache import FIFOStore, LFUStore, LRUStore

ops = st.lists(st.tuples(st.integers(0, 12), st.integers(1, 40)), min_size=1, max_size=300)


class NaiveStore:
    """Entries in a list; each policy picks its victim by a full scan."""

    def __init__(self, capacity, policy):
        self.capacity, self.policy = capacity, policy
        self.entries = {}  # key -> [size, last_use, inserted, uses]
        self.clock = 0

    def used(self):
        return sum(e[0] for e in self.entries.values())

    def lookup(self, key):
        self.clock += 1
        e = self.entries.get(key)
        if e is None:
            return None
        e[1] = self.clock
        e[3] += 1
        return e[0]

    def insert(self, key, size):
        self.clock += 1
        uses = 0
        if key in self.entries:
            uses = self.entries.pop(key)[3]
        if size > self.capacity:
            return
        while self.used() + size > self.capacity:
            if self.policy == "lru":
                victim = min(self.entries, key=lambda k: self.entries[k][1])
            elif self.policy == "fifo":
                victim = min(self.entries, key=lambda k: self.entries[k][2])
            else:  # lfu, oldest use first among equals
                victim = min(self.entries, key=lambda k: (self.entries[k][3], self.entries[k][4]))
            del self.entries[victim]
        self.entries[key] = [size, self.clock, self.clock, uses + 1, self.clock]
        if self.policy == "lfu":
            self.entries[key][4] = self.clock


def _lfu_touch(naive, key):
    e = naive.entries.get(key)
    if e is not None:
        e[4] = naive.clock  # LFU ties break by recency of the last frequency change


def replay(store, naive, sequence, lfu=False):
    for key, size in sequence:
        got = store.lookup(key)
        want = naive.lookup(key)
        if lfu:
            _lfu_touch(naive, key)
        assert got == want
        if got is None:
            store.insert(key, size)
            naive.insert(key, size)
        assert store.used_bytes == naive.used() <= store.capacity_bytes
        assert len(store) == len(naive.entries)


@settings(max_examples=200, deadline=None)
@given(ops, st.integers(1, 100))
def test_lru_matches_reference(sequence, capacity):
    replay(LRUStore(capacity), NaiveStore(capacity, "lru"), sequence)


@settings(max_examples=200, deadline=None)
@given(ops, st.integers(1, 100))
def test_fifo_matches_reference(sequence, capacity):
    replay(FIFOStore(capacity), NaiveStore(capacity, "fifo"), sequence)


@settings(max_examples=200, deadline=None)
@given(ops, st.integers(1, 100))
def test_lfu_matches_reference(sequence, capacity):
    replay(LFUStore(capacity), NaiveStore(capacity, "lfu"), sequence, lfu=True)


def test_lru_evicts_least_recent():
    s = LRUStore(3)
    for k in (1, 2, 3):
        s.insert(k, 1)
    s.lookup(1)
    s.insert(4, 1)
    assert s.lookup(2) is None and s.lookup(1) == 1 and s.evictions == 1


def test_lfu_keeps_the_popular():
    s = LFUStore(2)
    s.insert(1, 1)
    for _ in range(5):
        s.lookup(1)
    s.insert(2, 1)
    s.insert(3, 1)
    assert s.lookup(1) == 1 and s.lookup(2) is None


def test_value_larger_than_cache_is_not_stored():
    for cls in (LRUStore, LFUStore, FIFOStore):
        s = cls(10)
        s.insert(1, 5)
        s.insert(2, 11)
        assert s.lookup(2) is None and s.lookup(1) == 5
