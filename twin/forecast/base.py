"""The forecasting contract: what goes in, what comes out, and the one base class for models.

A forecaster learns from a ``History`` (regular series of load, one column per target) and
``Covariates`` (calendar, events, social signals), and predicts quantiles of every target for the
next ``horizon`` steps from any forecast origin.

>>> import numpy as np, pandas as pd
>>> idx = pd.date_range("2026-01-01", periods=48, freq="h", tz="UTC")
>>> h = History(pd.DataFrame({"requests_per_s": np.arange(48.0)}, index=idx))
>>> h.step, h.targets
(Timedelta('0 days 01:00:00'), ('requests_per_s',))
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

#: Load-profile targets (DESIGN's load profile); a history may hold any subset, or other names.
TARGETS = ("requests_per_s", "data_volume_bytes_per_s", "user_concurrency")
#: Quantiles every forecast carries by default: the median and the 80% and 90% intervals.
QUANTILES = (0.05, 0.1, 0.5, 0.9, 0.95)


@dataclass(frozen=True)
class History:
    """Regular, gap-free series: a UTC ``DatetimeIndex`` at one fixed step, one float column per
    target.  Build one with ``twin.forecast.series.regularize``, which repairs and reports."""

    values: pd.DataFrame

    def __post_init__(self):
        idx = self.values.index
        if not isinstance(idx, pd.DatetimeIndex) or idx.tz is None or len(idx) < 2:
            raise ValueError("a History needs a time-zone-aware DatetimeIndex of at least two points")
        steps = np.diff(idx.asi8)
        if not (steps == steps[0]).all() or steps[0] <= 0:
            raise ValueError("a History needs strictly increasing times at one fixed step")
        if self.values.isna().any().any():
            raise ValueError("a History holds no missing values (regularize repairs them)")

    @property
    def step(self) -> pd.Timedelta:
        return pd.Timedelta(int(self.values.index.asi8[1] - self.values.index.asi8[0]), unit="ns")

    @property
    def targets(self) -> tuple[str, ...]:
        return tuple(self.values.columns)

    def __len__(self) -> int:
        return len(self.values)

    def upto(self, end: pd.Timestamp) -> "History":
        """The history strictly before ``end`` (a forecast origin): nothing after it is seen."""
        return History(self.values[self.values.index < end])

    def steps_per(self, period: pd.Timedelta) -> int:
        """How many steps make ``period`` (a day, a week): the length of that season."""
        return int(round(period / self.step))


@dataclass(frozen=True)
class Covariates:
    """Exogenous inputs on a time index that covers the history and may run past it.

    ``known`` columns are known in advance (calendar features, scheduled events): a model may
    read them for future steps.  ``observed`` columns (social mention volume, sentiment) are only
    known up to the forecast origin: a model may read them there and before, never after.
    """

    frame: pd.DataFrame
    known: tuple[str, ...] = ()
    observed: tuple[str, ...] = ()

    def __post_init__(self):
        missing = [c for c in (*self.known, *self.observed) if c not in self.frame]
        if missing:
            raise ValueError(f"covariate columns {missing} are not in the frame")

    def window(self, start: pd.Timestamp, end: pd.Timestamp, origin: pd.Timestamp) -> pd.DataFrame:
        """Rows in [start, end): known columns as they are, observed ones cut at ``origin``
        (NaN after it), so that a model cannot look ahead by mistake."""
        rows = self.frame[(self.frame.index >= start) & (self.frame.index < end)]
        out = rows[list(self.known)].copy()
        for col in self.observed:
            out[col] = rows[col].where(rows.index < origin)
        return out


@dataclass(frozen=True)
class Forecast:
    """Quantiles of each target for ``len(index)`` future steps.

    ``values[target]`` has shape (horizon, len(quantiles)), non-decreasing along the quantiles.
    """

    index: pd.DatetimeIndex
    quantiles: tuple[float, ...]
    values: dict[str, np.ndarray]
    model: str
    notes: tuple[str, ...] = field(default=())

    def __post_init__(self):
        for target, v in self.values.items():
            if v.shape != (len(self.index), len(self.quantiles)):
                raise ValueError(f"{target}: expected shape {(len(self.index), len(self.quantiles))}, got {v.shape}")
            if np.any(np.diff(v, axis=1) < -1e-9 * np.maximum(1, np.abs(v[:, 1:]))):
                raise ValueError(f"{target}: quantiles cross")

    def quantile(self, target: str, q: float) -> np.ndarray:
        return self.values[target][:, self.quantiles.index(q)]

    def to_frame(self) -> pd.DataFrame:
        """Wide table: one row per step, columns ``<target>`` (median) and ``<target>_q<q>``."""
        out = {}
        for target, v in self.values.items():
            if 0.5 in self.quantiles:
                out[target] = v[:, self.quantiles.index(0.5)]
            for j, q in enumerate(self.quantiles):
                out[f"{target}_q{q:g}"] = v[:, j]
        return pd.DataFrame(out, index=self.index)


class Forecaster(ABC):
    """One model of the load.  Subclasses are small: ``fit`` learns, the fitted object predicts.

    Contract (``tests/forecast/test_contract.py`` runs every implementation through it):
    - ``fit`` sees only the history and covariates it is given; it returns a new ``Fitted``
      object and leaves ``self`` unchanged; every random choice comes from ``seed``.
    - ``Fitted.predict(context, horizon, covariates)`` forecasts the ``horizon`` steps after
      ``context`` (the history up to the forecast origin, which may run past the training data:
      a fitted model can be applied at later origins without refitting); it reads known
      covariates up to the end of the horizon and observed ones up to the origin only.
    - ``refit_each_origin``: whether a backtest must refit at every origin (True for models whose
      state is tied to the end of their training data, like ETS) or may fit once before the first
      origin and reuse the fit (a global model like the LSTM).
    """

    name: str = "forecaster"
    refit_each_origin: bool = True

    @abstractmethod
    def fit(self, history: History, covariates: Covariates | None = None, *, seed: int = 0) -> "Fitted":
        ...


class Fitted(ABC):
    name: str

    @abstractmethod
    def predict(self, context: History, horizon: int, covariates: Covariates | None = None,
                quantiles: tuple[float, ...] = QUANTILES) -> Forecast:
        ...


def future_index(context: History, horizon: int) -> pd.DatetimeIndex:
    """The ``horizon`` timestamps after the end of ``context``."""
    last = context.values.index[-1]
    return pd.date_range(last + context.step, periods=horizon, freq=context.step, tz="UTC")
