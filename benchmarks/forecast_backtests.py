"""Rolling-origin backtests of every forecaster on the real series, against issue 4's targets.

For each real series bundled in tests/fixtures/forecast (see its README for origins and
licences) this runs seasonal naive (daily and weekly), the statistical baseline (MSTL), the
LSTM and their ensemble over rolling origins with no look-ahead, then:

- **selection**: the model with the lowest MASE on the earlier half of the windows is selected
  and, like every model, scored on the later half only (``twin.forecast.select``);
- **intervals**: the selected model's quantiles are recalibrated online from the errors of the
  windows before each origin (``twin.forecast.calibrate``), and the 80% interval's coverage is
  measured on the later half;
- **events** (nyc_taxi, peyton_manning): the models see the events calendar and the US public
  holidays; the LSTM is backtested again without either (calendar features only), and the MASE
  inside the event windows is compared.

It prints a table per series and a summary against the targets:
selected MASE at least 15% below the better seasonal naive and no worse than MSTL; 80% interval
coverage 75-85%; events cutting the MASE inside event windows by at least 30%.

    python benchmarks/forecast_backtests.py [--series elb api-01 ...] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from twin.forecast.backtest import backtest, scores
from twin.forecast.calibrate import calibrated
from twin.forecast.covariates import build_covariates, read_events
from twin.forecast.run import DEFAULT_CHOICE, DEFAULT_MODELS, models
from twin.forecast.select import select
from twin.forecast.series import read_series_csv, regularize

DATA = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "forecast"
NAIVE = ("seasonal_naive_daily", "seasonal_naive_weekly")


@dataclass(frozen=True)
class Series:
    name: str
    file: str
    horizon: str  # a pandas offset: the forecast horizon
    windows: int  # rolling origins, one horizon apart unless ``step`` says otherwise
    step: str | None = None
    refit_every: int | None = None  # LSTM refits, in origins (None: once, before the first)
    events: str | None = None  # an events calendar; with it, US public holidays are flagged too
    time_zone: str | None = None


SERIES = {s.name: s for s in (
    Series("elb", "elb_request_count_8c0756.csv", "1D", 8, time_zone="UTC"),
    Series("api-01", "api-01.csv", "1D", 112, refit_every=14),
    Series("mongo-01", "mongo-01.csv", "1D", 32, step="3h"),
    Series("mongo-02", "mongo-02.csv", "1D", 32, step="3h"),
    Series("nyc_taxi", "nyc_taxi.csv", "1D", 98, refit_every=14, events="events_nyc_taxi.yaml", time_zone="UTC"),
    Series("peyton", "example_wp_log_peyton_manning.csv", "14D", 80, refit_every=13,
           events="events_peyton.yaml", time_zone="UTC"),
)}


def steps(history, offset: str) -> int:
    return int(round(pd.Timedelta(offset) / history.step))


def run(spec: Series, seed: int, save: Path | None = None) -> dict:
    frame = read_series_csv(DATA / spec.file, time_zone=spec.time_zone)
    frame.columns = ["requests_per_s"]
    history, repairs = regularize(frame)
    horizon = steps(history, spec.horizon)
    step = steps(history, spec.step) if spec.step else None
    season = max(1, history.steps_per(pd.Timedelta(days=1)))
    index = pd.date_range(history.values.index[0], periods=len(history) + horizon, freq=history.step, tz="UTC")
    events = read_events(DATA / spec.events) if spec.events else None
    covariates = build_covariates(index, events=events, holidays_country="US" if events is not None else None)
    windows = [(s, e) for s, e in zip(events["start"], events["end"])] if events is not None else None
    forecasters = models(DEFAULT_MODELS, horizon, events=events is not None)
    common = dict(horizon=horizon, n_windows=spec.windows, step=step, season=season, event_windows=windows,
                  seed=seed, refit_every=spec.refit_every)
    t0 = time.perf_counter()
    result = backtest(forecasters, history, covariates, **common)
    elapsed = time.perf_counter() - t0
    if save is not None:
        save.mkdir(parents=True, exist_ok=True)
        result.forecasts.to_parquet(save / f"{spec.name}.parquet")
    target = "requests_per_s"
    mstl = forecasters[DEFAULT_MODELS.index("mstl")].name
    chosen = select(result, target, default=DEFAULT_CHOICE)
    late = chosen.evaluation_scores.set_index("forecaster")
    cal = calibrated(result, chosen.chosen)
    late_origins = set(chosen.evaluation_origins)
    cal_late = cal.forecasts[cal.forecasts["origin"].isin(late_origins)]
    cal_scores = scores(cal_late, result.quantiles)
    naive = min(late.loc[n, "mase"] for n in NAIVE)
    out = {
        "series": spec.name, "steps": len(history), "step": str(history.step), "horizon": horizon,
        "windows": spec.windows, "repairs": list(repairs.lines), "seconds": round(elapsed, 1),
        "late_mase": {n: float(late.loc[n, "mase"]) for n in late.index},
        "late_coverage_80_raw": {n: float(late.loc[n, "coverage_80"]) for n in late.index},
        "selected": chosen.chosen, "selected_mase": float(late.loc[chosen.chosen, "mase"]),
        "best_naive_mase": float(naive), "mstl_mase": float(late.loc[mstl, "mase"]),
        "ratio_to_naive": float(late.loc[chosen.chosen, "mase"] / naive),
        "ratio_to_mstl": float(late.loc[chosen.chosen, "mase"] / late.loc[mstl, "mase"]),
        "selected_coverage_80": float(cal_scores["coverage_80"]),
        "selected_coverage_90": float(cal_scores["coverage_90"]),
    }
    if events is not None:
        # the same models without the events calendar and holidays (calendar features only)
        names = list(dict.fromkeys(["mstl", "lstm", "ensemble", chosen.chosen.removesuffix("+events")]))
        without = backtest(models(names, horizon, events=False), history, build_covariates(index), **common)
        if save is not None:
            without.forecasts.to_parquet(save / f"{spec.name}.without_events.parquet")
        inside = {}
        for label, r in (("with", result), ("without", without)):
            ev = r.by_event()
            inside[label] = {f.removesuffix("+events"): float(m) for f, m in
                             ev[ev["window"] == "inside"].set_index("forecaster")["mase"].items()}
        out["event_mase"] = {n: {"with": inside["with"][n], "without": inside["without"][n],
                                 "cut": 1 - inside["with"][n] / inside["without"][n]} for n in names}
        out["event_cut"] = out["event_mase"][chosen.chosen.removesuffix("+events")]["cut"]
    return out


def line(r: dict) -> str:
    mases = " ".join(f"{k}={v:.3f}" for k, v in r["late_mase"].items())
    s = (f"{r['series']}: {r['steps']} x {r['step']}, horizon {r['horizon']}, {r['windows']} windows, "
         f"{r['seconds']} s | later-half MASE {mases} | selected {r['selected']} {r['selected_mase']:.3f}: "
         f"{r['ratio_to_naive']:.3f} of best naive, {r['ratio_to_mstl']:.3f} of MSTL | calibrated coverage "
         f"80% {r['selected_coverage_80']:.3f}, 90% {r['selected_coverage_90']:.3f}")
    if "event_cut" in r:
        s += " | event-window MASE with / without events: " + ", ".join(
            f"{n} {e['with']:.3f} / {e['without']:.3f} (cut {100 * e['cut']:.0f}%)" for n, e in r["event_mase"].items())
    return s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", nargs="*", default=list(SERIES), choices=list(SERIES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--refit-every", type=int, help="override every series' LSTM refit schedule (origins)")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    parser.add_argument("--save", type=Path, metavar="DIR", help="write every backtest's forecasts here (parquet)")
    args = parser.parse_args()
    print(f"forecast_backtests: {platform.machine()} {os.cpu_count()} cpus, seed {args.seed}", flush=True)
    results = []
    for name in args.series:
        spec = SERIES[name]
        if args.refit_every:
            spec = replace(spec, refit_every=args.refit_every)
        results.append(run(spec, args.seed, args.save))
        print(line(results[-1]), flush=True)
    ok = all(r["ratio_to_naive"] <= 0.85 and r["ratio_to_mstl"] <= 1.0 and 0.75 <= r["selected_coverage_80"] <= 0.85
             for r in results) and all(r["event_cut"] >= 0.3 for r in results if "event_cut" in r)
    print("targets met" if ok else "targets NOT all met")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    sys.exit(0)


if __name__ == "__main__":
    main()
