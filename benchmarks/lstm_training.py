"""Time the LSTM's training on eight weeks of 5-minute data, and check what it buys.

Issue 4's target: training the LSTM on eight weeks of 5-minute data takes under two minutes on 2
CPU cores.  This script synthesises 16,128 points (8 weeks at 5 minutes) of three targets with
daily and weekly seasonality and noise (requests/s, data volume and user concurrency, which
share one load curve), plus calendar covariates, trains ``LSTMForecaster`` with its default
hyperparameters, then backtests it over the following day: a day-ahead forecast from every third
hour of that day (eight origins, no refit: the model is global).  It prints one line: the
training wall time with the JIT compile time apart, the epochs run, and the MAE of the median as
a ratio to the MAE of seasonal naive (the same time a day earlier, and a week earlier), pooled
over origins and averaged over targets, with the coverage of the 80% interval.

    python benchmarks/lstm_training.py [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import pandas as pd

from twin.forecast.base import Covariates, History
from twin.forecast.lstm import LSTMForecaster

STEPS_PER_DAY = 288
TRAIN_STEPS = 8 * 7 * STEPS_PER_DAY  # 16,128


ORIGINS = [TRAIN_STEPS + k * STEPS_PER_DAY // 8 for k in range(8)]


def synthetic(seed: int) -> tuple[History, Covariates]:
    """Eight weeks and two days of 5-minute load with daily and weekly cycles and noise."""
    rng = np.random.default_rng(seed)
    n = TRAIN_STEPS + 2 * STEPS_PER_DAY
    idx = pd.date_range("2026-01-05", periods=n, freq="5min", tz="UTC")  # a Monday
    day = (idx.hour * 60 + idx.minute).to_numpy() / 1440
    weekend = np.asarray(idx.dayofweek >= 5)
    shape = 1 + 0.6 * np.sin(2 * np.pi * (day - 0.3)) + 0.25 * np.sin(4 * np.pi * day)
    level = np.where(weekend, 0.6, 1.0) * (1 + 0.1 * np.sin(2 * np.pi * np.arange(n) / n))
    ar = np.zeros(n)  # slow, persistent deviations that a model can read from the recent past
    shocks = rng.normal(0, 0.03, n)
    for t in range(1, n):
        ar[t] = 0.98 * ar[t - 1] + shocks[t]
    load = np.maximum(shape * level * (1 + ar), 0.05)
    frame = pd.DataFrame({
        "requests_per_s": 200 * load * rng.lognormal(0, 0.1, n),
        "data_volume_bytes_per_s": 5e6 * load * rng.lognormal(0, 0.15, n),
        "user_concurrency": np.round(40 * load + rng.normal(0, 2, n)).clip(0),
    }, index=idx)
    calendar = pd.DataFrame({
        "hour_sin": np.sin(2 * np.pi * day), "hour_cos": np.cos(2 * np.pi * day),
        "weekend": weekend.astype(float),
    }, index=idx)
    return History(frame), Covariates(calendar, known=tuple(calendar.columns))


def evaluate(forecaster: LSTMForecaster, seed: int) -> str:
    """Train on the synthetic eight weeks, backtest over the following day, return the line."""
    history, covariates = synthetic(seed)
    train = History(history.values.iloc[:TRAIN_STEPS])

    start = time.perf_counter()
    fitted = forecaster.fit(train, covariates, seed=seed)
    fit_s = time.perf_counter() - start

    errors = {t: np.zeros(3) for t in train.targets}  # summed MAE: lstm, naive day, naive week
    covered = []
    for origin in ORIGINS:
        context = History(history.values.iloc[:origin])
        forecast = fitted.predict(context, STEPS_PER_DAY, covariates)
        for target in train.targets:
            series = history.values[target].to_numpy()
            y = series[origin:origin + STEPS_PER_DAY]
            for j, guess in enumerate((forecast.quantile(target, 0.5), series[origin - STEPS_PER_DAY:origin],
                                       series[origin - 7 * STEPS_PER_DAY:origin - 6 * STEPS_PER_DAY])):
                errors[target][j] += np.abs(guess - y).mean()
            covered.append(np.mean((forecast.quantile(target, 0.1) <= y) & (y <= forecast.quantile(target, 0.9))))
    ratio_day = np.mean([e[0] / e[1] for e in errors.values()])
    ratio_week = np.mean([e[0] / e[2] for e in errors.values()])
    r = fitted.report
    return (f"lstm_training: {len(train)} steps x {len(train.targets)} targets, {platform.machine()} "
          f"{os.cpu_count()} cpus | fit {fit_s:.1f} s (compile {r['compile_s']:.1f} s, train {r['train_s']:.1f} s, "
          f"{r['epochs']} epochs, best {r['best_epoch']}, stopped by {r['stopped_by']}) | day-ahead MAE / "
          f"seasonal naive over {len(ORIGINS)} origins: daily {ratio_day:.3f}, weekly {ratio_week:.3f} | "
          f"80% coverage {np.mean(covered):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    print(evaluate(LSTMForecaster(), parser.parse_args().seed))


if __name__ == "__main__":
    main()
