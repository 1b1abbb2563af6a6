"""A global LSTM forecaster in JAX: multi-output, probabilistic, direct multi-horizon.

Architecture (one network for all targets, trained once, applied at any origin):

- **encoder**: an ``eqx.nn.LSTMCell`` scanned (``jax.lax.scan``) over the last ``lookback``
  steps before the origin, averaged in patches of ``patch`` steps so that the recurrence runs at
  most 48 times (the sequential part is what costs on a CPU, and within a patch of a fine series
  the detail is mostly noise).  Inputs per step: the scaled targets, the known covariates
  (so that a past event is not mistaken for a change of level) and the observed ones (social
  signals: they enter only here, before the origin).  Its last hidden state ``h`` sums up the
  context.
- **decoder**: one hidden layer shared by all ``horizon`` steps, which it outputs at once
  (direct multi-horizon): ``z_k = gelu(A h + b_k + D d_k)``, ``out_k = W z_k``, where ``b_k`` is
  a learned per-step bias (the step embedding) and ``d_k`` holds what is known of step ``k`` in
  advance: calendar phases (sin and cos of the time of day, week and year, from the UTC
  timestamps), the known covariates (calendar, events) and the targets a day, a week and 52 weeks
  earlier where the lookback reaches that far (seasonal lags, read from the encoder window).
- **non-crossing quantiles**: per target, the median comes out directly and the other trained
  quantiles as the median plus (or minus) cumulated softplus increments.

Loss: the pinball (quantile) loss ``max(q e, (q - 1) e)``, ``e = y - y_q``, averaged over all
trained quantiles, targets, horizon steps and windows, on the scaled targets.  Scaling, fitted on
the training history only: ``log1p`` for a target that is non-negative there, then standardised.
Quantiles commute with monotone maps, so quantiles of the scaled target map back to quantiles of
the target; forecasts of non-negative targets are clipped at 0.

Training: Adam with gradient-norm clipping, on windows (origins) of the training history,
``windows_per_epoch`` of them drawn afresh each epoch; early stopping on the windows whose
horizon lies in a time-ordered validation tail (the last tenth, at least two horizons) that the
training windows never reach into.  The same validation windows then calibrate the intervals:
each quantile's distance from the median is scaled so that the share of held-out values below
it matches its level (split-conformal style; a network is overconfident on windows it saw).
``members`` networks (three by default) are trained this way from different initialisations and
their quantiles averaged.  Every random choice comes from ``seed``: fits are bit for bit
reproducible on CPU unless the wall-clock budget ``max_train_seconds`` cut them short, which the
fit's notes then say.

>>> LSTMForecaster(horizon=24).name
'lstm'
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from functools import partial
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd

from twin.forecast.base import QUANTILES, Covariates, Fitted, Forecast, Forecaster, History, future_index

DAY = pd.Timedelta(days=1)
#: Most recurrent steps the encoder runs; longer lookbacks are grouped into patches.
MAX_ENCODER_STEPS = 48
#: Longest default lookback: a week of 5-minute steps.
MAX_LOOKBACK = 2016


class _Net(eqx.Module):
    """Encoder LSTM over patch means, then a per-step decoder layer; see the module docstring."""

    cell: eqx.nn.LSTMCell
    context: eqx.nn.Linear
    known: eqx.nn.Linear
    step_bias: jax.Array
    out: eqx.nn.Linear
    n_targets: int = eqx.field(static=True)
    n_quantiles: int = eqx.field(static=True)
    anchor: int = eqx.field(static=True)

    def __init__(self, enc_features, dec_features, horizon, hidden, n_targets, n_quantiles, anchor, *, key):
        k1, k2, k3, k4 = jax.random.split(key, 4)
        self.cell = eqx.nn.LSTMCell(enc_features, hidden, key=k1)
        self.context = eqx.nn.Linear(hidden, hidden, key=k2)
        self.known = eqx.nn.Linear(dec_features, hidden, use_bias=False, key=k3)
        self.step_bias = jnp.zeros((horizon, hidden))
        self.out = eqx.nn.Linear(hidden, n_targets * n_quantiles, key=k4)
        self.n_targets, self.n_quantiles, self.anchor = n_targets, n_quantiles, anchor

    def __call__(self, enc, dec):
        """``enc`` (patches, enc_features), ``dec`` (horizon, dec_features) -> scaled quantiles
        (horizon, targets, quantiles), non-decreasing along the last axis."""
        zeros = jnp.zeros(self.cell.hidden_size)
        (h, _), _ = jax.lax.scan(lambda state, x: (self.cell(x, state), None), (zeros, zeros), enc)
        z = jax.nn.gelu(self.context(h) + self.step_bias + jax.vmap(self.known)(dec))
        raw = jax.vmap(self.out)(z).reshape(-1, self.n_targets, self.n_quantiles)
        a = self.anchor
        mid = raw[..., a:a + 1]
        up = mid + jnp.cumsum(jax.nn.softplus(raw[..., a + 1:]), axis=-1)
        down = mid - jnp.cumsum(jax.nn.softplus(raw[..., :a][..., ::-1]), axis=-1)[..., ::-1]
        return jnp.concatenate([down, mid, up], axis=-1)


def _calendar(index: pd.DatetimeIndex) -> np.ndarray:
    """Phases of the day, week and year as sin/cos pairs, shape (len(index), 6)."""
    seconds = index.asi8 / 1e9
    periods = (86_400.0, 7 * 86_400.0, 365.2425 * 86_400.0)
    # the Unix epoch is a Thursday: shift so that the week phase starts on Monday 00:00
    angles = [2 * np.pi * ((seconds + (3 * 86_400.0 if p == periods[1] else 0.0)) % p) / p for p in periods]
    return np.stack([f(a) for a in angles for f in (np.sin, np.cos)], axis=1)


@dataclass(frozen=True, eq=False)
class _Scaler:
    """Per-column transform fitted on training data: optional log1p, then (x - mean) / std."""

    log: np.ndarray
    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray, *, bounded_as_is: bool) -> "_Scaler":
        lo, hi = np.nanmin(x, axis=0), np.nanmax(x, axis=0)
        keep = (lo >= -1) & (hi <= 1) if bounded_as_is else np.zeros(x.shape[1], bool)
        log = (lo >= 0) & ~keep
        t = np.where(log, np.log1p(np.where(log, np.maximum(x, 0), 0)), x)
        mean, std = np.nanmean(t, axis=0), np.nanstd(t, axis=0)
        std = np.where(std > 1e-8, std, 1.0)
        return cls(log, np.where(keep, 0.0, mean), np.where(keep, 1.0, std))

    def transform(self, x: np.ndarray) -> np.ndarray:
        t = np.where(self.log, np.log1p(np.where(self.log, np.maximum(x, 0), 0)), x)
        return (t - self.mean) / self.std

    def inverse(self, z: np.ndarray) -> np.ndarray:
        t = z * self.std + self.mean
        return np.where(self.log, np.expm1(np.where(self.log, np.minimum(t, 700.0), 0)), t)


@dataclass(frozen=True)
class _Layout:
    """Shapes and column choices fixed at fit time."""

    targets: tuple[str, ...]
    known: tuple[str, ...]
    observed: tuple[str, ...]
    step: pd.Timedelta
    horizon: int
    lookback: int  # a multiple of patch
    patch: int
    seasons: tuple[int, ...]  # seasons (in steps) whose lagged targets the decoder reads
    quantiles: tuple[float, ...]

    def patches(self, enc):
        """Encoder rows (lookback, features) -> patch means (lookback / patch, features)."""
        return enc.reshape(self.lookback // self.patch, self.patch, -1).mean(axis=1)

    def lag_offsets(self) -> np.ndarray:
        """For each horizon step k and season, k minus whole seasons: the latest step before the
        origin at the same phase of that season; shape (horizon * len(seasons),), all < 0."""
        k = np.arange(self.horizon)
        return np.concatenate([k - s * np.ceil((k + 1) / s).astype(int) for s in self.seasons])


def _features(layout, tscale, cscale, values: pd.DataFrame, covs: pd.DataFrame | None, index):
    """Scaled arrays over ``index``: targets (T, n), encoder inputs (T, f_enc), decoder inputs
    without the seasonal lags (T, f_dec).  Missing covariate values become 0 (the column mean)."""
    y = tscale.transform(values.to_numpy(np.float64)) if values is not None else None
    cal = _calendar(index)
    cols = (*layout.known, *layout.observed)
    c = cscale.transform(covs[list(cols)].to_numpy(np.float64)) if cols else np.zeros((len(index), 0))
    c = np.nan_to_num(c, nan=0.0)
    dec = np.concatenate([cal, c[:, :len(layout.known)]], axis=1)
    enc = None if y is None else np.concatenate([y, c], axis=1)
    return y, enc, dec


def _windows(params, origins, data, *, static, layout):
    """Predicted and actual scaled targets of the windows at ``origins``, gathered from the full
    arrays ``data`` (encoder inputs, decoder inputs, targets) inside jit: no window is stored."""
    enc_all, dec_all, y_all = data
    L, H = layout.lookback, layout.horizon

    def window(i):
        enc = layout.patches(jax.lax.dynamic_slice_in_dim(enc_all, i - L, L))
        dec = jax.lax.dynamic_slice_in_dim(dec_all, i, H)
        if layout.seasons:
            lagged = y_all[i + jnp.asarray(layout.lag_offsets())].reshape(len(layout.seasons), H, -1)
            dec = jnp.concatenate([dec, *lagged], axis=1)
        return enc, dec, jax.lax.dynamic_slice_in_dim(y_all, i, H)

    enc, dec, y = jax.vmap(window)(origins)
    return jax.vmap(eqx.combine(params, static))(enc, dec), y


def _loss(params, origins, weight, data, *, static, layout):
    """Pinball loss of the windows at ``origins``, averaged with weights ``weight``."""
    pred, y = _windows(params, origins, data, static=static, layout=layout)
    err = y[..., None] - pred
    q = jnp.asarray(layout.quantiles, pred.dtype)
    per_window = jnp.maximum(q * err, (q - 1.0) * err).mean(axis=(1, 2, 3))
    return (per_window * weight).sum() / weight.sum()


def _optimizer(learning_rate: float):
    return optax.chain(optax.clip_by_global_norm(1.0), optax.adam(learning_rate))


# Module-level and keyed on the static parts, so that fits of one shape share one compilation.
@partial(jax.jit, static_argnames=("static", "layout", "learning_rate"))
def _train_step(params, opt_state, origins, data, *, static, layout, learning_rate):
    value, grads = jax.value_and_grad(_loss)(params, origins, jnp.ones(origins.shape), data,
                                             static=static, layout=layout)
    updates, opt_state = _optimizer(learning_rate).update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, value


_eval_loss = jax.jit(_loss, static_argnames=("static", "layout"))
_eval_windows = jax.jit(_windows, static_argnames=("static", "layout"))


def _interval_scale(pred: np.ndarray, y: np.ndarray, quantiles, anchor: int) -> np.ndarray:
    """Per target and quantile, the factor on (quantile - median) that makes the share of
    held-out ``y`` below the quantile equal its level: split-conformal calibration on the
    validation windows, against the overconfidence of a network that saw its training windows.
    ``pred`` (..., targets, quantiles), ``y`` (..., targets); result (targets, quantiles)."""
    spread = pred - pred[..., anchor:anchor + 1]
    ratio = (y - pred[..., anchor])[..., None] / np.where(np.abs(spread) > 1e-6, spread, np.nan)
    flat = ratio.reshape(-1, *ratio.shape[-2:])
    scale = np.ones(ratio.shape[-2:])
    for i, q in enumerate(quantiles):
        if i != anchor:  # below the median the spread is negative: the inequality turns over
            scale[:, i] = np.nanquantile(flat[:, :, i], q if i > anchor else 1 - q, axis=0)
    return np.clip(np.nan_to_num(scale, nan=1.0), 0.25, 4.0)


@dataclass(frozen=True)
class LSTMForecaster(Forecaster):
    """Hyperparameters of the LSTM; ``fit`` returns an immutable ``LSTMFitted``.

    ``horizon`` and ``lookback`` are in steps (``None``: one day; and the longest of two days, two
    horizons and the longest season (day, week, 52 weeks) that the history holds three times,
    capped at 2,016 steps); ``patch`` groups lookback steps per recurrent step
    (``None``: as few as keep the encoder at most 48 steps).  ``quantiles`` are the trained ones.
    ``members`` networks are trained from different initialisations and shufflings (all drawn
    from the seed) and their quantiles averaged, which steadies the forecast; they share the
    ``max_train_seconds`` budget.
    """

    def __post_init__(self):
        if self.members < 1:
            raise ValueError(f"members must be at least 1, got {self.members}")

    name: ClassVar[str] = "lstm"
    refit_each_origin: ClassVar[bool] = False

    horizon: int | None = None
    lookback: int | None = None
    patch: int | None = None
    hidden: int = 48
    epochs: int = 30
    batch_size: int = 64
    windows_per_epoch: int = 2048
    learning_rate: float = 3e-3
    patience: int = 5
    max_train_seconds: float | None = 100.0
    members: int = 3
    quantiles: tuple[float, ...] = QUANTILES

    def _layout(self, history: History, covariates: Covariates | None) -> _Layout:
        per_day = max(1, history.steps_per(DAY))
        horizon = self.horizon or per_day
        # the longest season (a day, a week, 52 weeks) that the history holds three times over and
        # a lookback of at most MAX_LOOKBACK steps reaches, so that its lag is an input
        held = [s for s in (per_day, 7 * per_day, 364 * per_day)
                if s >= 2 and len(history) >= 3 * s and s * math.ceil(horizon / s) <= MAX_LOOKBACK]
        lookback = self.lookback or min(max(2 * per_day, 2 * horizon, *(s * math.ceil(horizon / s) for s in held)),
                                        MAX_LOOKBACK)
        patch = self.patch or math.ceil(lookback / MAX_ENCODER_STEPS)
        lookback = patch * math.ceil(lookback / patch)
        seasons = tuple(s for s in (per_day, 7 * per_day, 364 * per_day)
                        if s >= 2 and s * math.ceil(horizon / s) <= lookback)
        qs = tuple(sorted(self.quantiles))
        if 0.5 not in qs:
            raise ValueError("the trained quantiles must include the median 0.5")
        known = covariates.known if covariates is not None else ()
        observed = covariates.observed if covariates is not None else ()
        return _Layout(history.targets, known, observed, history.step, horizon, lookback, patch, seasons, qs)

    def fit(self, history: History, covariates: Covariates | None = None, *, seed: int = 0) -> "LSTMFitted":
        start = time.perf_counter()
        layout = self._layout(history, covariates)
        L, H, n = layout.lookback, layout.horizon, len(history)
        val_len = max(round(0.1 * n), 2 * H)
        split = n - val_len  # training windows end their horizon before it
        if split - H - L + 1 < 1:
            raise ValueError(f"history too short for the LSTM: {n} steps, needs more than "
                             f"{L + H + val_len} (lookback {L} + horizon {H} + validation tail {val_len})")
        idx = history.values.index
        covs = None
        notes = []
        if covariates is not None and (layout.known or layout.observed):
            covs = covariates.frame.reindex(idx)[[*layout.known, *layout.observed]]
            empty = [c for c in covs if covs[c].isna().all()]
            if empty:
                raise ValueError(f"covariate columns {empty} have no value over the training history")
            if covs.isna().any().any():
                notes.append(f"lstm: {int(covs.isna().sum().sum())} missing covariate values in the training "
                             "range filled with the column mean")
        tscale = _Scaler.fit(history.values.to_numpy(np.float64), bounded_as_is=False)
        cscale = _Scaler.fit(covs.to_numpy(np.float64), bounded_as_is=True) if covs is not None else None
        y, enc, dec = _features(layout, tscale, cscale, history.values, covs, idx)
        data = tuple(jnp.asarray(a, jnp.float32) for a in (enc, dec, y))

        dec_features = dec.shape[1] + len(layout.targets) * len(layout.seasons)
        train_origins = np.arange(L, split - H + 1)
        nets, scales, reports = [], [], []
        for key in jax.random.split(jax.random.PRNGKey(seed), self.members):
            k_init, k_shuffle = jax.random.split(key)
            net = _Net(enc.shape[1], dec_features, H, self.hidden, len(layout.targets),
                       len(layout.quantiles), layout.quantiles.index(0.5), key=k_init)
            params, static = eqx.partition(net, eqx.is_array)
            budget = None if self.max_train_seconds is None else self.max_train_seconds / self.members
            params, scale, report = self._train(params, static, layout, data, train_origins,
                                                np.arange(split, n - H + 1), k_shuffle, time.perf_counter(), budget)
            if report["stopped_by"] == "time budget":
                notes.append(f"lstm: training stopped by the {self.max_train_seconds:g} s budget after "
                             f"{report['epochs']} epochs: the fit may not be reproducible")
            nets.append(eqx.combine(params, static))
            scales.append(scale)
            reports.append(report)
        report = {**reports[0], "members": tuple(reports), "fit_s": time.perf_counter() - start}
        return LSTMFitted(tuple(nets), layout, tscale, cscale, np.stack(scales), tuple(dict.fromkeys(notes)), report)

    def _train(self, params, static, layout, data, train_origins, val_origins, key, start, budget):
        """Adam over shuffled windows, early stopping on the validation windows: the best params,
        the interval calibration on the validation windows, and a report."""
        B = self.batch_size
        opt_state = _optimizer(self.learning_rate).init(params)
        step = partial(_train_step, static=static, layout=layout, learning_rate=self.learning_rate)
        evaluate = partial(_eval_loss, static=static, layout=layout)
        t0 = time.perf_counter()  # the first calls compile (or find a compilation of this shape)
        jax.block_until_ready(step(params, opt_state, jnp.full(B, layout.lookback, jnp.int32), data))
        jax.block_until_ready(evaluate(params, jnp.full(B, layout.lookback, jnp.int32), jnp.ones(B), data))
        compile_s = time.perf_counter() - t0

        # at most 8 batches of validation windows, evenly spread, the last one padded with weight 0
        val_origins = val_origins[np.linspace(0, len(val_origins) - 1, min(len(val_origins), 8 * B)).astype(int)]
        pad = -len(val_origins) % B
        val_batches = [jnp.asarray(o, jnp.int32) for o in np.resize(val_origins, len(val_origins) + pad).reshape(-1, B)]
        val_weights = [jnp.asarray(w) for w in np.r_[np.ones(len(val_origins)), np.zeros(pad)].reshape(-1, B)]

        def validate(params):
            total = sum(float(evaluate(params, o, w, data) * w.sum()) for o, w in zip(val_batches, val_weights))
            return total / len(val_origins)

        per_epoch = min(len(train_origins), self.windows_per_epoch)
        n_batches = math.ceil(per_epoch / B)
        best, curve, stopped_by, epoch = (params, 0), [validate(params)], "epochs", 0
        for epoch in range(1, self.epochs + 1):
            key, k_epoch = jax.random.split(key)
            perm = np.asarray(jax.random.permutation(k_epoch, len(train_origins)))[:per_epoch]
            perm = np.resize(perm, n_batches * B)  # pad the last batch by wrapping around
            for b in range(n_batches):
                origins = jnp.asarray(train_origins[perm[b * B:(b + 1) * B]], jnp.int32)
                params, opt_state, _ = step(params, opt_state, origins, data)
            curve.append(validate(params))
            if curve[-1] < min(curve[:-1]):
                best = (params, epoch)
            if budget is not None and time.perf_counter() - start > budget:
                stopped_by = "time budget"
                break
            if epoch - best[1] >= self.patience:
                stopped_by = "early stopping"
                break
        windows = [_eval_windows(best[0], o, data, static=static, layout=layout) for o in val_batches]
        pred, y = (np.concatenate([np.asarray(w[j]) for w in windows])[:len(val_origins)] for j in (0, 1))
        scale = _interval_scale(pred, y, layout.quantiles, layout.quantiles.index(0.5))
        report = {"epochs": epoch, "best_epoch": best[1], "val_pinball": min(curve), "val_curve": tuple(curve),
                  "stopped_by": stopped_by, "compile_s": compile_s, "train_s": time.perf_counter() - t0 - compile_s}
        return best[0], scale, report


@eqx.filter_jit
def _forward(net, enc, dec):
    return net(enc, dec)


@dataclass(frozen=True, eq=False)
class LSTMFitted(Fitted):
    """A trained network and the scalers and layout it was trained with; immutable."""

    nets: tuple[_Net, ...]
    layout: _Layout
    target_scaler: _Scaler
    covariate_scaler: _Scaler | None
    #: (members, targets, trained quantiles): factors on the distance of each quantile from the median
    interval_scale: np.ndarray
    notes: tuple[str, ...]
    #: what training did (the first member's epochs, best_epoch, val_pinball, stopped_by, val_curve
    #: per epoch, compile_s and train_s; every member's under ``members``; ``fit_s`` in all)
    report: dict

    name: ClassVar[str] = "lstm"

    def predict(self, context: History, horizon: int, covariates: Covariates | None = None,
                quantiles: tuple[float, ...] = QUANTILES) -> Forecast:
        """Quantiles for the ``horizon`` steps after ``context``.  Requested quantiles that were
        not trained are interpolated linearly in the quantile level between the two trained
        neighbours (in the scaled space); levels outside the trained range are an error."""
        lay = self.layout
        if not 1 <= horizon <= lay.horizon:
            raise ValueError(f"horizon {horizon} outside 1..{lay.horizon}, the horizon this LSTM was trained for")
        if context.step != lay.step or context.targets != lay.targets:
            raise ValueError(f"context must have step {lay.step} and targets {lay.targets}")
        if len(context) < lay.lookback:
            raise ValueError(f"context of {len(context)} steps is shorter than the lookback of {lay.lookback}")
        qs = tuple(quantiles)
        if min(qs) < lay.quantiles[0] or max(qs) > lay.quantiles[-1]:
            raise ValueError(f"quantiles {qs} outside the trained range {lay.quantiles[0]}..{lay.quantiles[-1]}")
        past = context.values.iloc[-lay.lookback:]
        full = future_index(context, lay.horizon)
        index = future_index(context, horizon)
        covs = None
        if lay.known or lay.observed:
            if covariates is None:
                raise ValueError(f"this LSTM was trained with covariates {(*lay.known, *lay.observed)}")
            win = covariates.window(past.index[0], full[-1] + lay.step, origin=index[0])
            covs = win.reindex(past.index.append(full))
            if covs.loc[index, list(lay.known)].isna().any().any():
                raise ValueError("the known covariates do not cover the horizon")
        y, enc, dec = _features(lay, self.target_scaler, self.covariate_scaler, past,
                                None if covs is None else covs.iloc[:lay.lookback], past.index)
        _, _, dec = _features(lay, self.target_scaler, self.covariate_scaler, None,
                              None if covs is None else covs.iloc[lay.lookback:], full)
        if lay.seasons:
            lagged = y[lay.lookback + lay.lag_offsets()].reshape(len(lay.seasons), lay.horizon, -1)
            dec = np.concatenate([dec, *lagged], axis=1)
        enc = lay.patches(enc)
        enc, dec = jnp.asarray(enc, jnp.float32), jnp.asarray(dec, jnp.float32)
        parts = []
        for net, scale in zip(self.nets, self.interval_scale):
            z = np.asarray(_forward(net, enc, dec), np.float64)[:horizon]
            mid = z[..., lay.quantiles.index(0.5), None]
            parts.append(np.sort(mid + scale * (z - mid), axis=-1))
        z = np.mean(parts, axis=0)  # quantile averaging over the members, in the scaled space
        z = _interpolate(z, lay.quantiles, qs)
        values = {}
        for j, target in enumerate(lay.targets):
            s = self.target_scaler
            v = _Scaler(s.log[j:j + 1], s.mean[j:j + 1], s.std[j:j + 1]).inverse(z[:, j, :])
            values[target] = np.maximum(v, 0.0) if s.log[j] else v
        notes = self.notes + (() if set(qs) <= set(lay.quantiles) else
                              (f"lstm: quantiles interpolated from the trained {lay.quantiles}",))
        return Forecast(index, qs, values, self.name, notes)


def _interpolate(z: np.ndarray, trained: tuple[float, ...], wanted: tuple[float, ...]) -> np.ndarray:
    """Quantiles at levels ``wanted`` along the last axis, linear in the level between trained ones."""
    t = np.asarray(trained)
    hi = np.clip(np.searchsorted(t, wanted), 1, len(t) - 1)
    w = (np.asarray(wanted) - t[hi - 1]) / (t[hi] - t[hi - 1])
    return z[..., hi - 1] * (1 - w) + z[..., hi] * w
