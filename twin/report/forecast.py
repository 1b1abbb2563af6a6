"""The backtest report: which model sees how far ahead, how well, and where it fails."""

from __future__ import annotations

import html
import math

import pandas as pd


from .html import esc, figure_tag, page, table, tidy


def _num(x, digits=3) -> str:
    return "–" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{digits}g}"


def _figures(result) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = []
    for target in result.targets:
        names = list(result.forecasters)
        fig, axes = plt.subplots(len(names), 1, figsize=(9, 2.4 * len(names)), squeeze=False, sharex=True)
        for ax, name in zip(axes[:, 0], names):
            w = result.window(name, target)
            ax.plot(w.history.index, w.history.to_numpy(), color="black", lw=0.8, label="history")
            f = w.forecast
            ax.plot(f.index, f["actual"], color="black", lw=0.8, ls=":", label="actual")
            ax.plot(f.index, f["q0.5"], color="C0", lw=1.2, label="median")
            if "q0.1" in f and "q0.9" in f:
                ax.fill_between(f.index, f["q0.1"], f["q0.9"], color="C0", alpha=0.25, label="80%")
            ax.set_title(f"{name}: last window", fontsize=9)
            ax.grid(alpha=0.3)
        axes[0, 0].legend(fontsize=7, ncol=4)
        tidy(fig)
        out.append(figure_tag(fig, f"{target}: forecast vs actual with the 80% band, last backtest window"))
        plt.close(fig)

        by_h = result.by_horizon()
        by_h = by_h[by_h["target"] == target]
        fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.2))
        for name, g in by_h.groupby("forecaster"):
            a.plot(g["h"], g["mase"], label=name, lw=1)
            b.plot(g["h"], g["coverage_80"], label=name, lw=1)
        a.set_xlabel("steps ahead")
        a.set_ylabel("MASE")
        b.set_xlabel("steps ahead")
        b.set_ylabel("80% interval coverage")
        b.axhline(0.8, color="grey", ls=":")
        a.legend(fontsize=7)
        for ax in (a, b):
            ax.grid(alpha=0.3)
        tidy(fig)
        out.append(figure_tag(fig, f"{target}: error and coverage by horizon step"))
        plt.close(fig)
    return out


def render(result, inputs, chosen) -> str:
    summary = result.summary()
    base = "seasonal_naive_daily" if "seasonal_naive_daily" in result.forecasters else result.forecasters[0]
    ratios = result.relative_to(base).set_index(["forecaster", "target"])["mase_ratio"]
    rows = [[r.forecaster, r.target, _num(r.mase), _num(ratios.get((r.forecaster, r.target))), _num(r.smape),
             _num(r.pinball), _num(r.coverage_80), _num(r.coverage_90)] for r in summary.itertuples()]
    sections = [f"<p class='meta'>{len(result.origins)} rolling origins from {esc(result.origins[0])} to "
                f"{esc(result.origins[-1])}, {esc(result.horizon)} steps ahead each; MASE scaled by the seasonal "
                f"naive ({esc(result.season)} steps) on each window's own training data.</p>"]
    if inputs.repairs.lines or inputs.notes:
        sections.append("<h2>Repairs and notes</h2><ul>" + "".join(
            f"<li>{html.escape(line)}</li>" for line in [*inputs.repairs.lines, *inputs.notes, *result.notes])
            + "</ul>")
    sections += ["<h2>Scores</h2>", table(["model", "target", "MASE", f"vs {base}", "sMAPE", "pinball",
                                           "80% coverage", "90% coverage"], rows)]
    if chosen is not None:
        sel, cal = chosen.selection, chosen.scores
        ev = sel.evaluation_scores
        sections += [f"<h2>Selection</h2><p>Chosen on the first {len(sel.selection_origins)} windows: "
                     f"<b>{html.escape(sel.chosen)}</b>; scored, with every model, on the last "
                     f"{len(sel.evaluation_origins)} only:</p>",
                     table(["model", "MASE", "80% coverage", "90% coverage"],
                           [[r.forecaster, _num(r.mase), _num(r.coverage_80), _num(r.coverage_90)]
                            for r in ev.itertuples()]
                           + [[f"{sel.chosen}, intervals recalibrated online", _num(cal["mase"]),
                               _num(cal["coverage_80"]), _num(cal["coverage_90"])],
                              ["chosen in service at each origin, recalibrated", _num(chosen.online_scores["mase"]),
                               _num(chosen.online_scores["coverage_80"]), _num(chosen.online_scores["coverage_90"])]]),
                     "<p class='meta'>Recalibrated: at each origin, the distance of every quantile from the "
                     "median is scaled so that it would have covered its share of the actuals in the windows "
                     "that had ended by then (twin.forecast.calibrate). In service: the same rule (the "
                     "ensemble unless another model beat it clearly) re-applied at every origin to the "
                     "windows that had ended by then, as twin forecast predict applies it.</p>"]
    if result.event_windows:
        ev = result.by_event()
        sections += ["<h2>Inside and outside event windows</h2>",
                     table(["model", "target", "window", "n", "MASE", "80% coverage"],
                           [[r.forecaster, r.target, r.window, r.n, _num(r.mase), _num(r.coverage_80)]
                            for r in ev.itertuples()])]
    sections += ["<h2>Figures</h2>", *_figures(result)]
    return page("twin forecast backtest", sections)



def render_profile(history, profile, notes, model: str) -> str:
    """The load profile page: the recent history and the forecast median with its 80% and 90%
    bands, per target, and the notes on how it was made."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = []
    step = history.step
    tail = max(history.steps_per(pd.Timedelta(days=7)), 3 * len(profile))
    for target in history.targets:
        past = history.values[target].iloc[-tail:]
        fig, ax = plt.subplots(figsize=(9, 3.2))
        ax.plot(past.index, past.to_numpy(), color="black", lw=0.8, label="history")
        ax.plot(profile.index, profile[target], color="C0", lw=1.2, label="median")
        for lo, hi, alpha, label in (("q0.05", "q0.95", 0.15, "90%"), ("q0.1", "q0.9", 0.3, "80%")):
            if f"{target}_{lo}" in profile and f"{target}_{hi}" in profile:
                ax.fill_between(profile.index, profile[f"{target}_{lo}"], profile[f"{target}_{hi}"], color="C0",
                                alpha=alpha, lw=0, label=label)
        ax.set_title(f"{target}: {len(profile)} steps of {step} ahead ({model})", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=4)
        tidy(fig)
        figures.append(figure_tag(fig, f"{target}: history and forecast with bands"))
        plt.close(fig)
    sections = [f"<p class='meta'>Model {esc(model)}; {len(profile)} steps from {esc(profile.index[0])} to "
                f"{esc(profile.index[-1])}.</p>"]
    if notes:
        sections.append("<h2>How it was made</h2><ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes)
                        + "</ul>")
    sections += ["<h2>Forecast</h2>", *figures]
    return page("twin load profile", sections)


__all__ = ["render", "render_profile"]
