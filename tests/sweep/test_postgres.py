"""Workers on the PostgreSQL server: two `twin sweep --worker` processes share one study, a worker
killed mid-trial loses nothing that was done and its trial is retried, optuna-dashboard reads it."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid

import optuna
import pytest

from tests.conftest import mmc_model
from twin.spec import load_model
from twin.spec.experiment import Sweep
from twin.sweep.study import _retry_of, close_storage, create_study, open_storage
from twin.sweep.task import SweepTask, window_profile

MMC = mmc_model(4, 11)  # 8 values: searched exhaustively in the 8 trials


@pytest.fixture
def study(postgres_url, tmp_path):
    """A fresh study on the server, deleted afterwards; trials of about a second or two."""
    path = tmp_path / "mmc.yaml"
    path.write_text(MMC)
    model = load_model(path)
    name = f"twin-test-{uuid.uuid4().hex[:10]}"
    sweep = Sweep(minimize=["latency_mean_s"], trials=8, window=4000, warmup=100, prune=False)
    task = SweepTask(study=name, model=model.model_dump(by_alias=True),
                     profile=window_profile({"requests_per_s": 16.0}, sweep.window), settings=sweep.model_dump(), seed=1)
    storage = open_storage(postgres_url)
    create_study(storage, task)
    yield name, storage
    optuna.delete_study(study_name=name, storage=storage)
    close_storage(storage)


def worker(url, name, index):
    return subprocess.Popen([sys.executable, "-m", "twin", "sweep", "--storage", url, "--study", name, "--worker",
                             "--worker-index", str(index)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def trials(storage, name):
    return optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)


def test_two_workers_share_one_study(postgres_url, study):
    name, storage = study
    procs = [worker(postgres_url, name, i) for i in range(2)]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    done = [t for t in trials(storage, name) if t.state.name == "COMPLETE"]
    assert len(done) == 8
    assert len({t.user_attrs["worker"] for t in done}) == 2  # both workers ran trials
    assert len({t.number for t in done}) == 8


def test_a_killed_worker_loses_no_trial_and_its_trial_is_retried(postgres_url, study):
    name, storage = study
    victim = worker(postgres_url, name, 0)
    deadline = time.time() + 240
    while time.time() < deadline:  # wait until it has finished two trials and is inside a third
        ts = trials(storage, name)
        if sum(t.state.name == "COMPLETE" for t in ts) >= 2 and any(t.state.name == "RUNNING" for t in ts):
            break
        time.sleep(0.2)
    else:
        pytest.fail("the worker did not get going")
    before = {t.number: t.params for t in trials(storage, name) if t.state.name == "COMPLETE"}
    killed = [t.number for t in trials(storage, name) if t.state.name == "RUNNING"]
    os.kill(victim.pid, signal.SIGKILL)
    victim.communicate()
    rescuer = worker(postgres_url, name, 1)
    out, err = rescuer.communicate(timeout=300)
    assert rescuer.returncode == 0, err
    after = trials(storage, name)
    complete = {t.number: t for t in after if t.state.name == "COMPLETE"}
    assert all(n in complete and complete[n].params == p for n, p in before.items())  # nothing done was lost
    assert {t.number for t in after if t.state.name == "FAIL"} == set(killed)  # the dead trial is marked failed
    retried = [t for t in complete.values() if _retry_of(t) in killed]
    assert len(retried) == len(killed)  # and run again, with the same parameters
    assert all(t.params == next(x for x in after if x.number == killed[0]).params for t in retried)
    assert len(complete) == 8


def test_optuna_dashboard_shows_the_study(postgres_url, study):
    name, _ = study
    port = 18000 + os.getpid() % 1000
    url = postgres_url.replace("postgresql://", "postgresql+psycopg://", 1)
    dash = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "optuna-dashboard"), url, "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=2) as r:
                    studies = json.load(r)["study_summaries"]
                break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.fail("optuna-dashboard did not answer")
        assert name in {s["study_name"] for s in studies}
    finally:
        dash.terminate()
        dash.wait()
