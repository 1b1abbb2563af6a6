"""Fitted forecasters saved as data, never as code: what ``twin forecast fit`` writes and
``twin forecast predict --fitted`` reads.

A saved model is one ``.npz`` archive of numeric arrays (``np.savez``) plus a ``header`` member:
UTF-8 JSON, stored as bytes, with the format name and version, the model's name, horizon,
step, targets and the end of its training data, and a tree that says, for the fitted model and
each of its parts, its kind, its parameters and which arrays hold its state:

- ``seasonal_naive``: the season length and the in-sample errors per target;
- ``statistical`` (MSTL / AutoETS): statsforecast's fitted state is a web of Python objects, so
  the *training history* is stored instead, and the model is fitted again on it when loaded
  (fitting is deterministic: the same history gives the same forecast bit for bit; it costs the
  fit's time once per load);
- ``events``: the base model's part and the learned effect profiles;
- ``ensemble``: its members' parts;
- ``lstm``: the layout, scalers and interval factors, and each network's weights as the leaves
  of its equinox pytree (``jax.tree_util``), checked against the shapes a network of the saved
  sizes has (built abstractly: a hostile header cannot make it allocate).

Reading never runs code from the file: ``np.load(..., allow_pickle=False)`` refuses object
arrays, the header is plain JSON, and a wrong, foreign, truncated or corrupt file, or one of
another format version, is a ``TwinError`` naming the file.

>>> import numpy as np, pandas as pd, io
>>> from twin.forecast.baselines import SeasonalNaive
>>> idx = pd.date_range("2026-01-01", periods=72, freq="h", tz="UTC")
>>> h = History(pd.DataFrame({"requests_per_s": 10 + np.arange(72.0) % 24}, index=idx))
>>> data = dumps(SeasonalNaive("daily").fit(h), model="seasonal_naive_daily", horizon=24, trained_until=idx[-1],
...              step=h.step, targets=h.targets)
>>> loads(data, "m.npz").fitted.predict(h, 2).quantile("requests_per_s", 0.5).tolist()
[10.0, 11.0]
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..spec import TwinError
from .base import Fitted, History

FORMAT = "twin-forecast-model"
VERSION = 1
#: Largest saved model read (bytes, on disk and unpacked): far above any real one.
MAX_BYTES = 1 << 30
KINDS = ("seasonal_naive", "statistical", "events", "ensemble", "lstm")


@dataclass(frozen=True)
class Saved:
    """A saved model as read back: the fitted forecaster, its interval recalibration (or None)
    and what it was fitted for."""

    model: str
    fitted: Fitted
    recalibration: object | None
    horizon: int
    trained_until: pd.Timestamp
    step: pd.Timedelta
    targets: tuple[str, ...]


class _Bad(Exception):
    """The file is not what ``dumps`` writes; the message says what was wrong."""


def _need(ok, what: str) -> None:
    if not ok:
        raise _Bad(what)


# -- writing ---------------------------------------------------------------------------------

class _Arrays:
    def __init__(self):
        self.arrays: dict[str, np.ndarray] = {}

    def put(self, a) -> dict:
        a = np.asarray(a)
        if a.dtype.kind not in "biuf":
            raise TypeError(f"only numeric arrays are saved, got {a.dtype}")
        key = f"a{len(self.arrays)}"
        self.arrays[key] = a
        return {"array": key}


def _encode(fitted, out: _Arrays) -> dict:
    from .baselines import _NaiveFit, _StatsFit
    from .events import _EventFit
    from .select import _EnsembleFit

    if isinstance(fitted, _NaiveFit):
        return {"kind": "seasonal_naive", "name": fitted.name, "m": int(fitted.m), "notes": list(fitted.notes),
                "errors": {t: out.put(np.asarray(e, np.float64)) for t, e in fitted.errors.items()}}
    if isinstance(fitted, _StatsFit):
        if fitted.history is None:
            raise TypeError("this statistical fit does not keep its training history: it cannot be saved")
        v = fitted.history.values
        return {"kind": "statistical", "name": fitted.name, "index": out.put(v.index.asi8),
                "targets": list(v.columns), "values": out.put(v.to_numpy(np.float64))}
    if isinstance(fitted, _EventFit):
        e = fitted.effects
        return {"kind": "events", "name": fitted.name, "notes": list(fitted.notes), "base": _encode(fitted.base, out),
                "profiles": {c: {t: out.put(p) for t, p in by.items()} for c, by in e.profiles.items()},
                "occurrences": {c: int(n) for c, n in e.occurrences.items()}, "unseen": list(e.unseen)}
    if isinstance(fitted, _EnsembleFit):
        return {"kind": "ensemble", "name": fitted.name, "members": [_encode(m, out) for m in fitted.members]}
    from .lstm import LSTMFitted

    if isinstance(fitted, LSTMFitted):
        return _encode_lstm(fitted, out)
    raise TypeError(f"cannot save a {type(fitted).__name__}")


def _scaler(s, out: _Arrays) -> dict | None:
    return None if s is None else {"log": out.put(s.log), "mean": out.put(s.mean), "std": out.put(s.std)}


def _encode_lstm(fitted, out: _Arrays) -> dict:
    import equinox as eqx
    import jax

    lay = fitted.layout
    nets = []
    for net in fitted.nets:
        sizes = {"enc_features": net.cell.input_size, "dec_features": net.known.in_features,
                 "horizon": int(net.step_bias.shape[0]), "hidden": net.cell.hidden_size,
                 "n_targets": net.n_targets, "n_quantiles": net.n_quantiles, "anchor": net.anchor}
        leaves = jax.tree_util.tree_leaves(eqx.filter(net, eqx.is_array))
        nets.append({"sizes": {k: int(v) for k, v in sizes.items()},
                     "leaves": [out.put(np.asarray(x)) for x in leaves]})
    layout = {"targets": list(lay.targets), "known": list(lay.known), "observed": list(lay.observed),
              "step_ns": int(lay.step.value), "horizon": int(lay.horizon), "lookback": int(lay.lookback),
              "patch": int(lay.patch), "seasons": [int(s) for s in lay.seasons],
              "quantiles": [float(q) for q in lay.quantiles]}
    return {"kind": "lstm", "layout": layout, "nets": nets, "target_scaler": _scaler(fitted.target_scaler, out),
            "covariate_scaler": _scaler(fitted.covariate_scaler, out),
            "interval_scale": out.put(fitted.interval_scale), "notes": list(fitted.notes),
            "report": json.loads(json.dumps(fitted.report, default=str))}


def dumps(fitted: Fitted, *, model: str, horizon: int, trained_until, step, targets, recalibration=None) -> bytes:
    """The bytes of a saved model (see the module)."""
    out = _Arrays()
    header = {"format": FORMAT, "version": VERSION, "model": model, "horizon": int(horizon),
              "trained_until": pd.Timestamp(trained_until).isoformat(), "step_ns": int(pd.Timedelta(step).value),
              "targets": list(targets), "fitted": _encode(fitted, out),
              "recalibration": None if recalibration is None else {
                  "quantiles": [float(q) for q in recalibration.quantiles], "windows": int(recalibration.windows),
                  "factors": {t: out.put(f) for t, f in recalibration.factors.items()}}}
    buf = io.BytesIO()
    np.savez(buf, header=np.frombuffer(json.dumps(header).encode("utf-8"), np.uint8), **out.arrays)
    return buf.getvalue()


def save(path, fitted: Fitted, **kwargs) -> None:
    """Write a saved model whole or not at all (keyword arguments as ``dumps``)."""
    from ..rundir import write_atomically

    write_atomically(path, dumps(fitted, **kwargs))


# -- reading ---------------------------------------------------------------------------------

class _Reader:
    def __init__(self, npz):
        self.npz = npz

    def get(self, ref, kinds: str = "f", ndim: int | None = None) -> np.ndarray:
        _need(isinstance(ref, dict) and isinstance(ref.get("array"), str) and ref["array"] in self.npz.files,
              f"a reference to a missing array: {str(ref)[:60]}")
        a = self.npz[ref["array"]]  # an object array raises here: pickles are never loaded
        _need(a.dtype.kind in kinds, f"array {ref['array']} holds {a.dtype}, expected a numeric array")
        _need(ndim is None or a.ndim == ndim, f"array {ref['array']} has {a.ndim} dimensions, expected {ndim}")
        return a


def _strs(v, what: str) -> tuple[str, ...]:
    _need(isinstance(v, list) and all(isinstance(x, str) for x in v), f"{what}: expected a list of names")
    return tuple(v)


def _int(v, what: str, low: int = 0, high: int = 10**9) -> int:
    _need(isinstance(v, int) and not isinstance(v, bool) and low <= v <= high,
          f"{what}: expected a whole number in {low}..{high}, got {str(v)[:30]}")
    return v


def _str(v, what: str) -> str:
    _need(isinstance(v, str), f"{what}: expected text")
    return v


def _decode(node, r: _Reader, depth: int = 0):
    _need(isinstance(node, dict) and depth < 8, "a model part that is not a mapping")
    kind = node.get("kind")
    _need(kind in KINDS, f"unknown model kind {str(kind)[:40]!r}; expected one of {', '.join(KINDS)}")
    if kind == "seasonal_naive":
        from .baselines import _NaiveFit

        errors = node["errors"]
        _need(isinstance(errors, dict), "seasonal_naive errors: expected a mapping")
        return _NaiveFit(_str(node["name"], "name"), _int(node["m"], "m", 1),
                         {_str(t, "target"): r.get(e, "f", 1) for t, e in errors.items()},
                         _strs(node["notes"], "notes"))
    if kind == "statistical":
        from .baselines import StatsBaseline

        idx, values = r.get(node["index"], "i", 1), r.get(node["values"], "f", 2)
        targets = _strs(node["targets"], "targets")
        _need(values.shape == (len(idx), len(targets)), "statistical history: its arrays do not match")
        index = pd.DatetimeIndex(pd.to_datetime(idx, unit="ns", utc=True), name="timestamp")
        history = History(pd.DataFrame(values, index=index, columns=list(targets)))
        return StatsBaseline(name=_str(node["name"], "name")).fit(history)
    if kind == "events":
        from .events import Effects, _EventFit

        profiles = {_str(c, "event column"): {_str(t, "target"): r.get(p, "f", 1) for t, p in by.items()}
                    for c, by in node["profiles"].items()}
        occurrences = {_str(c, "event column"): _int(n, "occurrences", 1) for c, n in node["occurrences"].items()}
        _need(set(profiles) <= set(occurrences), "events: an effect without its count of occurrences")
        effects = Effects(profiles, occurrences, _strs(node["unseen"], "unseen"))
        return _EventFit(_str(node["name"], "name"), _decode(node["base"], r, depth + 1), effects,
                         _strs(node["notes"], "notes"))
    if kind == "ensemble":
        from .select import Ensemble, _EnsembleFit

        members = node["members"]
        _need(isinstance(members, list) and members, "ensemble: expected a list of members")
        return _EnsembleFit(Ensemble((), name=_str(node["name"], "name")),
                            tuple(_decode(m, r, depth + 1) for m in members))
    return _decode_lstm(node, r)


def _decode_scaler(node, r: _Reader):
    from .lstm import _Scaler

    if node is None:
        return None
    s = _Scaler(r.get(node["log"], "b", 1), r.get(node["mean"], "f", 1), r.get(node["std"], "f", 1))
    _need(len(s.log) == len(s.mean) == len(s.std), "a scaler whose arrays do not match")
    return s


def _decode_lstm(node, r: _Reader):
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    from .lstm import LSTMFitted, _Layout, _Net

    lay = node["layout"]
    layout = _Layout(_strs(lay["targets"], "targets"), _strs(lay["known"], "known"),
                     _strs(lay["observed"], "observed"), pd.Timedelta(_int(lay["step_ns"], "step_ns", 1, 10**18),
                                                                       unit="ns"),
                     _int(lay["horizon"], "horizon", 1, 10**6), _int(lay["lookback"], "lookback", 1, 10**7),
                     _int(lay["patch"], "patch", 1, 10**7),
                     tuple(_int(s, "seasons", 1, 10**7) for s in lay["seasons"]),
                     tuple(float(q) for q in lay["quantiles"]))
    _need(0.5 in layout.quantiles and layout.lookback % layout.patch == 0, "lstm layout: inconsistent")
    nets = []
    for n in node["nets"]:
        sizes = {k: _int(n["sizes"][k], k, 0, 10**6) for k in
                 ("enc_features", "dec_features", "horizon", "hidden", "n_targets", "n_quantiles", "anchor")}
        # the network's shape, built abstractly (no memory), then filled with the saved leaves
        shape = eqx.filter_eval_shape(lambda: _Net(**sizes, key=jax.random.PRNGKey(0)))
        params, static = eqx.partition(shape, lambda x: isinstance(x, jax.ShapeDtypeStruct))
        want, treedef = jax.tree_util.tree_flatten(params)
        _need(isinstance(n["leaves"], list) and len(n["leaves"]) == len(want),
              "lstm: the network's weights do not match")
        leaves = [r.get(ref, "f") for ref in n["leaves"]]
        _need(all(a.shape == w.shape and a.dtype == w.dtype for a, w in zip(leaves, want)),
              "lstm: the network's weights do not match its sizes")
        nets.append(eqx.combine(jax.tree_util.tree_unflatten(treedef, [jnp.asarray(a) for a in leaves]), static))
    _need(nets, "lstm: no network")
    scale = r.get(node["interval_scale"], "f", 3)
    _need(scale.shape == (len(nets), len(layout.targets), len(layout.quantiles)), "lstm: interval factors do not match")
    report = node["report"]
    _need(isinstance(report, dict), "lstm report: expected a mapping")
    return LSTMFitted(tuple(nets), layout, _decode_scaler(node["target_scaler"], r),
                      _decode_scaler(node["covariate_scaler"], r), scale, _strs(node["notes"], "notes"), report)


def _recalibration(node, r: _Reader):
    from .calibrate import Recalibration

    if node is None:
        return None
    qs = tuple(float(q) for q in node["quantiles"])
    _need(0.5 in qs, "recalibration: the quantiles lack the median")
    factors = {_str(t, "target"): r.get(f, "f", 1) for t, f in node["factors"].items()}
    _need(all(len(f) == len(qs) for f in factors.values()), "recalibration: factors do not match its quantiles")
    return Recalibration(qs, factors, _int(node["windows"], "windows"))


def _archive(data: bytes):
    """The archive, its members checked before any is loaded: numbers only, and no array larger
    than its member (a header may not make numpy allocate what the file does not hold)."""
    from numpy.lib import format as npy

    _need(data[:4] == b"PK\x03\x04", "not an .npz archive")
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        _need(sum(i.file_size for i in z.infolist()) <= MAX_BYTES, f"unpacks to more than {MAX_BYTES} bytes")
        for info in z.infolist():
            with z.open(info) as f:
                version = npy.read_magic(f)
                _need(version in ((1, 0), (2, 0)), f"{info.filename}: not a numpy array")
                read = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
                shape, _, dtype = read(f)  # the header is a literal, read without running code
            _need(not dtype.hasobject, f"{info.filename} holds Python objects, which a saved model never has")
            _need(int(np.prod(shape, dtype=object)) * dtype.itemsize <= info.file_size,
                  f"{info.filename}: its header claims more data than it holds")
    return np.load(io.BytesIO(data), allow_pickle=False)


def loads(data: bytes, source: str = "saved model") -> Saved:
    """A saved model from its bytes; ``source`` (the file) names it in errors."""
    what = f"{source}: not a forecast model written by `twin forecast fit`"
    try:
        npz = _archive(data)
        _need("header" in npz.files, "no header")
        raw = npz["header"]
        _need(raw.dtype == np.uint8 and raw.ndim == 1, "a header that is not text")
        header = json.loads(raw.tobytes().decode("utf-8"))
        _need(isinstance(header, dict) and header.get("format") == FORMAT, f"no {FORMAT} header")
        version = header.get("version")
        if version != VERSION:
            raise TwinError(f"{source}: a forecast model in format version {str(version)[:20]}; this twin reads "
                            f"version {VERSION}: fit it again with `twin forecast fit`")
        r = _Reader(npz)
        fitted = _decode(header["fitted"], r)
        return Saved(_str(header["model"], "model"), fitted, _recalibration(header["recalibration"], r),
                     _int(header["horizon"], "horizon", 1),
                     pd.Timestamp(_str(header["trained_until"], "trained_until")),
                     pd.Timedelta(_int(header["step_ns"], "step_ns", 1, 10**18), unit="ns"),
                     _strs(header["targets"], "targets"))
    except _Bad as e:
        raise TwinError(f"{what} ({e})") from None
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError, EOFError, OSError,
            RecursionError, zipfile.BadZipFile) as e:
        raise TwinError(f"{what} ({type(e).__name__}: {str(e)[:100]})") from None


def load(path) -> Saved:
    """Read a saved model (see the module); every problem is a ``TwinError`` naming ``path``."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_BYTES:
            raise TwinError(f"{path}: {path.stat().st_size} bytes, more than any saved forecast model "
                            f"({MAX_BYTES}); not a model written by `twin forecast fit`")
        data = path.read_bytes()
    except OSError as e:
        raise TwinError(f"{path}: cannot read the saved model ({e.strerror or e})") from None
    return loads(data, str(path))


__all__ = ["FORMAT", "VERSION", "Saved", "dumps", "load", "loads", "save"]
