"""The calibration report: one HTML page a person can check before trusting the twin.

Verdict and warnings first; then the fidelity table (held-out requests, trace vs twin), latency
CDFs trace vs twin, for each service the observed service times against the fitted
distribution (histogram and Q-Q plot), the request rate over time with the split marked, the
class mix and the call graph.
"""

from __future__ import annotations

import math

import numpy as np

from ..calibrate.calibrate import Calibration
from ..calibrate.fidelity import Fidelity
from ..calibrate.requests import roots
from ..calibrate.service_times import quiet_latencies, unqueued_latencies
from .html import esc, figure_tag, page, table, tidy


def _num(x: float, digits: int = 4) -> str:
    return "–" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{digits}g}"


def _fidelity_rows(fid: Fidelity) -> list[list[str]]:
    out = []
    for r in fid.rows:
        verdict = ("–" if r.threshold is None else "too noisy to judge") if r.passed is None else (
            "pass" if r.passed else "FAIL")
        limit = "" if r.threshold is None else f"≤ {r.threshold:g}"
        pct = r.metric.startswith(("latency p", "throughput"))
        err = f"{r.error:.1%}" if pct else f"{r.error:.3f}"
        noise = "" if not math.isfinite(r.noise) else (f"±{r.noise:.1%}" if pct else f"±{r.noise:.3f}")
        out.append([r.scope, r.metric, _num(r.trace), _num(r.twin), err, noise, limit, verdict, f"{r.n_trace:,}",
                    f"{r.n_twin:,}"])
    return out


def _figures(cal: Calibration, fid: Fidelity) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = []
    # latency CDFs, trace vs twin
    scopes = [s for s in fid.samples if len(fid.samples[s][0]) and len(fid.samples[s][1])] if fid else []
    if scopes:
        cols = min(3, len(scopes))
        rows = math.ceil(len(scopes) / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
        for ax, scope in zip(axes.flat, scopes):
            a, b = fid.samples[scope]
            for x, label in ((a, "trace (held out)"), (b, "twin replay")):
                x = np.sort(x)
                ax.plot(np.maximum(x, 1e-6) * 1e3, np.arange(1, len(x) + 1) / len(x), label=label)
            ax.set_xscale("log")
            ax.set_title(scope, fontsize=9)
            ax.set_xlabel("latency (ms)")
            ax.grid(alpha=0.3)
        for ax in list(axes.flat)[len(scopes):]:
            ax.axis("off")
        axes.flat[0].legend(fontsize=8)
        tidy(fig)
        out.append(figure_tag(fig, "Latency CDF of held-out requests: the trace against the twin replaying them"))
        plt.close(fig)

    # service times: observed vs fitted
    train = cal.split.train
    spans = train[train["span_id"].notna()]
    rng = np.random.default_rng(0)
    for svc, sf in cal.services.items():
        if len(spans):
            mine = spans[(spans["service"].astype(str) == svc).to_numpy() & ~spans["error"].to_numpy(dtype=bool)]
            x = mine["exclusive_s"].dropna().to_numpy(dtype=float)
        else:  # the sample the fit was made on: requests that did not queue, or the quiet periods'
            mine = roots(train)
            mine = mine[(mine["service"].astype(str) == svc).to_numpy() & ~mine["error"].to_numpy(dtype=bool)]
            spec = cal.model.services[svc]
            x = (unqueued_latencies(mine, spec.instances * spec.workers) if sf.source.startswith("latency of unq")
                 else quiet_latencies(mine)[0])
        if len(x) < 2:
            continue
        fitted = sf.pooled.dist.sample(rng, 20000)
        fig, (h, q) = plt.subplots(1, 2, figsize=(9, 3.2))
        hi = np.quantile(np.concatenate([x, fitted]), 0.995)
        bins = np.linspace(0, hi if hi > 0 else 1, 60)
        h.hist(x, bins=bins, density=True, alpha=0.55, label=f"observed ({len(x):,})")
        h.hist(fitted, bins=bins, density=True, histtype="step", lw=1.5, label=f"fitted {sf.pooled.family}")
        h.set_xlabel(f"{svc} service time (s): {sf.source}")
        h.legend(fontsize=8)
        p = np.linspace(0.005, 0.995, 199)
        qo, qf = np.quantile(x, p), np.quantile(fitted, p)
        q.plot(qf, qo, ".", ms=3)
        lim = [0, max(qo.max(), qf.max())]
        q.plot(lim, lim, color="grey", lw=1)
        q.set_xlabel("fitted quantiles (s)")
        q.set_ylabel("observed quantiles (s)")
        q.set_title("Q-Q", fontsize=9)
        tidy(fig)
        out.append(figure_tag(fig, f"{svc}: {sf.pooled.describe()}"))
        plt.close(fig)

    # request rate over time
    req = roots(cal.trace)
    t = (req["timestamp"] - req["timestamp"].iloc[0]).dt.total_seconds().to_numpy()
    width = max(1.0, t[-1] / 300)
    counts = np.bincount((t // width).astype(int))
    fig, ax = plt.subplots(figsize=(9, 3))
    ax.plot(np.arange(len(counts)) * width, counts / width, lw=1)
    ax.axvline((cal.split.at - req["timestamp"].iloc[0]).total_seconds(), color="red", ls="--", lw=1,
               label="split: calibration | held out")
    ax.set_xlabel(f"seconds since {req['timestamp'].iloc[0]:%Y-%m-%d %H:%M:%S %Z}")
    ax.set_ylabel(f"requests/s ({width:g} s bins)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    tidy(fig)
    out.append(figure_tag(fig, "Request rate over the whole trace"))
    plt.close(fig)
    return out


def render(cal: Calibration, fid: Fidelity | None, *, title: str | None = None) -> str:
    m = cal.model
    prov = m.provenance or {}
    colour = {"faithful": "#1a7f37", "not faithful": "#c62828", "undetermined": "#b26a00"}
    verdict = (f"<p style='font-size:1.2em'><b>Verdict: <span style='color:{colour[fid.verdict]}'>{esc(fid.verdict)}"
               f"</span></b> on {prov['requests']['held_out']:,} held-out requests, {fid.replications} replays"
               + (" (too few held-out requests to judge the overall KS and p95)" if fid.verdict == "undetermined"
                  else "") + "</p>"
               if fid else "<p><b>No fidelity check</b>: the trace has no latencies to compare.</p>")
    inputs = "".join(f"<li>{esc(i.get('file'))}: {esc(i.get('format'))}, {i.get('rows', 0):,} rows"
                     + (f", {esc(i['malformed'])} malformed skipped" if i.get("malformed") else "") + "</li>"
                     for i in prov.get("inputs", []))
    tr = prov.get("time_range", {})
    sections = [
        verdict,
        f"<p class='meta'>Inputs:</p><ul>{inputs}</ul><p class='meta'>From {esc(tr.get('start'))} to "
        f"{esc(tr.get('end'))}; calibrated on the part before {esc(tr.get('split_at'))}, judged on the rest "
        f"({tr.get('holdout', 0):.0%} of the time range). Skeleton: {esc(prov.get('skeleton'))}.</p>",
    ]
    if cal.warnings:
        sections.append("<h2>Warnings</h2><ul>" + "".join(f"<li>{esc(w)}</li>" for w in cal.warnings)
                        + "</ul>")
    if fid:
        sections += ["<h2>Fidelity (held-out requests)</h2>",
                     "<p class='meta'>±noise: the 95% sampling uncertainty of the held-out trace's own figure. A row "
                     "fails when its error exceeds the threshold by more than the noise; otherwise it is judged "
                     "only when the noise is at most half the threshold.</p>",
                     table(["scope", "metric", "trace", "twin", "error", "±noise", "threshold", "verdict",
                            "n trace", "n twin"], _fidelity_rows(fid))]
    sections += ["<h2>Request classes</h2>", table(["class", "share", "entry", "labels", "error rate"], [
        [c, f"{m.classes[c].share:.3f}", m.classes[c].entry, ", ".join(info["labels"])[:80],
         f"{info['error_rate']:.4f}"] for c, info in prov.get("classes", {}).items()])]
    if cal.services:
        sections += ["<h2>Service times</h2>", table(["service", "source", "family", "n", "mean (ms)", "KS",
                                                      "GoF p", "per class"], [
            [s, f.source, f.pooled.family, f"{f.pooled.n:,}", _num(f.pooled.dist.mean() * 1e3),
             _num(f.pooled.ks_statistic, 3), _num(f.pooled.gof_pvalue, 3), ", ".join(f.by_class) or "–"]
            for s, f in cal.services.items()])]
    if cal.edges:
        sections += ["<h2>Call graph</h2>", table(["caller", "target", "classes", "P(call)", "fan-out",
                                                   "caller spans"], [
            [e.caller, e.target, "all" if e.classes is None else ", ".join(e.classes), f"{e.probability:.4f}",
             f"{e.fanout:.2f}", f"{e.caller_spans:,}"] for e in cal.edges])]
    sections += ["<h2>Figures</h2>", *_figures(cal, fid)]
    return page(title or f"twin calibrate: {m.name}", sections)

