"""The report of ``twin run``: forecast with bands and regimes, each regime's sweep (trials,
Pareto front, finalists with intervals, parameter importance), and the schedule."""

from __future__ import annotations

import html
import math

import pandas as pd

from ..sweep.task import replications_met
from .html import esc, figure_tag, page, table, tidy
from .simulation import INTERVAL_NOTE, interval_text

COLOURS = ["C2", "C1", "C4", "C5", "C6", "C8", "C9", "C7", "tab:olive", "tab:cyan", "C3", "C0"]  # the band is C0


def _num(x, digits=4) -> str:
    return "–" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{digits}g}"


def _est(e: dict | None) -> str:
    """An ``Estimate.to_dict()`` as text: ``mean ± half`` where its interval is symmetric,
    ``mean [low, high]`` where skewed (a pooled quantile's)."""
    if not e or e.get("mean") is None:
        return "–"
    if e.get("half_width") is None:
        return _num(e["mean"])
    if e.get("ci_low") is None or e.get("ci_high") is None:  # a run folder written before ci_low/ci_high
        return f"{_num(e['mean'])} ± {_num(e['half_width'], 2)}"
    return interval_text(e["mean"], e["ci_low"], e["ci_high"])


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _forecast_figure(history: pd.DataFrame, profile: pd.DataFrame, regimes_doc: dict, quantile: float) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(10, 3.6))
    ax.plot(history.index, history["requests_per_s"], color="black", lw=0.8, label="history")
    ax.plot(profile.index, profile["requests_per_s"], color="C0", lw=1.2, label="median forecast")
    qs = sorted(float(c.rsplit("_q", 1)[1]) for c in profile.columns if c.startswith("requests_per_s_q"))
    if len(qs) >= 2:
        lo, hi = qs[0], qs[-1]
        ax.fill_between(profile.index, profile[f"requests_per_s_q{lo:g}"], profile[f"requests_per_s_q{hi:g}"],
                        color="C0", alpha=0.2, label=f"q{lo:g}-q{hi:g}")
    col = f"requests_per_s_q{quantile:g}"
    if col in profile:
        ax.plot(profile.index, profile[col], color="C3", lw=0.9, ls="--", label=f"q{quantile:g} (tuned for)")
    labels = pd.Series(regimes_doc["labels"])
    labels.index = pd.to_datetime(labels.index, utc=True)
    names = [r["name"] for r in regimes_doc["regimes"]]
    step = profile.index[1] - profile.index[0] if len(profile) > 1 else pd.Timedelta(minutes=5)
    for t, name in labels.items():
        ax.axvspan(t, t + step, color=COLOURS[names.index(name) % len(COLOURS)], alpha=0.08, lw=0)
    for i, name in enumerate(names):
        ax.plot([], [], color=COLOURS[i % len(COLOURS)], lw=6, alpha=0.3, label=name)
    ax.set_ylabel("requests/s")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=4)
    tidy(fig)
    tag = figure_tag(fig, "Forecast with its band; the background shows each step's load regime")
    plt.close(fig)
    return tag


def _trials_figure(doc: dict) -> str:
    plt = _plt()
    r = doc["result"]
    objectives = r["objectives"]
    hist = r["history"]
    if len(objectives) >= 2:
        fig, ax = plt.subplots(figsize=(5, 3.6))
        for t in hist:
            if t["values"] is None:
                continue
            ax.scatter(t["values"][0], t["values"][1], s=14, color="C0" if t["feasible"] else "0.7")
        front = sorted((p["values"] for p in r["pareto"] if p["feasible"]), key=lambda v: v[0])
        if front:
            ax.plot([v[0] for v in front], [v[1] for v in front], color="C3", lw=1.2, marker="o", ms=4,
                    label="Pareto front")
            ax.legend(fontsize=7)
        ax.set_xlabel(f"{objectives[0][0]} ({objectives[0][1]})")
        ax.set_ylabel(f"{objectives[1][0]} ({objectives[1][1]})")
        caption = f"{doc['regime']['name']}: trials (grey: infeasible) and the feasible Pareto front"
    else:
        (metric, direction), = objectives
        fig, ax = plt.subplots(figsize=(6, 3.4))
        best, xs, ys = None, [], []
        for t in sorted(hist, key=lambda t: t["number"]):
            if t["state"] == "pruned":
                ax.axvline(t["number"], color="0.85", lw=0.8)
                continue
            if t["values"] is None:
                continue
            v = t["values"][0]
            ax.scatter(t["number"], v, s=16, color="C0" if t["feasible"] else "0.6",
                       marker="s" if t["warm_start"] else "o")
            if t["feasible"] and (best is None or (v < best if direction == "minimize" else v > best)):
                best = v
            if best is not None:
                xs.append(t["number"])
                ys.append(best)
        if xs:
            ax.step(xs, ys, where="post", color="C3", lw=1.2, label="best feasible so far")
            ax.legend(fontsize=7)
        ax.set_xlabel("trial (squares: warm start; grey lines: pruned)")
        ax.set_ylabel(f"{metric} ({direction})")
        caption = f"{doc['regime']['name']}: trials, feasible in blue, infeasible in grey"
    ax.grid(alpha=0.3)
    tidy(fig)
    tag = figure_tag(fig, caption)
    plt.close(fig)
    return tag


def _importance_table(results: dict) -> str | None:
    """Per regime and per objective or constraint: each parameter's share of that target's
    variance over the trials (a main effect; the rest is interactions and noise)."""
    rows = []
    for name, d in results.items():
        for target, shares in (d["result"]["importance"] or {}).items():
            if not isinstance(shares, dict):  # a run folder written before per-target shares
                continue
            rows.append([name, target, ", ".join(f"{p} {v:.1%}" for p, v in shares.items()),
                         f"{max(0.0, 1 - sum(shares.values())):.1%}"])
    return table(["regime", "objective or constraint", "share of its variance explained by each parameter",
                  "not explained by one parameter"], rows) if rows else None


def _finalists(doc: dict) -> str:
    r = doc["result"]
    metrics = [m for m, _ in r["objectives"]] + [m for m in r["constraints"] if m not in dict(r["objectives"])]
    header = ["verdict", "trial", "parameters"] + [
        f"{m} ≤ {r['constraints'][m]:g}" if m in r["constraints"] else m for m in metrics] + ["constraints met"]
    rows = []
    for c in r["candidates"]:
        reps = c.get("replications") or []
        met = replications_met(reps, r["constraints"])
        rows.append([c["verdict"], c["trial"], ", ".join(f"{k}={v}" for k, v in c["params"].items())]
                    + [_est(c["estimates"].get(m)) for m in metrics] + [f"{met}/{len(reps)}"])
    return table(header, rows)


def _effects(doc: dict) -> str:
    """Per swept parameter: the winner's value and whether it has a measurable effect (the paired
    difference, winner minus the current value, on each objective and constraint), or is left at the
    current value because it has none (``twin.sweep.noise``)."""
    r = doc["result"]
    effects = r.get("effects") or {}  # a run folder written before the check has none
    if not effects:
        return ""
    metrics = [m for m, _ in r["objectives"]] + [m for m in r["constraints"] if m not in dict(r["objectives"])]
    rows = []
    for name, e in effects.items():
        outcome = {"no measurable effect": f"no measurable effect, left at {e['current']} (swept {e['swept']})",
                   "negligible effect": f"negligible effect, left at {e['current']} (swept {e['swept']})",
                   "at current": "the current value", "effect": "effect"}.get(e["verdict"], e["verdict"])
        if e.get("reason"):
            outcome += f": {e['reason']}"
        rows.append([name, e["value"], outcome] + [_interval(e["effects"].get(m)) for m in metrics])
    return table(["parameter", "recommended", "outcome"] + [f"{m}: winner − current" for m in metrics], rows)


def _interval(e: dict | None) -> str:
    if not e or e.get("ci_low") is None:
        return "–"
    return f"{_num(e['mean'])} [{_num(e['ci_low'])}, {_num(e['ci_high'])}]"


def render_run(exp, model, history: pd.DataFrame, profile: pd.DataFrame, regimes_doc: dict, results: dict,
               schedule: dict, forecast_info: dict) -> str:
    s = exp.sweep
    objective = ", ".join(f"{d} {m}" for m, d in s.objectives)
    constraints = ", ".join(f"{m} ≤ {b:g}" for m, b in s.constraints.items()) or "none"
    sections = [
        f"<p class='meta'>experiment <b>{html.escape(exp.name)}</b> · model <b>{html.escape(model.name)}</b> · "
        f"seed {esc(exp.seed)} · forecast {html.escape(forecast_info['model'])} from "
        f"{html.escape(str(forecast_info['series']))} (x{forecast_info['scale']:g}), "
        f"trained until {html.escape(forecast_info['trained_until'])}</p>",
        "<h2>Forecast and load regimes</h2>",
        _forecast_figure(history, profile, regimes_doc, exp.regimes.quantile),
        table(["regime", "steps", "share", f"requests/s at q{exp.regimes.quantile:g}", "class mix"],
              [[r["name"], r["steps"], f"{r['share']:.0%}", _num(r["representative"]["requests_per_s"]),
                ", ".join(f"{k[4:]} {v:.0%}" for k, v in r["representative"].items() if k.startswith("mix_")) or
                "the model's shares"] for r in regimes_doc["regimes"]]),
        f"<h2>Sweeps</h2><p>Objective: {html.escape(objective)}; constraints: {html.escape(constraints)}. "
        f"{s.trials} trials per regime on a {s.window:g} s window of synthesized load (every trial of a regime "
        f"faces the same load and seeds), then the {s.finalists} leading candidates re-run on {s.replications} "
        f"independent loads; {esc(INTERVAL_NOTE)}. A finalist whose interval overlaps the winner's, or within "
        f"{s.tie_tolerance:.0%} of it, is a tie.</p>",
    ]
    if exp.scenarios:
        sections.append("<p>Edge cases in every regime: " + html.escape(
            "; ".join(", ".join(f"{k}={v}" for k, v in c.items()) for c in exp.scenarios)) + "</p>")
    for name, doc in results.items():
        r = doc["result"]
        winner = r["winner"]
        head = f"<h3>{html.escape(name)}</h3><p>study <code>{html.escape(doc['study'])}</code> · trials " + \
            esc(", ".join(f"{k} {v}" for k, v in r["trials"].items()))
        if doc.get("warm_start_from"):
            head += f" · warm start from {html.escape(doc['warm_start_from'])}"
        head += "</p>" + _window_notes(doc)
        verdict = (f"<p><b>Winner</b>: {html.escape(', '.join(f'{k}={v}' for k, v in winner['params'].items()))}</p>"
                   if winner else "<p><b>No finalist met the constraints</b>: nothing is recommended for this "
                                  "regime; widen the tunables' bounds or relax the constraints.</p>")
        sections += [head, _trials_figure(doc), verdict, _finalists(doc), _effects(doc)]
    imp = _importance_table(results)
    if imp:
        sections += ["<h2>Parameter importance</h2><p>The share of each objective's and constraint's variance "
                     "over the trials that each parameter explains on its own.</p>", imp]
    rows = []
    for e in schedule["entries"]:
        rows.append([e["apply_at"][:16].replace("T", " "), e["from"][:16].replace("T", " "),
                     e["until"][:16].replace("T", " "), e["anchor"] or "–",
                     ", ".join(f"{k}={v}" for k, v in (e["params"] or {}).items()) or "–",
                     _num(e["confidence"], 2), "sweep needed" if e["sweep_needed"] else e["reason"]])
    sections += [f"<h2>Schedule</h2><p>Settings to hold, applied {schedule['lead_time_s'] / 60:g} minutes ahead "
                 f"of the load they are for (q{schedule['quantile']:g} of the forecast, matched to the policy "
                 f"database with hysteresis).</p>",
                 table(["apply at", "from", "until", "nearest regime", "parameters", "confidence", "note"], rows)]
    return page(f"twin run: {exp.name}", sections)


def _window_notes(doc: dict) -> str:
    """What the sweep's window check and the winner's warm-up (MSER-5) said, where either matters:
    a window shorter than the model's slowest process, a warm-up longer than the configured one."""
    notes = list((doc.get("window") or {}).get("messages") or [])
    warmup = doc.get("warmup") or {}
    if warmup.get("longer_than_configured") or warmup.get("settled") is False:
        notes.append(warmup.get("note") or "")
    return "".join(f'<p style="color:#a34700"><b>Window</b>: {esc(n)}</p>' for n in notes if n)


__all__ = ["render_run"]
