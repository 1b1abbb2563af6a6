"""User sessions: a customer behaviour model graph fitted from a trace, driven by concurrency.

``fit_sessions`` reads a trace whose requests carry session ids and a class: which class a
session starts with, the probability of each next class (or of leaving) after each class, and
the mean think time after each class (the gaps between a session's consecutive requests).
``SessionModel.generate`` makes requests from a user-concurrency curve: by Little's law,
sessions start at rate concurrency / mean session length, as a Poisson process, and each
session walks the graph (``_kernels.session_requests``).

>>> import numpy as np, pandas as pd
>>> m = SessionModel(("browse", "buy"), np.array([1.0, 0.0]),
...                  np.array([[0.6, 0.2, 0.2], [0.0, 0.0, 1.0]]), np.array([30.0, 10.0]))
>>> round(m.mean_requests(), 3), round(m.mean_session_s(), 1)
(3.0, 60.0)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import _kernels
from .arrivals import LoadError, nhpp


@dataclass(frozen=True)
class SessionModel:
    classes: tuple[str, ...]
    entry: np.ndarray  # (classes,): the first class of a session
    transitions: np.ndarray  # (classes, classes + 1): next class, last column leaving
    think_mean_s: np.ndarray  # (classes,): mean think time after a request of each class
    sessions: int = 0  # how many sessions it was fitted from

    def _visits(self) -> np.ndarray:
        """Expected requests of each class per session: entry (I - Q)^-1 over the transient part."""
        q = self.transitions[:, :-1]
        return np.linalg.solve((np.eye(len(self.classes)) - q).T, self.entry)

    def mean_requests(self) -> float:
        return float(self._visits().sum())

    def mean_session_s(self) -> float:
        """Expected session length: the think times between its requests."""
        leave = self.transitions[:, -1]
        return float(self._visits() @ ((1 - leave) * self.think_mean_s))

    def class_mix(self) -> np.ndarray:
        v = self._visits()
        return v / v.sum()

    def generate(self, knots_t, concurrency, duration_s: float, rng: np.random.Generator):
        """(times, classes, sessions) of the requests of sessions that keep about ``concurrency``
        users active (linear between the knots), sorted by time; sessions start at rate
        concurrency / mean session length."""
        length = self.mean_session_s()
        if not length > 0:
            raise LoadError("sessions: the fitted sessions last no time (one request each): they cannot be "
                            "driven by a concurrency curve; use the request rate instead")
        start_rng, walk_rng = rng.spawn(2)
        starts = nhpp(knots_t, np.asarray(concurrency, float) / length, start_rng)
        cdf_entry = np.cumsum(self.entry)
        cdf_next = np.cumsum(self.transitions, axis=1)
        cdf_entry[-1] = cdf_next[:, -1] = 1.0
        t, c, s = _kernels.session_requests(starts, cdf_entry, np.ascontiguousarray(cdf_next),
                                            np.asarray(self.think_mean_s, float), float(duration_s), walk_rng)
        order = np.argsort(t, kind="stable")
        return t[order], c[order], s[order]


def fit_sessions(trace: pd.DataFrame, *, min_sessions: int = 20) -> SessionModel:
    """The session graph of a trace with ``timestamp``, ``class`` and ``session`` columns (one row
    per entry request)."""
    for col in ("timestamp", "class", "session"):
        if col not in trace:
            raise LoadError(f"sessions: the trace has no {col!r} column (session ids are needed to fit sessions)")
    rows = trace.dropna(subset=["session"])
    if rows["session"].nunique() < min_sessions:
        raise LoadError(f"sessions: {rows['session'].nunique()} session(s) in the trace; at least {min_sessions} "
                        f"are needed to fit a behaviour graph")
    ts = pd.DatetimeIndex(rows["timestamp"]).asi8 / 1e9 if isinstance(rows["timestamp"].dtype, pd.DatetimeTZDtype) \
        else rows["timestamp"].to_numpy(float)
    frame = pd.DataFrame({"t": ts, "cls": rows["class"].astype(str).to_numpy(),
                          "session": rows["session"].astype(str).to_numpy()}).sort_values(["session", "t"], kind="stable")
    classes = tuple(sorted(frame["cls"].unique()))
    code = pd.Categorical(frame["cls"], categories=list(classes)).codes.astype(np.int64)
    sess = frame["session"].to_numpy()
    first = np.r_[True, sess[1:] != sess[:-1]]
    last = np.r_[sess[1:] != sess[:-1], True]
    k = len(classes)
    entry = np.bincount(code[first], minlength=k).astype(float)
    counts = np.zeros((k, k + 1))
    nxt = np.where(last, k, np.r_[code[1:], 0])
    np.add.at(counts, (code, nxt), 1.0)
    gaps = np.r_[np.diff(frame["t"].to_numpy()), 0.0]
    think_sum = np.bincount(code[~last], weights=gaps[~last], minlength=k)
    think_n = np.bincount(code[~last], minlength=k)
    overall = think_sum.sum() / max(think_n.sum(), 1)
    think = np.where(think_n > 0, think_sum / np.maximum(think_n, 1), overall)
    return SessionModel(classes, entry / entry.sum(), counts / counts.sum(axis=1, keepdims=True), think,
                        int(first.sum()))


__all__ = ["SessionModel", "fit_sessions"]
