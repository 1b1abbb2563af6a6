"""Forecast accuracy: point errors, quantile loss and interval calibration, in plain numpy.

With actuals y_t, point forecasts f_t (the median) over n steps, and quantile forecasts q_t(τ):

- MASE  = mean(|y_t - f_t|) / s, where s is the in-sample MAE of the seasonal naive forecast
  on the training series x: s = mean over t > m of |x_t - x_{t-m}| (``mase_scale``).  A model
  as good as repeating the last season in sample scores 1; lower is better.
- sMAPE = 200 · mean(|y_t - f_t| / (|y_t| + |f_t|)), on a 0..200 scale; a term where both are
  0 counts 0 (a perfect forecast of nothing).
- pinball loss of quantile τ = mean(max(τ (y_t - q_t), (τ - 1) (y_t - q_t))); 0 for a perfect
  forecast, and half the MAE for the median.
- coverage of [lo, hi] = the fraction of y_t with lo_t <= y_t <= hi_t.
- interval (Winkler) score of a central (1 - α) interval = mean((hi - lo)
  + (2/α)(lo - y) 1{y < lo} + (2/α)(y - hi) 1{y > hi}): the width plus a penalty for misses.

>>> mase([3.0, 5.0], [2.0, 5.0], scale=2.0)
0.25
>>> smape([0.0, 10.0], [0.0, 30.0])
50.0
>>> pinball_by_quantile([10.0], [[8.0, 10.0, 12.0]], (0.25, 0.5, 0.75))
array([0.5, 0. , 0.5])
>>> coverage([1.0, 5.0, 9.0], [0.0, 0.0, 0.0], [5.0, 5.0, 5.0])
0.6666666666666666
"""

from __future__ import annotations

import numpy as np


def _vector(x, what: str) -> np.ndarray:
    a = np.asarray(x, dtype=float)
    if a.ndim != 1 or len(a) == 0:
        raise ValueError(f"{what} must be a non-empty 1-D array, got shape {a.shape}")
    return a


def _pair(actual, predicted) -> tuple[np.ndarray, np.ndarray]:
    y, f = _vector(actual, "actual"), _vector(predicted, "predicted")
    if y.shape != f.shape:
        raise ValueError(f"actual and predicted differ in length: {len(y)} vs {len(f)}")
    return y, f


def mase_scale(train, season: int) -> float:
    """The in-sample MAE of the seasonal naive forecast with lag ``season`` on ``train``.

    When ``train`` is shorter than two seasons the lag falls back to 1 (the naive forecast).
    Raises ``ValueError`` when ``train`` has fewer than two points or the scale is 0 (a series
    that the naive forecast fits exactly leaves nothing to scale by).

    >>> mase_scale([1.0, 2.0, 1.0, 4.0], season=2)
    1.0
    >>> mase_scale([1.0, 2.0, 4.0], season=2)  # shorter than two seasons: lag 1
    1.5
    """
    x = _vector(train, "train")
    if season < 1:
        raise ValueError(f"season must be at least 1, got {season}")
    lag = season if len(x) >= 2 * season else 1
    if len(x) <= lag:
        raise ValueError(f"a training series of {len(x)} points is too short for a MASE scale")
    scale = float(np.mean(np.abs(x[lag:] - x[:-lag])))
    if not scale > 0:
        raise ValueError(f"the lag-{lag} naive forecast fits the training series exactly: the MASE scale is 0")
    return scale


def mase(actual, predicted, scale) -> float:
    """Mean absolute error divided by ``scale`` (a float, or one per step when the steps come
    from windows with different training data: then the mean of |y_t - f_t| / s_t)."""
    y, f = _pair(actual, predicted)
    s = np.broadcast_to(np.asarray(scale, dtype=float), y.shape)
    if not np.all(s > 0):
        raise ValueError("the MASE scale must be positive")
    return float(np.mean(np.abs(y - f) / s))


def smape(actual, predicted) -> float:
    """Symmetric mean absolute percentage error, 0..200; terms with y = f = 0 count 0."""
    y, f = _pair(actual, predicted)
    num, den = np.abs(y - f), np.abs(y) + np.abs(f)
    terms = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
    return float(200.0 * np.mean(terms))


def pinball_by_quantile(actual, quantiles_array, quantiles) -> np.ndarray:
    """Mean pinball loss of each quantile: ``quantiles_array`` has shape (n, len(quantiles))."""
    y = _vector(actual, "actual")
    q = np.asarray(quantiles_array, dtype=float)
    tau = np.asarray(quantiles, dtype=float)
    if q.shape != (len(y), len(tau)):
        raise ValueError(f"quantiles_array must have shape {(len(y), len(tau))}, got {q.shape}")
    if np.any((tau <= 0) | (tau >= 1)):
        raise ValueError(f"quantile levels must lie in (0, 1), got {tuple(tau)}")
    diff = y[:, None] - q
    return np.mean(np.maximum(tau * diff, (tau - 1) * diff), axis=0)


def pinball(actual, quantiles_array, quantiles) -> float:
    """Mean pinball loss over all steps and quantiles (the mean of ``pinball_by_quantile``)."""
    return float(np.mean(pinball_by_quantile(actual, quantiles_array, quantiles)))


def coverage(actual, lo, hi) -> float:
    """The fraction of ``actual`` inside [lo, hi], bounds included."""
    y, lo_ = _pair(actual, lo)
    _, hi_ = _pair(actual, hi)
    return float(np.mean((y >= lo_) & (y <= hi_)))


def interval_score(actual, lo, hi, alpha: float) -> float:
    """Mean Winkler score of the central (1 - ``alpha``) interval [lo, hi]; lower is better.

    >>> interval_score([5.0, 12.0], [4.0, 4.0], [10.0, 10.0], alpha=0.2)
    16.0
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    y, lo_ = _pair(actual, lo)
    _, hi_ = _pair(actual, hi)
    penalty = (2 / alpha) * (np.maximum(lo_ - y, 0) + np.maximum(y - hi_, 0))
    return float(np.mean(hi_ - lo_ + penalty))
