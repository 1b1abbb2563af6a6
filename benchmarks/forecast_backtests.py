"""Rolling-origin backtests of every forecaster on the real series, against issue 4's targets.

For each real series bundled in tests/fixtures/forecast (see its README for origins and
licences) this runs seasonal naive (daily and weekly), the statistical baseline (MSTL), the
LSTM and their ensemble over rolling origins with no look-ahead, then:

- **selection in service**: at every origin the rule of ``twin forecast predict`` (the
  ensemble, unless another model beat it clearly on the last 8 windows that had ended) chooses
  the model whose forecast is made, and its intervals are recalibrated from the latest windows
  that had ended (``twin.forecast.select.online``, ``twin.forecast.calibrate``); these forecasts
  are scored on the later half of the windows, like every model's;
- **selection once**: for comparison, the model chosen on the earlier half and scored on the
  later half (``twin.forecast.select.select``);
- **events** (nyc_taxi, peyton_manning): the models see the events calendar and the US public
  holidays (MSTL and the naive forecasts through learned event effects, the LSTM as inputs);
  MSTL, the LSTM, the ensemble and the forecasts made in service are backtested again without
  them (calendar features only), and the MASE inside the event windows is compared.

It prints a line per series and whether the targets hold for the forecasts made in service:
MASE at least 15% below the better seasonal naive and no worse than MSTL; 80% interval coverage
75-85%; events cutting the MASE inside event windows by at least 30%.

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

from twin.forecast.backtest import backtest
from twin.forecast.covariates import build_covariates, read_events
from twin.forecast.run import DEFAULT_MODELS, models, selection
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
    chosen = selection(result, target)
    sel = chosen.selection
    late = sel.evaluation_scores.set_index("forecaster")
    naive = min(late.loc[n, "mase"] for n in NAIVE)
    served = chosen.online_scores
    picks = pd.Series([chosen.choices[o] for o in sel.evaluation_origins]).value_counts()
    out = {
        "series": spec.name, "steps": len(history), "step": str(history.step), "horizon": horizon,
        "windows": spec.windows, "later_windows": len(sel.evaluation_origins), "repairs": list(repairs.lines),
        "seconds": round(elapsed, 1),
        "late_mase": {n: float(late.loc[n, "mase"]) for n in late.index},
        "late_coverage_80_raw": {n: float(late.loc[n, "coverage_80"]) for n in late.index},
        "best_naive_mase": float(naive), "mstl_mase": float(late.loc[mstl, "mase"]),
        # chosen once, on the earlier half
        "split_selected": sel.chosen, "split_mase": float(late.loc[sel.chosen, "mase"]),
        "split_ratio_to_naive": float(late.loc[sel.chosen, "mase"] / naive),
        "split_ratio_to_mstl": float(late.loc[sel.chosen, "mase"] / late.loc[mstl, "mase"]),
        "split_coverage_80": float(chosen.scores["coverage_80"]),
        # chosen at each origin from the windows ended by then, as `twin forecast predict` does
        "served_picks": {str(k): int(v) for k, v in picks.items()},
        "selected_mase": float(served["mase"]),
        "ratio_to_naive": float(served["mase"] / naive),
        "ratio_to_mstl": float(served["mase"] / late.loc[mstl, "mase"]),
        "selected_coverage_80": float(served["coverage_80"]),
        "selected_coverage_90": float(served["coverage_90"]),
    }
    if events is not None:
        # the same models without the events calendar and holidays (calendar features only)
        names = ["mstl", "lstm", "ensemble"]
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
        # the forecasts made in service, with and without the events
        served_without = selection(without, target).online
        inside_served = {}
        for label, r in (("with", chosen.online), ("without", served_without)):
            ev = r.by_event()
            inside_served[label] = float(ev[ev["window"] == "inside"]["mase"].iloc[0])
        out["event_mase"]["selected"] = {**inside_served, "cut": 1 - inside_served["with"] / inside_served["without"]}
        out["event_cut"] = out["event_mase"]["selected"]["cut"]
    return out


def line(r: dict) -> str:
    mases = " ".join(f"{k}={v:.3f}" for k, v in r["late_mase"].items())
    picks = ", ".join(f"{k} {v}x" for k, v in r["served_picks"].items())
    s = (f"{r['series']}: {r['steps']} x {r['step']}, horizon {r['horizon']}, {r['windows']} windows, "
         f"{r['seconds']} s | later-half MASE {mases} | in service ({picks}): {r['selected_mase']:.3f}, "
         f"{r['ratio_to_naive']:.3f} of best naive, {r['ratio_to_mstl']:.3f} of MSTL, 80% coverage "
         f"{r['selected_coverage_80']:.3f}, 90% {r['selected_coverage_90']:.3f} | chosen on the earlier half: "
         f"{r['split_selected']} {r['split_mase']:.3f} ({r['split_ratio_to_naive']:.3f} of naive, "
         f"{r['split_ratio_to_mstl']:.3f} of MSTL, coverage {r['split_coverage_80']:.3f})")
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
