"""Load forecasting: histories and covariates in, quantile forecasts of the load out.

- ``base``: the contract (``History``, ``Covariates``, ``Forecast``, ``Forecaster``);
- ``series``: read load series, repair them with every repair stated, check the seasons;
- ``covariates``: calendar, events calendar and social signals as ``Covariates``.

>>> import pandas as pd
>>> from twin.forecast import build_covariates
>>> idx = pd.date_range("2026-01-01", periods=48, freq="h", tz="UTC")
>>> cov = build_covariates(idx)
>>> cov.known[:2], cov.observed
(('daily_sin1', 'daily_cos1'), ())
"""

from .base import QUANTILES, TARGETS, Covariates, Fitted, Forecast, Forecaster, History, future_index
from .covariates import (EVENT_TYPES, CovariateError, build_covariates, calendar_features, event_features,
                         read_events, read_posts, sentiment_scores, social_features, social_from_series)
from .series import (SEASONS, Repairs, SeriesError, history_from_trace, read_series_csv, regularize,
                     season_check)

__all__ = [
    "QUANTILES", "TARGETS", "Covariates", "Fitted", "Forecast", "Forecaster", "History", "future_index",
    "EVENT_TYPES", "CovariateError", "build_covariates", "calendar_features", "event_features", "read_events",
    "read_posts", "sentiment_scores", "social_features", "social_from_series",
    "SEASONS", "Repairs", "SeriesError", "history_from_trace", "read_series_csv", "regularize", "season_check",
]
