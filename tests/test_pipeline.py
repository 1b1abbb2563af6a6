"""`twin run EXPERIMENT` as a user meets it: every stage's files, a rerun that resumes, a changed
setting that reruns its stages, the policy commands on the result, and configs refused before
any work starts."""

import json

import numpy as np
import pandas as pd
import pytest

from tests.conftest import mmc_model
from tests.test_cli import twin

MODEL = mmc_model(1, 10, price=0.1)

EXPERIMENT = """
name: tiny
seed: 3
model: mmc.yaml
history: {{series: load.csv, time_zone: UTC}}
forecast: {{model: seasonal_naive_daily, horizon: 12h, calibration_windows: 2}}
regimes: {{max: 2, quantile: 0.9}}
sweep:
  maximize: [service.server.utilisation]
  minimize: []
  constraints: {{latency_mean_s: 0.3}}
  trials: {trials}
  finalists: 2
  replications: 3
  window: 5min
  warmup: 30s
schedule: {{lead_time: 10min, min_hold: 0s}}
"""


@pytest.fixture
def experiment(tmp_path):
    idx = pd.date_range("2026-03-02", periods=24 * 14, freq="h")
    rng = np.random.default_rng(0)
    day = (idx.hour >= 8) & (idx.hour < 20)
    rate = np.where(day, 14.0, 5.0) + rng.normal(0, 0.3, len(idx))  # quiet nights, busy days
    pd.DataFrame({"timestamp": idx.strftime("%Y-%m-%d %H:%M:%S"), "value": rate.round(3)}).to_csv(
        tmp_path / "load.csv", index=False)
    (tmp_path / "mmc.yaml").write_text(MODEL)

    def write(trials=8, extra=""):
        path = tmp_path / "tiny.yaml"
        path.write_text(EXPERIMENT.format(trials=trials) + extra)
        return path
    return write


def test_run_writes_every_stage_and_a_rerun_resumes(experiment, tmp_path):
    out = tmp_path / "run"
    r = twin("run", experiment(), "--out", out)
    assert r.returncode == 0, r.stderr
    for f in ("model.yaml", "forecast/profile.parquet", "regimes.json", "policy.json", "schedule.json", "schedule.csv",
              "report.html", "studies.db", "policy.db", "stages.json"):
        assert (out / f).exists(), f
    regimes = json.loads((out / "regimes.json").read_text())["regimes"]
    workload = pd.read_parquet(out / "workloads" / "regime-2.parquet")  # what regime-2's trials faced
    assert abs(len(workload) / (regimes[1]["representative"]["requests_per_s"] * 300) - 1) < 0.1
    replay = twin("simulate", out / "model.yaml", "--workload", out / "workloads" / "regime-2.parquet",
                  "--replications", 1)
    assert replay.returncode == 0, replay.stderr
    assert [r["name"] for r in regimes] == ["regime-1", "regime-2"]
    quiet, busy = (json.loads((out / "sweep" / f"{r['name']}.json").read_text())["result"]["winner"] for r in regimes)
    # M/M/c at 0.2 s: the quiet regime (~5.5/s at q0.9) needs fewer workers than the busy one (~15/s)
    assert quiet["params"]["workers"] < busy["params"]["workers"]
    assert busy["estimates"]["latency_mean_s"]["mean"] <= 0.3
    schedule = json.loads((out / "schedule.json").read_text())["entries"]
    assert len(schedule) >= 2 and {e["anchor"] for e in schedule} == {"tiny/regime-1", "tiny/regime-2"}
    first = pd.Timestamp(schedule[0]["from"])
    assert pd.Timestamp(schedule[0]["apply_at"]) == first - pd.Timedelta(minutes=10)
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 3 and "Schedule" in html and "regime-2" in html
    _a_short_dip_is_held_and_a_long_one_is_not(experiment(), out, regimes)
    _the_recommendations_are_verified_on_hold_out_windows(experiment(), out, regimes)
    from twin.policy.store import PolicyStore

    with PolicyStore(f"sqlite:///{out / 'policy.db'}") as store:  # finalists ran on loads 1..3, not the trials' 0
        assert {tuple(r["seeds"]) for r in store.runs()} == {(1, 2, 3)}

    again = twin("run", experiment(), "--out", out)
    assert again.returncode == 0, again.stderr
    assert "resumed: model, forecast, regimes, synthesize, sweep:regime-1, sweep:regime-2, policy, schedule, report" \
        in again.stdout

    more = twin("run", experiment(trials=10), "--out", out)  # more trials: the studies go on, later stages rerun
    assert more.returncode == 0, more.stderr
    assert "resumed: model, forecast, regimes, synthesize" in more.stdout and "sweep: regime-1" in more.stdout
    doc = json.loads((out / "sweep" / "regime-1.json").read_text())["result"]
    assert sum(doc["trials"].values()) == 10

    path = experiment(trials=10)
    path.write_text(path.read_text().replace("replications: 3", "replications: 4"))
    again = twin("run", path, "--out", out)  # what is done after the trials changed: the studies are kept
    assert again.returncode == 0, again.stderr
    doc = json.loads((out / "sweep" / "regime-1.json").read_text())["result"]
    assert sum(doc["trials"].values()) == 10
    # 4 replications each; one that meets the bound on average but not surely, and beats the sure ones,
    # is firmed up with more (8, 16: sweep.max_replications defaults to 4 x replications)
    assert min(len(c["replications"]) for c in doc["candidates"]) == 4
    assert {len(c["replications"]) for c in doc["candidates"]} <= {4, 8, 16}
    bad_mix = twin("policy", "query", "--db", f"sqlite:///{out / 'policy.db'}", "--model-file", tmp_path / "mmc.yaml",
                   "--rate", 14, "--mix", "jobs=1")
    assert bad_mix.returncode == 2 and "expected CLASS=SHARE with a class of mmc_sized (job)" in bad_mix.stderr
    listed = twin("sweep", "--storage", f"sqlite:///{out / 'studies.db'}")
    assert listed.returncode == 0 and listed.stdout.count("tiny.regime-") == 2 and "maximize" in listed.stdout
    shown = twin("policy", "show", "--db", f"sqlite:///{out / 'policy.db'}", "--all")
    assert shown.returncode == 0 and shown.stdout.count("tiny") == 6  # two regimes, three versions each
    q = twin("policy", "query", "--db", f"sqlite:///{out / 'policy.db'}", "--model-file", tmp_path / "mmc.yaml",
             "--rate", 14, "--json")
    assert q.returncode == 0, q.stderr
    assert json.loads(q.stdout)["params"]["workers"] >= busy["params"]["workers"] - 1
    far = twin("policy", "query", "--db", f"sqlite:///{out / 'policy.db'}", "--model-file", tmp_path / "mmc.yaml",
               "--rate", 500)
    said = " ".join(far.stdout.split())  # as printed, wrapped at the terminal's width
    assert far.returncode == 1 and "500 req/s is above the busiest stored regime, tiny/regime-2" in said
    assert "no close neighbour" in said
    swept = twin("policy", "query", "--db", f"sqlite:///{out / 'policy.db'}", "--model-file", tmp_path / "mmc.yaml",
                 "--rate", 30, "--sweep", experiment(trials=6), "--out", out, "--json")
    assert swept.returncode == 0, swept.stderr
    assert "30 req/s is above the busiest stored regime, tiny/regime-2" in swept.stderr  # never extrapolated
    answer = json.loads(swept.stdout)
    assert answer["neighbours"][0]["regime"] == "load-30rps" and answer["params"]["workers"] >= 7  # 30/s at 0.2 s
    assert answer["check"]["passed"] and answer["check"]["constraints"]["latency_mean_s"]["bound"] == 0.3
    exported = twin("policy", "export", "--db", f"sqlite:///{out / 'policy.db'}", "-o", tmp_path / "p.json")
    assert exported.returncode == 0
    assert len(json.loads((tmp_path / "p.json").read_text())["policies"]) == 3


def _the_recommendations_are_verified_on_hold_out_windows(path, out, regimes):
    """`twin verify`: each regime's winner on 4 windows the sweep never ran, per constraint."""
    r = twin("verify", path, "--out", out, "--windows", 4, "--window", 120, "--require", 0.7)
    doc = json.loads((out / "verify.json").read_text())
    assert [v["regime"] for v in doc["regimes"]] == [g["name"] for g in regimes]
    for v in doc["regimes"]:
        c = v["constraints"]["latency_mean_s"]
        assert v["windows"] == 4 and len(c["values"]) == 4 and c["bound"] == 0.3
        assert c["met"] == sum(x <= 0.3 for x in c["values"])
        assert v["holds"] == (c["met"] >= 0.7 * 4)
        winner = json.loads((out / "sweep" / f"{v['regime']}.json").read_text())["result"]["winner"]
        assert v["params"] == winner["params"]
        seen = {rep["latency_mean_s"] for rep in winner["replications"]}
        assert len(seen) >= 3 and not seen & set(c["values"])  # other loads than the finalists'
    assert r.returncode == (0 if all(v["holds"] for v in doc["regimes"]) else 1), r.stderr
    assert "hold-out windows" in " ".join(r.stdout.split())
    missing = twin("verify", path, "--out", out / "nowhere")
    assert missing.returncode == 2 and "no run folder" in missing.stderr


def _a_short_dip_is_held_and_a_long_one_is_not(path, out, regimes):
    """The schedule's scale-down hold on the run's stored policies: busy load with a 10-minute dip
    to the quiet regime's load, then two quiet hours.  With ``min_hold: 1h`` the dip keeps the busy
    settings (said in the entry) and the two hours switch; with no hold the dip switches too."""
    from twin.pipeline import _stage_schedule, load_experiment
    from twin.spec import load_model

    exp = load_experiment(path)
    model = load_model(out / "model.yaml")
    quiet, busy = (f"tiny/{r['name']}" for r in sorted(regimes, key=lambda r: r["representative"]["requests_per_s"]))
    rates = [15.0] * 6 + [5.0] * 2 + [15.0] * 6 + [5.0] * 24  # 5-minute steps
    profile = pd.DataFrame({"requests_per_s_q0.9": rates, "requests_per_s": rates},
                           index=pd.date_range("2026-03-20", periods=len(rates), freq="5min", tz="UTC"))

    def schedule(hold_s):
        e = exp.model_copy(update={"schedule": exp.schedule.model_copy(update={"min_hold": hold_s})})
        return [(x["anchor"], x["steps"], x["reason"]) for x in _stage_schedule(e, model, profile, out)["entries"]]

    held = schedule(3600.0)
    assert [(a, n) for a, n, _ in held] == [(busy, 14), (quiet, 24)]
    assert "kept through a dip" in held[0][2]
    assert [(a, n) for a, n, _ in schedule(0.0)] == [(busy, 6), (quiet, 2), (busy, 6), (quiet, 24)]


def test_an_unknown_key_is_named_with_its_line(experiment, tmp_path):
    out = tmp_path / "run"
    r = twin("run", experiment(extra="colour: blue\n"), "--out", out)
    assert r.returncode == 2 and "tiny.yaml:18: colour: unknown field 'colour'; expected one of: name, seed" in r.stderr
    assert "Traceback" not in r.stderr
    assert not out.exists()


@pytest.mark.parametrize("old,new,message", [
    ("  warmup: 30s", "  warmup: 10min", "sweep.warmup: expected less than the window"),
    ("  trials: 8", "  trials: 0", "sweep.trials"),
    ("  constraints: {latency_mean_s: 0.3}", "  constraints: {latency_p98_s: 0.3}", "unknown metric 'latency_p98_s'"),
    ("  finalists: 2", "  finalists: 2\n  tunables: [workers, threads]", "'threads' is not a tunable of model"),
    ("  finalists: 2", "  finalists: 2\n  storage: postgresql://twin@127.0.0.1:1/x", "cannot open it"),
    ("model: mmc.yaml", "model: nosuch.yaml", "model: no such file"),
    ("regimes: {max: 2, quantile: 0.9}", "regimes: {max: 2, quantile: 1.5}", "regimes.quantile"),
])
def test_impossible_settings_are_named(experiment, tmp_path, old, new, message):
    path = experiment()
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    out = tmp_path / "run"
    r = twin("run", path, "--out", out)
    assert r.returncode == 2, r.stdout
    assert message in r.stderr and "Traceback" not in r.stderr
    assert not out.exists()


def test_the_model_can_be_calibrated_from_traces_first(experiment, tmp_path):
    """`calibrate:` instead of `model:`: the twin's own trace of the M/M/c calibrates the skeleton
    (service times fitted), whose tunable the sweep then moves."""
    out = twin("simulate", tmp_path / "mmc.yaml", "--rate", 15, "--duration", 120, "--warmup", 0, "--replications", 1,
               "--trace", tmp_path / "trace.parquet")
    assert out.returncode == 0, out.stderr
    (tmp_path / "skeleton.yaml").write_text(
        "name: mmc_sized\nservices:\n  server: {workers: 4, price_per_instance_hour: 0.1}\n"
        "tunables:\n  workers: {type: int, low: 1, high: 10, targets: services.server.workers}\n")
    path = experiment(trials=6)
    path.write_text(path.read_text().replace("model: mmc.yaml",
                                             "calibrate: {traces: [trace.parquet], skeleton: skeleton.yaml}"))
    r = twin("run", path, "--out", tmp_path / "run")
    assert r.returncode == 0, r.stderr
    assert "model: calibrating from traces" in r.stdout
    model = (tmp_path / "run" / "model.yaml").read_text()
    assert "provenance" in model and "service_time_s" in model
    assert json.loads((tmp_path / "run" / "policy.json").read_text())["policies"]
