"""Random streams for one replication.

Every source of randomness (a service's service times for a class, a call's routing draws, a
cache's hit times, an instance's failures) has its own stream, derived from the replication's
``SeedSequence`` and the *name* of what it drives.  Changing one part of a model therefore does
not shift the numbers any other part sees: the basis of common random numbers in sweeps.

Samples are drawn in blocks from numpy and handed out one by one, which is far cheaper than
one numpy call per event.
"""

from __future__ import annotations

import math
import zlib

import numpy as np

BLOCK = 1024


def substream(seq: np.random.SeedSequence, *names: str) -> np.random.Generator:
    """An independent generator for ``names`` under ``seq`` (stable across runs and processes)."""
    key = tuple(zlib.crc32(n.encode()) for n in names)
    child = np.random.SeedSequence(seq.entropy, spawn_key=tuple(seq.spawn_key) + key)
    return np.random.Generator(np.random.PCG64(child))


class Draws:
    """Samples of one distribution from one stream; ``next()`` returns a float."""

    __slots__ = ("_dist", "_rng", "_buf", "_i")

    def __init__(self, dist, rng: np.random.Generator):
        self._dist = dist
        self._rng = rng
        self._buf: list[float] = []
        self._i = 0

    def next(self) -> float:
        i = self._i
        if i == len(self._buf):
            self._buf = self._dist.sample(self._rng, BLOCK).tolist()
            i = 0
        self._i = i + 1
        return self._buf[i]


class Constant:
    """A deterministic value with the same interface as ``Draws``."""

    __slots__ = ("value",)

    def __init__(self, value: float):
        self.value = value

    def next(self) -> float:
        return self.value


class _Unit:
    """U(0, 1), shaped like a distribution spec for ``Draws``."""

    @staticmethod
    def sample(rng, n):
        return rng.random(n)


class Slowed:
    """Draws multiplied by a factor while the clock is in one of the windows (a degraded
    dependency); the same interface as ``Draws``."""

    __slots__ = ("_draws", "_env", "_windows")

    def __init__(self, draws, env, windows):
        self._draws = draws
        self._env = env
        self._windows = [(w.start_s, math.inf if w.end_s is None else w.end_s, w.factor) for w in windows]

    def next(self) -> float:
        value = self._draws.next()
        now = self._env.now
        for start, end, factor in self._windows:
            if start <= now < end:
                value *= factor
        return value


def Uniforms(rng: np.random.Generator) -> Draws:  # noqa: N802 (reads as a type at call sites)
    """U(0, 1) draws, for routing, load balancing and jitter."""
    return Draws(_Unit, rng)


def draws(dist, seq: np.random.SeedSequence, *names: str):
    """``Constant`` for a deterministic distribution, else buffered ``Draws`` on its own stream."""
    if getattr(dist, "dist", None) == "deterministic":
        return Constant(float(dist.value))
    return Draws(dist, substream(seq, *names))
