"""Every HTML report escapes every string it takes from a model, a trace or a config.

Each report is rendered with hostile names (markup, attribute breakers, ``</script>``, template
braces, unicode) where a user's file puts them, then checked twice: by an HTML parser (no script
element, no ``on*`` attribute, no foreign element or image the strings created, and each string
shown as text), and by headless Chromium loading the page (the payloads would set
``window.__pwned`` and write a marker into the title; the dumped DOM must not hold it).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import MINIMAL

#: Executed, a payload sets window.__pwned and writes this into the title; escaped, the page
#: holds only the pieces ('PW'+'NED'), never the marker itself.
MARKER = "PWNED"
ACT = "window.__pwned=1;document.title='PW'+'NED'"
HOSTILE = [
    f"<script>{ACT}</script>",
    f'<img src=x onerror="{ACT}">',
    f'"><svg onload="{ACT}">',
    f"'><iframe srcdoc='<script>{ACT}</script>'>",
    f"</script><script>{ACT}</script>",
    "{{ 7*7 }} {% if x %}${x}",
    "ünïcödé — naïve café",
    r"$\frac$ 100% $x_$",  # TeX to matplotlib, unless drawn as written
]
#: File names cannot hold '/', so these break out without one.
HOSTILE_FILE = '"><img src=x onerror=window.__pwned=1>'


class Scan(HTMLParser):
    """What a browser would build: elements, their attributes, and the text."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.bad: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "svg", "iframe", "object", "embed", "base", "meta") and not (
                tag == "meta" and attrs == [("charset", "utf-8")]):
            self.bad.append(f"<{tag}> element")
        for name, value in attrs:
            if name.startswith("on") or name in ("srcdoc", "formaction"):
                self.bad.append(f"{name}= attribute on <{tag}>")
        if tag == "img" and not dict(attrs).get("src", "").startswith("data:image/png;base64,"):
            self.bad.append(f"<img> with src {dict(attrs).get('src')!r}")

    def handle_data(self, data):
        self.text.append(data)


def check_markup(page: str, shown: list[str]) -> None:
    scan = Scan()
    scan.feed(page)
    scan.close()
    assert not scan.bad, scan.bad
    text = "".join(scan.text)
    for s in shown:  # the hostile string reached the page, as text
        assert s in text, s
    assert MARKER not in page


# -- the reports, rendered with hostile strings --------------------------------------------------


def simulation_page(tmp: Path) -> tuple[Path, list[str]]:
    from twin.report.simulation import write_simulation
    from twin.sim import PoissonArrivals, run_replications, summarize
    from twin.spec import load_model

    path = tmp / "model.yaml"
    path.write_text(MINIMAL)
    base = load_model(path)
    service, cls = base.services["api"], base.classes["get"]
    svc_name, class_a, class_b = HOSTILE[0], HOSTILE[1], HOSTILE[4]
    # names the schema refuses, as a caller of the library could still pass them
    model = base.model_copy(update={
        "name": HOSTILE[2], "description": " ".join(HOSTILE), "services": {svc_name: service},
        "classes": {class_a: cls.model_copy(update={"entry": svc_name, "share": 0.5}),
                    class_b: cls.model_copy(update={"entry": svc_name, "share": 0.5})}})
    results = run_replications(model, PoissonArrivals(20, 20), replications=1, seed=1, jobs=1, warmup_s=2)
    folder = tmp / "simulation"
    folder.mkdir()
    write_simulation(folder, model=model, results=results, summary=summarize(results),
                     meta={"model_file": HOSTILE_FILE, "rate_per_s": 20, "duration_s": 20, "seed": HOSTILE[5]})
    return folder / "report.html", [svc_name, class_a, class_b, HOSTILE[2], " ".join(HOSTILE), HOSTILE[5]]


def calibration_page(tmp: Path) -> tuple[Path, list[str]]:
    from twin.calibrate.calibrate import assess, calibrate
    from twin.calibrate.skeleton import load_skeleton
    from twin.report.calibration import render
    from twin.traces import read_traces

    rng = np.random.default_rng(0)
    n = 2000
    t = pd.Timestamp("2026-01-05T10:00:00Z") + pd.to_timedelta(np.cumsum(rng.exponential(0.1, n)), unit="s")
    endpoints = [HOSTILE[0], HOSTILE[2], HOSTILE[6]]
    log = tmp / f"{HOSTILE_FILE}.csv"
    pd.DataFrame({"ts": t.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "endpoint": rng.choice(endpoints, n),
                  "latency_s": rng.exponential(0.01, n).round(5)}).to_csv(log, index=False)
    skeleton = tmp / f"{HOSTILE_FILE}.yaml"
    skeleton.write_text(MINIMAL)
    trace, inputs = read_traces([log], columns={"timestamp": "ts", "class": "endpoint", "latency_s": "latency_s"},
                                service="api")
    cal = calibrate(trace, load_skeleton(skeleton), inputs=inputs, seed=0)
    fid, _ = assess(cal, replications=1)
    cal = dataclasses.replace(cal.with_fidelity(fid), warnings=[*cal.warnings, HOSTILE[1], HOSTILE[3]])
    page = tmp / "calibration.html"
    page.write_text(render(cal, fid))
    return page, [*endpoints, HOSTILE_FILE, HOSTILE[1], HOSTILE[3]]


def _forecast_inputs(tmp: Path, target: str):
    from twin.forecast.run import load_inputs

    idx = pd.date_range("2026-03-02", periods=24 * 10, freq="h")
    y = 50 + 20 * np.sin(2 * np.pi * np.arange(len(idx)) / 24) + np.random.default_rng(0).normal(0, 2, len(idx))
    series = tmp / "load.csv"
    pd.DataFrame({"timestamp": idx.strftime("%Y-%m-%d %H:%M:%S"), "value": y.round(2)}).to_csv(series, index=False)
    return load_inputs(series, value_column=None, target=target, time_zone="UTC", events=None, holidays=None,
                       horizon="6h")


def forecast_page(tmp: Path) -> tuple[Path, list[str]]:
    from twin.forecast.run import run_backtest, selection
    from twin.report.forecast import render

    target = HOSTILE[3]
    inputs = _forecast_inputs(tmp, target)
    result = run_backtest(inputs, ["seasonal_naive_daily", "seasonal_naive_weekly"], horizon=6, windows=4, seed=0)
    inputs = dataclasses.replace(inputs, notes=(*inputs.notes, HOSTILE[0], HOSTILE[4]))
    page = tmp / "forecast.html"
    page.write_text(render(result, inputs, selection(result, target)))
    return page, [target, HOSTILE[0], HOSTILE[4]]


def profile_page(tmp: Path) -> tuple[Path, list[str]]:
    from twin.report.forecast import render_profile

    target = HOSTILE[7]
    inputs = _forecast_inputs(tmp, target)
    index = pd.date_range(inputs.history.values.index[-1] + pd.Timedelta(hours=1), periods=6, freq="h", tz="UTC")
    profile = pd.DataFrame({target: 50.0, f"{target}_q0.1": 40.0, f"{target}_q0.9": 60.0}, index=index)
    page = tmp / "profile.html"
    page.write_text(render_profile(inputs.history, profile, [HOSTILE[1], HOSTILE[5]], HOSTILE[2]))
    return page, [HOSTILE[1], HOSTILE[5], HOSTILE[2], HOSTILE[7]]


def run_page(tmp: Path) -> tuple[Path, list[str]]:
    from types import SimpleNamespace

    from twin.report.run import render_run
    from twin.spec import load_model

    path = tmp / "model.yaml"
    path.write_text(MINIMAL)
    model = load_model(path).model_copy(update={"name": HOSTILE[1]})
    regime, param, study = HOSTILE[0], HOSTILE[7], HOSTILE[4]
    exp = SimpleNamespace(
        name=HOSTILE[3], seed=0, scenarios=[{"kind": HOSTILE[6], "start": "1h"}],
        regimes=SimpleNamespace(quantile=0.9),
        sweep=SimpleNamespace(objectives=[("cost", "minimize")], constraints={"latency_p99_s": 0.2}, trials=3,
                              window=60.0, finalists=1, replications=2, tie_tolerance=0.02))
    index = pd.date_range("2026-03-02", periods=12, freq="h", tz="UTC")
    history = pd.DataFrame({"requests_per_s": np.linspace(10, 20, 12)}, index=index)
    future = pd.date_range(index[-1] + pd.Timedelta(hours=1), periods=4, freq="h", tz="UTC")
    profile = pd.DataFrame({"requests_per_s": 20.0, "requests_per_s_q0.1": 15.0, "requests_per_s_q0.9": 25.0},
                           index=future)
    regimes_doc = {"labels": {str(t): regime for t in future},
                   "regimes": [{"name": regime, "steps": 4, "share": 1.0,
                                "representative": {"requests_per_s": 25.0, f"mix_{HOSTILE[5]}": 1.0}}]}
    estimates = {"cost": {"mean": 1.0, "half_width": 0.1}, "latency_p99_s": {"mean": 0.1, "half_width": 0.01}}
    trials = [{"number": i, "state": "complete", "values": [1.0 + i], "feasible": True, "warm_start": False}
              for i in range(3)]
    results = {regime: {"regime": {"name": regime}, "study": study, "warm_start_from": HOSTILE[6], "result": {
        "objectives": [["cost", "minimize"]], "constraints": {"latency_p99_s": 0.2}, "history": trials,
        "pareto": [], "importance": {"cost": {param: 1.0}}, "trials": {HOSTILE[5]: 3},
        "winner": {"params": {param: HOSTILE[3]}},
        "candidates": [{"verdict": HOSTILE[6], "trial": 0, "params": {param: HOSTILE[3]}, "estimates": estimates,
                        "replications": [{"latency_p99_s": 0.1}, {"latency_p99_s": 0.1}]}]}}}
    schedule = {"lead_time_s": 900, "quantile": 0.9, "entries": [{
        "apply_at": str(future[0]), "from": str(future[0]), "until": str(future[-1]), "anchor": regime,
        "params": {param: HOSTILE[3]}, "confidence": 1.0, "sweep_needed": False, "reason": HOSTILE[1]}]}
    forecast_info = {"model": HOSTILE[0], "series": HOSTILE_FILE, "scale": 1.0, "trained_until": HOSTILE[4]}
    page = tmp / "run.html"
    page.write_text(render_run(exp, model, history, profile, regimes_doc, results, schedule, forecast_info))
    return page, [regime, param, study, HOSTILE[1], HOSTILE[3], HOSTILE[5], HOSTILE[6], HOSTILE_FILE]


REPORTS = {"simulation": simulation_page, "calibration": calibration_page, "forecast": forecast_page,
           "profile": profile_page, "run": run_page}


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """``pages(report)``: the report rendered (once in this process) and the strings it must show."""
    built = {}

    def get(name):
        if name not in built:
            built[name] = REPORTS[name](tmp_path_factory.mktemp(name))
        return built[name]
    return get


@pytest.mark.parametrize("report", list(REPORTS))
def test_report_escapes_hostile_strings(pages, report):
    page, shown = pages(report)
    check_markup(page.read_text(), shown)


def test_the_markup_check_sees_an_unescaped_page():
    with pytest.raises(AssertionError):
        check_markup(f"<p>{HOSTILE[1]}</p>", [])
    with pytest.raises(AssertionError):
        check_markup(f"<p>{HOSTILE[2]}</p>", [])


# -- in a browser ----------------------------------------------------------------------------------


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("no chromium on PATH (chromium, chromium-browser or google-chrome): CI needs it (.ci/run)")
    pytest.skip("no chromium on PATH (chromium, chromium-browser or google-chrome) to load the reports in")


def dump_dom(browser: str, page: Path) -> str:
    import tempfile

    with tempfile.TemporaryDirectory() as profile:  # its own profile: tests may run side by side
        out = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                              f"--user-data-dir={profile}", "--virtual-time-budget=2000", "--dump-dom",
                              page.resolve().as_uri()], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "</body>" in out.stdout, out.stderr[-2000:]
    return out.stdout


def test_chromium_runs_a_payload_that_is_not_escaped(tmp_path):
    browser = chromium()
    page = tmp_path / "control.html"
    page.write_text(f"<!doctype html><html><head><title>t</title></head><body>{HOSTILE[1]}"
                    f"{HOSTILE[0]}</body></html>")
    assert MARKER in dump_dom(browser, page)  # the harness would see a payload that ran


@pytest.mark.parametrize("report", list(REPORTS))
def test_report_runs_no_payload_in_chromium(pages, report):
    browser = chromium()
    page, _ = pages(report)
    dom = dump_dom(browser, page)
    assert MARKER not in dom
    assert "__pwned" in dom  # the payloads are there, as text
