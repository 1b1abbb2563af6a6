"""A resumed sweep never waits forever: a trial that a killed worker left running without a
heartbeat is failed and run again with its parameters, a run that holds its storage alone retries
the trials left running at once, and a worker waiting on other workers' last trials gives up
after a bound."""

import threading
from datetime import datetime, timedelta

import optuna
import pytest
import sqlalchemy as sa
from optuna.trial import TrialState

from tests.sweep.test_study import mmc, task  # noqa: F401  (mmc is a fixture)
from twin.spec import TwinError
from twin.sweep import study as sweep_study
from twin.sweep.sampling import planned_trials
from twin.sweep.study import _Heartbeat, _quiet, _retry_of, close_storage, create_study, distributions, open_storage, \
    run_study, work


def bounded(fn, timeout_s=120):
    """``fn()`` in a thread; a safety bound against a hang, not a measure of speed."""
    out = {}

    def target():
        try:
            out["value"] = fn()
        except BaseException as e:  # handed to the test
            out["error"] = e
    th = threading.Thread(target=target, daemon=True)
    th.start()
    th.join(timeout_s)
    assert not th.is_alive(), "still waiting: the worker would hang forever"
    if "error" in out:
        raise out["error"]
    return out["value"]


def killed_after_ask(url, t, model, *, started_ago_s=None):
    """A trial asked by a worker that died before its first heartbeat: running, with no heartbeat row."""
    storage = open_storage(url)
    try:
        with _quiet():
            dead = optuna.load_study(study_name=t.study, storage=storage).ask(distributions(model, None))
    finally:
        close_storage(storage)
    if started_ago_s is not None:
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE trials SET datetime_start = :t WHERE trial_id = :id"),
                         {"t": datetime.now() - timedelta(seconds=started_ago_s), "id": dead._trial_id})
        engine.dispose()
    return dead


def trials_of(url, name):
    storage = open_storage(url)
    try:
        return optuna.load_study(study_name=name, storage=storage).get_trials()
    finally:
        close_storage(storage)


def check_retried(url, t, dead):
    trials = trials_of(url, t.study)
    assert trials[dead.number].state == TrialState.FAIL
    copies = [x for x in trials if _retry_of(x) == dead.number]
    assert len(copies) == 1 and copies[0].params == dead.params and copies[0].state == TrialState.COMPLETE
    planned = planned_trials(distributions(t.system_model(), t.sweep.tunables), t.sweep.trials)  # one per point
    assert sum(x.state in (TrialState.COMPLETE, TrialState.PRUNED) for x in trials) == planned


def test_a_trial_killed_before_its_first_heartbeat_is_run_again(mmc, tmp_path):  # noqa: F811
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    t = task(mmc, trials=3, window=300, warmup=30, prune=False)
    create_study(url, t)
    dead = killed_after_ask(url, t, mmc, started_ago_s=3600)
    bounded(lambda: work(url, t.study))
    check_retried(url, t, dead)


def test_a_run_holding_its_storage_alone_retries_a_left_trial_at_once(mmc, tmp_path):  # noqa: F811
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    t = task(mmc, trials=3, window=300, warmup=30, prune=False)
    create_study(url, t)
    dead = killed_after_ask(url, t, mmc)  # started just now: no grace period has passed
    bounded(lambda: run_study(url, t, exclusive=True))
    check_retried(url, t, dead)


def test_a_worker_stops_waiting_for_a_trial_that_never_ends(mmc, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setattr(sweep_study, "MIN_WAIT_S", 1.0)
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    t = task(mmc, trials=1, window=300, warmup=30, prune=False)
    create_study(url, t)
    storage = open_storage(url)
    try:
        with _quiet():
            hung = optuna.load_study(study_name=t.study, storage=storage).ask(distributions(mmc, None))
        with _Heartbeat(storage, hung._trial_id):  # alive and beating, but it never finishes
            with pytest.raises(TwinError, match=rf"study '{t.study}': 1 trial\(s\) of other workers made no progress"):
                bounded(lambda: work(url, t.study))
    finally:
        close_storage(storage)
