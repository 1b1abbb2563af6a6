"""Crash safety as a property.  `twin run` and `twin sweep --worker` are killed with SIGKILL at
named points (the hook ``TWIN_TEST_KILL_AT=LABEL:N`` in ``twin.rundir.crash_point``: between each
stage's output and its record, after the record, between a trial's ask and its first heartbeat,
mid-trial, after a tell, after a replication, between storing a policy and marking the stage),
one after the other in the same run folder, each rerun killed at the next point.  After every
kill no process of the killed run is left; across kills no completed trial is lost or changed
and no policy version is stored twice; the last rerun completes.  Also: a second writer of a run
folder is refused, and an unreadable stage record or output is made again."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import closing

import numpy as np
import pandas as pd
import psutil
import pytest

from tests.conftest import mmc_model
from tests.test_cli import ROOT, twin
from twin.pipeline import RunFolder
from twin.policy.store import PolicyStore, RunRecord
from twin.spec import TwinError
from twin.spec.experiment import Sweep
from twin.sweep.study import create_study
from twin.sweep.task import SweepTask, window_profile

EXPERIMENT = """
name: crash
seed: 3
model: mmc.yaml
history: {series: load.csv, time_zone: UTC}
forecast: {model: seasonal_naive_daily, horizon: 12h, calibration_windows: 2}
regimes: {max: 2, quantile: 0.9}
sweep:
  maximize: [service.server.utilisation]
  minimize: []
  constraints: {latency_mean_s: 0.3}
  trials: 8
  finalists: 2
  replications: 2
  window: 2min
  warmup: 10s
  workers: 2
schedule: {lead_time: 10min, min_hold: 0s}
"""

#: where `twin run` is killed, in the order a run passes them (LABEL:N, the N-th time a process
#: passes LABEL; trial and replication points are passed in the sweep's worker processes)
RUN_POINTS = [
    "written:model:1", "marked:model:1", "written:forecast:1", "marked:forecast:1", "written:regimes:1",
    "written:synthesize:1",
    "trial-asked:1", "trial-partial:1", "trial-told:1", "trial-asked:2", "replicated:1",  # regime-1's sweep
    "written:sweep:regime-1:1", "marked:sweep:regime-1:1",
    "trial-told:2", "replicated:2", "written:sweep:regime-2:1",  # regime-2's sweep
    "policy-stored:1", "policy-stored:2", "marked:policy:1", "written:schedule:1", "written:report:1",
]
#: where `twin sweep --worker` is killed
WORKER_POINTS = ["trial-asked:1", "trial-partial:1", "trial-told:2"]
BOUND_S = 240  # a safety bound against a hung run, far above what any run here takes


@pytest.fixture
def experiment(tmp_path):
    idx = pd.date_range("2026-03-02", periods=24 * 14, freq="h")
    rng = np.random.default_rng(0)
    rate = np.where((idx.hour >= 8) & (idx.hour < 20), 14.0, 5.0) + rng.normal(0, 0.3, len(idx))
    pd.DataFrame({"timestamp": idx.strftime("%Y-%m-%d %H:%M:%S"), "value": rate.round(3)}).to_csv(
        tmp_path / "load.csv", index=False)
    (tmp_path / "mmc.yaml").write_text(mmc_model(1, 10, price=0.1))
    path = tmp_path / "crash.yaml"
    path.write_text(EXPERIMENT)
    return path


def launch(args, kill_at=None):
    """Run ``twin ARGS`` (killed at ``kill_at``) to its end; returns (return code, stdout, stderr, tag)."""
    tag = uuid.uuid4().hex
    env = {**os.environ, "TWIN_CRASH_TEST": tag}
    env.pop("TWIN_TEST_KILL_AT", None)
    env.pop("TWIN_TEST_KILL_PID", None)
    if kill_at:
        env["TWIN_TEST_KILL_AT"] = kill_at
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:  # files: an orphan holds no pipe
        p = subprocess.run([sys.executable, "-m", "twin", *map(str, args)], stdout=out, stderr=err, text=True,
                           cwd=ROOT, env=env, timeout=BOUND_S)
        out.seek(0)
        err.seek(0)
        return p.returncode, out.read(), err.read(), tag


def left_behind(tag, wait_s=20.0):
    """Processes of a run tagged ``tag`` still alive ``wait_s`` after it ended (none, or killed here)."""
    deadline = time.monotonic() + wait_s
    while True:
        alive = []
        for p in psutil.process_iter():
            try:
                if p.environ().get("TWIN_CRASH_TEST") == tag and p.status() != psutil.STATUS_ZOMBIE:
                    alive.append(p)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        if not alive or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    for p in alive:  # do not leave them to the rest of the suite
        p.kill()
    return [p.pid for p in alive]


def completed_trials(db) -> dict:
    """{(study, trial number): (params, values)} of the complete trials in a studies.db."""
    if not db.exists():
        return {}
    with closing(sqlite3.connect(db)) as conn:  # not read-only: it may roll back a killed writer's journal
        rows = conn.execute("SELECT s.study_name, t.number, t.trial_id FROM trials t JOIN studies s "
                            "ON s.study_id = t.study_id WHERE t.state = 'COMPLETE'").fetchall()
        out = {}
        for study, number, trial_id in rows:
            params = conn.execute("SELECT param_name, param_value FROM trial_params WHERE trial_id = ? "
                                  "ORDER BY param_name", (trial_id,)).fetchall()
            values = conn.execute("SELECT objective, value FROM trial_values WHERE trial_id = ? ORDER BY objective",
                                  (trial_id,)).fetchall()
            out[(study, number)] = (params, values)
    return out


def policy_versions(db) -> dict:
    if not db.exists():
        return {}
    with closing(sqlite3.connect(db)) as conn:  # not read-only: it may roll back a killed writer's journal
        try:
            return dict(conn.execute("SELECT regime, count(*) FROM twin_policies GROUP BY regime").fetchall())
        except sqlite3.OperationalError:  # killed before the schema was made
            return {}


def check_nothing_lost(before: dict, after: dict) -> None:
    lost = [k for k in before if after.get(k) != before[k]]
    assert not lost, f"completed trials lost or changed: {lost}"


@pytest.mark.slow
def test_twin_run_killed_anywhere_resumes_to_the_end(experiment, tmp_path):
    out = tmp_path / "run"
    trials: dict = {}
    for point in RUN_POINTS:
        rc, stdout, stderr, tag = launch(["run", experiment, "--out", out], kill_at=point)
        assert rc == -signal.SIGKILL, f"{point}: not reached (exit {rc}): {stderr[-2000:]}"
        assert left_behind(tag) == [], f"{point}: processes of the killed run left behind"
        now = completed_trials(out / "studies.db")
        check_nothing_lost(trials, now)
        trials = now
        assert all(n <= 1 for n in policy_versions(out / "policy.db").values()), f"{point}: a policy stored twice"
    rc, stdout, stderr, tag = launch(["run", experiment, "--out", out])
    assert rc == 0, stderr
    assert left_behind(tag) == []
    check_nothing_lost(trials, completed_trials(out / "studies.db"))
    assert policy_versions(out / "policy.db") == {"regime-1": 1, "regime-2": 1}
    for name in ("regime-1", "regime-2"):
        doc = json.loads((out / "sweep" / f"{name}.json").read_text())["result"]
        assert doc["trials"].get("complete", 0) + doc["trials"].get("pruned", 0) == 10, doc["trials"]  # 1..10 workers

    # an unreadable output: its stage is made again
    profile = out / "forecast" / "profile.parquet"
    profile.write_bytes(profile.read_bytes()[:100])
    rc, stdout, stderr, _ = launch(["run", experiment, "--out", out])
    assert rc == 0 and "forecast: forecast/profile.parquet is unreadable" in " ".join(stdout.split()), stderr
    assert "resumed: model, regimes" in stdout


@pytest.mark.slow
def test_twin_sweep_worker_killed_anywhere_loses_nothing(tmp_path):
    (tmp_path / "mmc.yaml").write_text(mmc_model(1, 8))
    from twin.spec import load_model

    model = load_model(tmp_path / "mmc.yaml")
    sweep = Sweep(minimize=["latency_mean_s"], trials=6, window=300, warmup=30)  # pruned on a partial window
    task = SweepTask(study="crash", model=model.model_dump(by_alias=True),
                     profile=window_profile({"requests_per_s": 16.0}, sweep.window), settings=sweep.model_dump(),
                     seed=1)
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    create_study(url, task)
    args = ["sweep", "--storage", url, "--study", "crash", "--worker", "--worker-index", 0]
    trials: dict = {}
    for point in WORKER_POINTS:
        rc, stdout, stderr, tag = launch(args, kill_at=point)
        assert rc == -signal.SIGKILL, f"{point}: not reached (exit {rc}): {stderr[-2000:]}"
        assert left_behind(tag) == []
        now = completed_trials(tmp_path / "studies.db")
        check_nothing_lost(trials, now)
        trials = now
    rc, stdout, stderr, tag = launch(args)
    assert rc == 0, stderr
    done = completed_trials(tmp_path / "studies.db")
    check_nothing_lost(trials, done)
    with closing(sqlite3.connect(tmp_path / "studies.db")) as conn:
        states = dict(conn.execute("SELECT state, count(*) FROM trials GROUP BY state").fetchall())
    assert states.get("COMPLETE", 0) + states.get("PRUNED", 0) == 8 and "RUNNING" not in states, states  # 1..8
    assert states.get("FAIL", 0) >= len(WORKER_POINTS) - 1  # the trials the killed workers left: failed, run again


def test_a_second_writer_of_a_run_folder_is_refused(experiment, tmp_path):
    out = tmp_path / "run"
    with RunFolder(out):
        r = twin("run", experiment, "--out", out)
        assert r.returncode == 2, r.stderr
        assert f"{out}: another twin run (pid {os.getpid()}) is writing to this run folder" in r.stderr
        assert "Traceback" not in r.stderr
        with pytest.raises(TwinError, match="another twin run"):
            RunFolder(out)
    with RunFolder(out):  # let go when the first is done
        pass


def test_an_unreadable_stage_record_or_output_is_a_stage_not_done(tmp_path):
    said = []
    with RunFolder(tmp_path / "run", say=said.append) as rf:
        pd.DataFrame({"a": [1.0]}).to_parquet(rf.path / "profile.parquet")
        (rf.path / "doc.json").write_text("{}")
        rf.mark("forecast", "k1")
        assert rf.done("forecast", "k1", "profile.parquet", "doc.json")
        (rf.path / "profile.parquet").write_bytes((rf.path / "profile.parquet").read_bytes()[:50])
        (rf.path / "doc.json").write_text('{"half')
        assert not rf.done("forecast", "k1", "profile.parquet", "doc.json")
        assert said[-1].startswith("forecast: profile.parquet is unreadable (")
        (rf.path / "stages.json").write_text('{"forecast": {"key": "k')
    with RunFolder(tmp_path / "run", say=said.append) as rf:
        assert rf.state == {} and said[-1].endswith("stages.json: unreadable (Unterminated string starting at: "
                                                    "line 1 column 22 (char 21)); running every stage again")
    (tmp_path / "run" / "stages.json").write_text("[1, 2]")
    with RunFolder(tmp_path / "run", say=said.append) as rf:
        assert rf.state == {} and "expected a mapping of stages" in said[-1]


def test_a_policy_stored_by_a_stage_is_not_stored_again_by_its_rerun(tmp_path):
    with PolicyStore(f"sqlite:///{tmp_path / 'policy.db'}") as store:
        def record(key, workers=4):
            return store.record(model="m", experiment="e", regime="r", load={"requests_per_s": 1.0},
                                vector={"requests_per_s": 0.0}, params={"workers": workers}, confidence=1.0,
                                runs=[RunRecord({"workers": workers}, {}, [0])], key=key)
        first = record("stage-a")
        again = record("stage-a", workers=5)  # the same stage, rerun after a kill: what it stored stands
        assert (again.version, again.id, again.params) == (first.version, first.id, {"workers": 4})
        assert record("stage-b").version == 2  # another run's stage: a new version
        assert record(None).version == 3 and record(None).version == 4
        assert len(store.policies(latest=False)) == 4


def test_a_policy_db_of_the_first_schema_gains_the_stage_key(tmp_path):
    import sqlalchemy as sa
    from alembic import command
    from alembic.config import Config

    from twin.policy.store import MIGRATIONS

    url = f"sqlite:///{tmp_path / 'policy.db'}"
    engine = sa.create_engine(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        conn.execute(sa.text("INSERT INTO twin_profiles (id, name, load, vector, created_at) "
                             "VALUES (1, 'e/r', '{}', '{}', '2026-12-01 00:00:00')"))
        conn.execute(sa.text("INSERT INTO twin_parameter_sets (id, model, digest, params) VALUES (1, 'm', 'x', '{}')"))
        conn.execute(sa.text("INSERT INTO twin_policies (model, experiment, regime, version, profile_id, "
                             "parameter_set_id, confidence, created_at) "
                             "VALUES ('m', 'e', 'r', 1, 1, 1, 1.0, '2026-12-01 00:00:00')"))
    engine.dispose()
    with PolicyStore(url) as store:
        assert store.schema_version() == "0003"
        p = store.record(model="m", experiment="e", regime="r", load={}, vector={}, params={"workers": 2},
                         confidence=1.0, runs=[], key="stage-a")
        assert p.version == 2 and len(store.policies(latest=False)) == 2
