"""Arrival processes, checked: the public face of the numba kernels in ``_kernels``.

Every function takes a ``numpy.random.Generator`` and draws every random number from it, so the
same seed gives the same arrivals bit for bit.  Bad parameters raise ``LoadError`` naming the
parameter and what was expected.

>>> import numpy as np
>>> t = nhpp([0, 60, 120], [10.0, 30.0, 10.0], np.random.default_rng(1))
>>> len(t), bool(np.all(np.diff(t) >= 0))
(2382, True)
"""

from __future__ import annotations

import numpy as np

from ..spec import TwinError
from . import _kernels


class LoadError(TwinError):
    """Parameters of a load process that cannot make a load; the message names the field."""


def _array(values, name: str) -> np.ndarray:
    a = np.asarray(values, dtype=np.float64)
    if a.ndim != 1:
        raise LoadError(f"{name}: expected a list of numbers, got shape {a.shape}")
    bad = ~np.isfinite(a)
    if bad.any():
        raise LoadError(f"{name}[{int(np.argmax(bad))}]: expected a finite number, got {a[bad][0]}")
    return np.ascontiguousarray(a)


def _positive(value, name: str, *, strict: bool = True) -> float:
    v = float(value)
    if not np.isfinite(v) or v < 0 or (strict and v == 0):
        raise LoadError(f"{name}: expected a number {'>' if strict else '>='} 0, got {value!r}")
    return v


def nhpp(knots_t, knots_r, rng: np.random.Generator) -> np.ndarray:
    """Arrival times (s) of a Poisson process whose rate (per s) is linear between the knots."""
    t, r = _array(knots_t, "knots_t"), _array(knots_r, "knots_r")
    if len(t) != len(r) or len(t) < 2:
        raise LoadError(f"knots_t and knots_r: expected two or more knots of each, as many times as rates; got "
                        f"{len(t)} times and {len(r)} rates")
    if (np.diff(t) <= 0).any():
        i = int(np.argmax(np.diff(t) <= 0)) + 1
        raise LoadError(f"knots_t[{i}]: expected times that increase, got {t[i]} after {t[i - 1]}")
    if (r < 0).any():
        i = int(np.argmax(r < 0))
        raise LoadError(f"knots_r[{i}]: expected a rate >= 0, got {r[i]}")
    with np.errstate(over="ignore"):
        _not_too_many(float(np.sum((r[1:] + r[:-1]) / 2 * np.diff(t))), "knots_r")
    return _kernels.nhpp_times(t, r, rng)


def _not_too_many(expected: float, name: str) -> None:
    """A process expected to make more arrivals than one run can hold would run out of memory."""
    from ..sim.workload import MAX_ARRIVALS

    if not expected <= MAX_ARRIVALS:
        raise LoadError(f"{name}: expected at most {MAX_ARRIVALS:.0e} arrivals in all, got {expected:.3g} "
                        f"(rate x duration)")


def mmpp(rates, leave, jump, duration_s: float, rng: np.random.Generator, *, start_state: int | None = None):
    """(times, states) of a Markov-modulated Poisson process over ``[0, duration_s)``: state s
    emits at ``rates[s]`` and is left at ``leave[s]`` per s for state j with probability
    ``jump[s][j]``; the first state is drawn from the stationary distribution unless given."""
    rates, leave = _array(rates, "rates"), _array(leave, "leave")
    jump = np.asarray(jump, dtype=np.float64)
    n = len(rates)
    if n < 1 or len(leave) != n or jump.shape != (n, n):
        raise LoadError(f"rates, leave, jump: expected {n} rates, {n} leave rates and a {n}x{n} jump matrix; got "
                        f"{len(leave)} and {jump.shape}")
    for name, a in (("rates", rates), ("leave", leave)):
        if (a < 0).any():
            i = int(np.argmax(a < 0))
            raise LoadError(f"{name}[{i}]: expected a rate >= 0, got {a[i]}")
    if not np.isfinite(jump).all() or (jump < 0).any() or np.any(np.diag(jump) != 0):
        raise LoadError("jump: expected probabilities >= 0 with a zero diagonal")
    moving = leave > 0
    if not np.allclose(jump[moving].sum(axis=1), 1.0):
        i = int(np.flatnonzero(moving)[np.argmax(~np.isclose(jump[moving].sum(axis=1), 1.0))])
        raise LoadError(f"jump[{i}]: expected probabilities summing to 1, got {jump[i].sum():g}")
    duration = _positive(duration_s, "duration_s")
    with np.errstate(over="ignore"):
        _not_too_many(float(stationary(leave, jump) @ rates) * duration, "rates")
    if start_state is None:
        start_state = int(rng.choice(n, p=stationary(leave, jump)))
    elif not 0 <= start_state < n:
        raise LoadError(f"start_state: expected 0..{n - 1}, got {start_state}")
    return _kernels.mmpp_times(rates, leave, np.ascontiguousarray(jump), int(start_state), duration, rng)


def stationary(leave, jump) -> np.ndarray:
    """The share of time the MMPP spends in each state (of its continuous-time chain)."""
    leave, jump = np.asarray(leave, float), np.asarray(jump, float)
    q = jump * leave[:, None]
    np.fill_diagonal(q, -leave)
    n = len(leave)
    a = np.vstack([q.T, np.ones(n)])
    b = np.r_[np.zeros(n), 1.0]
    pi = np.linalg.lstsq(a, b, rcond=None)[0]
    pi = np.clip(pi, 0, None)
    return pi / pi.sum()


def hawkes(mu: float, alpha: float, beta: float, duration_s: float, rng: np.random.Generator) -> np.ndarray:
    """Arrival times of a Hawkes process: baseline ``mu`` per s, each arrival triggering on
    average ``alpha`` (< 1) more with an exponential delay of mean ``1 / beta`` s."""
    mu = _positive(mu, "mu")
    alpha = _positive(alpha, "alpha", strict=False)
    if alpha >= 1:
        raise LoadError(f"alpha: expected a branching ratio < 1 (each arrival triggers alpha more on average; 1 or "
                        f"more explodes), got {alpha}")
    duration = _positive(duration_s, "duration_s")
    _not_too_many(mu * duration / (1 - alpha), "mu")
    return _kernels.hawkes_times(mu, alpha, _positive(beta, "beta"), duration, rng)


__all__ = ["LoadError", "hawkes", "mmpp", "nhpp", "stationary"]
