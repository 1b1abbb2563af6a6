"""From a load profile to the arrival table the twin consumes.

A load profile (``twin forecast predict``) gives, per step, the request rate (its median and
quantile columns) and, when it came from a trace, the class mix (``mix_<class>``).  ``workload``
turns a window of it into arrivals: a non-homogeneous Poisson process whose rate is linear
between the steps' centres (each step's value is its average rate), at the chosen quantile of
the forecast (the median by default; 0.9 to tune for a busy day); classes drawn per arrival from
its step's mix, or the model's shares; payload sizes and keys from the model, as calibration
found them.  With ``bursts`` (an MMPP fitted on a trace, ``twin.load.fit.fit_mmpp``), the rate is
multiplied by a hidden Markov level of mean 1 (each state's rate over the fit's mean): a doubly
stochastic Poisson process that keeps the profile's mean and the trace's bursts, their heights
and how long they last.

>>> import numpy as np, pandas as pd
>>> from twin.spec import load_model
>>> model = load_model("models/validation/mm1.yaml")
>>> idx = pd.date_range("2026-01-01", periods=4, freq="5min", tz="UTC")
>>> profile = pd.DataFrame({"requests_per_s": [1.0, 2.0, 3.0, 2.0], "requests_per_s_q0.9": [2.0, 3.0, 4.0, 3.0]},
...                        index=idx)
>>> w = workload(profile, model, np.random.default_rng(0))
>>> w.duration_s, len(w), w.class_names
(1200.0, 2435, ('job',))
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..sim.workload import MAX_ARRIVALS, MIN_ARRIVALS, Workload, fill_request_data
from ..spec import SystemModel
from . import _kernels
from .arrivals import LoadError, nhpp, stationary


def rate_column(profile: pd.DataFrame, target: str = "requests_per_s", quantile: float | None = None) -> str:
    """The column holding ``target`` at ``quantile`` (None: the median, or the column itself)."""
    if quantile is None:
        if target in profile:
            return target
        quantile = 0.5
    name = f"{target}_q{quantile:g}"
    if name not in profile:
        have = [c for c in profile.columns if c == target or c.startswith(f"{target}_q")]
        raise LoadError(f"load profile: no column {name!r} for quantile {quantile:g} of {target}; it has "
                        f"{', '.join(have) or 'none of ' + target}")
    return name


def _numbers(profile: pd.DataFrame, column: str) -> np.ndarray:
    """A profile column as floats; a cell that is not a number is a ``LoadError`` naming it."""
    values = pd.to_numeric(profile[column], errors="coerce")
    bad = (values.isna() & profile[column].notna()).to_numpy()
    if bad.any():
        i = int(np.argmax(bad))
        raise LoadError(f"load profile, {column} at {profile.index[i]}: expected a number, "
                        f"got {profile[column].iloc[i]!r}")
    return values.to_numpy(float)


def profile_rates(profile: pd.DataFrame, quantile: float | None = None) -> np.ndarray:
    """The request rate of each step at ``quantile``, checked finite and >= 0."""
    column = rate_column(profile, quantile=quantile)
    rates = _numbers(profile, column)
    bad = ~np.isfinite(rates) | (rates < 0)
    if bad.any():
        i = int(np.argmax(bad))
        raise LoadError(f"load profile, {column} at {profile.index[i]}: expected a rate >= 0, got {rates[i]}")
    return rates


def workload(profile: pd.DataFrame, model: SystemModel, rng: np.random.Generator, *,
             quantile: float | None = None, start=None, end=None, sessions=None, bursts=None,
             window_field: str | None = None) -> Workload:
    """Arrivals over the profile's steps in [``start``, ``end``) (default: all of them); times in
    seconds from the first step's start.  With ``sessions`` (a ``twin.load.sessions.SessionModel``)
    the requests come from user sessions that keep the profile's ``user_concurrency`` (at the
    quantile) active, classes by the session graph, and carry their session numbers.  With
    ``bursts`` (a ``twin.load.fit.MMPPFit``) the rate is modulated by its hidden levels.  A window
    expected to bring fewer than 1 or more than ``MAX_ARRIVALS`` arrivals is an error that names
    ``window_field`` (the setting that made the window) when given."""
    if not isinstance(profile.index, pd.DatetimeIndex) or len(profile) < 1:
        raise LoadError("load profile: expected one row per step on a time index (a profile from twin forecast)")
    if start is not None or end is not None:
        lo = pd.Timestamp(start) if start is not None else profile.index[0]
        hi = pd.Timestamp(end) if end is not None else profile.index[-1] + _step(profile)
        profile = profile[(profile.index >= lo) & (profile.index < hi)]
        if profile.empty:
            raise LoadError(f"load profile: no step in [{lo}, {hi})")
    step = _step(profile).total_seconds()
    if sessions is not None:
        if bursts is not None:
            raise LoadError("bursts: not with sessions; session starts follow the profile's user concurrency")
        return _session_workload(profile, model, rng, quantile, sessions, step)
    rates = profile_rates(profile, quantile)
    n = len(rates)
    duration = n * step
    with np.errstate(over="ignore"):  # 1e308 req/s sums to inf: too many, said below
        expected = float(np.sum(rates)) * step
    _check_expected(expected, duration, rate_column(profile, quantile=quantile), window_field)
    # knots at the steps' centres, held flat to both ends: each step keeps (nearly) its own mean
    knots_t = np.r_[0.0, (np.arange(n) + 0.5) * step, duration]
    knots_r = np.r_[rates[0], rates, rates[-1]]
    times_rng, class_rng, data_rng = rng.spawn(3)
    if bursts is None:
        t = nhpp(knots_t, knots_r, times_rng)
    else:
        t = _kernels.nhpp_times(*modulated(knots_t, knots_r, bursts, duration, times_rng), times_rng)
    names = tuple(model.classes)
    probs = _mix(profile, model, names)
    which = np.minimum((t // step).astype(np.int64), n - 1)
    codes = _draw_classes(probs[which], class_rng)
    size, key = fill_request_data(model, codes, data_rng)
    return Workload(t, codes, size, key, np.full(len(t), -1, np.int64), names, float(duration))


def _check_expected(expected: float, duration: float, column: str, window_field: str | None) -> None:
    """The arrivals a window should bring: at least one, at most what one run can hold."""
    where = f"{window_field} ({duration:g} s) at the load profile's {column}" if window_field else \
        f"load profile, {column}, over {duration:g} s"
    if expected > MAX_ARRIVALS:
        raise LoadError(f"{where}: expected at most {MAX_ARRIVALS:.0e} arrivals in all, got {expected:.3g}")
    if expected < MIN_ARRIVALS:
        raise LoadError(f"{where}: expected a window in which at least {MIN_ARRIVALS:g} arrival is expected, got "
                        f"{expected:.3g}")


def modulated(knots_t, knots_r, bursts, duration: float, rng: np.random.Generator):
    """The piecewise-linear rate (knots) multiplied by the MMPP's level path over [0, duration):
    a level holds between switches, so each switch is a pair of knots at one time (a jump)."""
    levels = np.asarray(bursts.rates, float) / bursts.rate_per_s
    first = int(rng.choice(len(levels), p=stationary(bursts.leave, bursts.jump)))
    switch_t, states = _kernels.markov_path(np.asarray(bursts.leave, float), np.asarray(bursts.jump, float), first,
                                            float(duration), rng)
    t = np.union1d(knots_t, switch_t)
    base = np.interp(t, knots_t, knots_r)
    level = levels[states[np.searchsorted(switch_t, t[:-1], side="right") - 1]]  # on [t_i, t_i+1)
    return (np.column_stack([t[:-1], t[1:]]).ravel(),
            np.column_stack([base[:-1] * level, base[1:] * level]).ravel())


def _session_workload(profile, model, rng, quantile, sessions, step) -> Workload:
    users = _numbers(profile, rate_column(profile, "user_concurrency", quantile))
    if (~np.isfinite(users) | (users < 0)).any():
        raise LoadError("load profile: user_concurrency must hold counts >= 0")
    strangers = [c for c in sessions.classes if c not in model.classes]
    if strangers:
        raise LoadError(f"sessions: class(es) {', '.join(strangers)} are not in the model (it has "
                        f"{', '.join(model.classes)})")
    n = len(users)
    duration = n * step
    knots_t = np.r_[0.0, (np.arange(n) + 0.5) * step, duration]
    knots_u = np.r_[users[0], users, users[-1]]
    walk_rng, data_rng = rng.spawn(2)
    t, c, s = sessions.generate(knots_t, knots_u, duration, walk_rng)
    names = tuple(model.classes)
    codes = np.array([names.index(k) for k in sessions.classes], np.int16)[c]
    size, key = fill_request_data(model, codes, data_rng)
    return Workload(t, codes, size, key, s.astype(np.int64), names, float(duration))


def _step(profile: pd.DataFrame) -> pd.Timedelta:
    if len(profile) >= 2:
        steps = np.diff(profile.index.asi8)
        if not (steps == steps[0]).all() or steps[0] <= 0:
            raise LoadError("load profile: expected steps of one length, in time order")
        return pd.Timedelta(int(steps[0]), unit="ns")
    freq = getattr(profile.index, "freq", None)
    if freq is None:
        raise LoadError("load profile: a single row needs a frequency on its index to give the step length")
    return pd.Timedelta(freq)


def _mix(profile: pd.DataFrame, model: SystemModel, names: tuple[str, ...]) -> np.ndarray:
    """Class probabilities per step, (steps, classes): the profile's mix, else the model's shares."""
    mix_cols = [c for c in profile.columns if c.startswith("mix_")]
    if not mix_cols:
        shares = np.array([c.share for c in model.classes.values()], float)
        return np.tile(shares / shares.sum(), (len(profile), 1))
    strangers = [c for c in mix_cols if c[4:] not in names]
    if strangers:
        raise LoadError(f"load profile: {', '.join(strangers)}: no such class in the model (it has "
                        f"{', '.join(names)}); rename the classes of the trace or of the model")
    m = np.column_stack([_numbers(profile, f"mix_{n}") if f"mix_{n}" in profile else np.zeros(len(profile))
                         for n in names])
    m[np.isnan(m)] = 0.0
    if (m < 0).any() or not np.isfinite(m).all():
        raise LoadError("load profile: class mix columns must hold shares >= 0")
    total = m.sum(axis=1, keepdims=True)
    if (total <= 0).any():
        i = int(np.argmax(total[:, 0] <= 0))
        raise LoadError(f"load profile: the class mix at {profile.index[i]} is empty")
    return m / total


def _draw_classes(p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One class per row of probabilities ``p`` (n, classes), by inversion of the row's CDF."""
    if p.shape[1] == 1:
        return np.zeros(len(p), np.int16)
    cdf = np.cumsum(p, axis=1)
    u = rng.random(len(p))[:, None] * cdf[:, -1:]
    return np.minimum((u >= cdf).sum(axis=1), p.shape[1] - 1).astype(np.int16)



def read_profile(path) -> pd.DataFrame:
    """A load profile written by ``twin forecast predict`` (CSV or Parquet, a ``timestamp`` column
    or index), on a UTC time index."""
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise LoadError(f"{path}: no such file")
    try:
        frame = pd.read_parquet(path) if path.suffix.lower() in (".parquet", ".pq") else pd.read_csv(path)
    except Exception as e:  # pandas raises many kinds; the user needs the file and the reason
        raise LoadError(f"{path}: cannot read a load profile ({type(e).__name__}: {str(e).splitlines()[0]})") from None
    if "timestamp" in frame.columns:
        frame = frame.set_index("timestamp")
    try:
        index = pd.DatetimeIndex(pd.to_datetime(frame.index, utc=True))
    except (ValueError, TypeError) as e:
        raise LoadError(f"{path}: timestamp: expected times with a zone, as twin forecast writes them ({e})") from None
    if frame.empty:
        raise LoadError(f"{path}: the load profile has no rows")
    frame.index = index
    return frame


def summary(w: Workload) -> dict:
    """What a generated workload holds: arrivals, rates, class mix, sizes, keys."""
    per_min = np.bincount((w.time_s // 60).astype(np.int64), minlength=max(1, int(np.ceil(w.duration_s / 60))))
    mix = np.bincount(w.cls, minlength=len(w.class_names)) / max(1, len(w))
    sized = w.size_bytes[w.size_bytes > 0]
    return {"arrivals": int(len(w)), "duration_s": float(w.duration_s),
            "mean_rate_per_s": float(len(w) / w.duration_s) if w.duration_s else 0.0,
            "peak_minute_rate_per_s": float(per_min.max() / 60) if len(per_min) else 0.0,
            "class_mix": {n: float(m) for n, m in zip(w.class_names, mix)},
            "size_bytes_mean": float(sized.mean()) if len(sized) else 0.0,
            "size_bytes_p99": float(np.quantile(sized, 0.99)) if len(sized) else 0.0,
            "distinct_keys": int(len(np.unique(w.key[w.key >= 0])))}


__all__ = ["modulated", "profile_rates", "rate_column", "read_profile", "summary", "workload"]
