"""Sweeps on the twin: the constrained optimum of an M/M/c against Erlang C, common random
numbers, pruning, replications with ties, warm starts, resumption and clear errors."""

import numpy as np
import pytest

from tests.conftest import mmc_model
from twin.spec import TwinError, load_model
from twin.spec.experiment import Sweep
from twin.sweep.study import create_study, finish, open_storage, run_study
from twin.sweep.task import Evaluator, SweepTask, window_profile
from twin.validation import theory

MMC = mmc_model()


def erlang_c_mean_latency(c):
    return theory.mmc(16.0, 5.0, c).sojourn_mean_s


@pytest.fixture
def mmc(tmp_path):
    path = tmp_path / "mmc.yaml"
    path.write_text(MMC)
    return load_model(path)


def task(model, name="mmc", **settings):
    base = dict(maximize=["service.server.utilisation"], minimize=[], constraints={"latency_mean_s": 0.25},
                trials=10, window=900, warmup=100, replications=5, finalists=3)
    sweep = Sweep(**{**base, **settings})
    return SweepTask(study=name, model=model.model_dump(by_alias=True),
                     profile=window_profile({"requests_per_s": 16.0}, sweep.window), settings=sweep.model_dump(),
                     seed=3)


def test_the_sweep_finds_the_fewest_workers_that_meet_the_slo(mmc, tmp_path):
    """Mean latency of M/M/c at 16/s, mean service 0.2 s (Erlang C): c=4 0.349 s, c=5 0.232 s,
    c=6 0.207 s.  Under a 0.25 s bound, the busiest feasible setting is c=5."""
    assert erlang_c_mean_latency(4) > 0.25 > erlang_c_mean_latency(5)
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    t = task(mmc)
    trials = run_study(url, t)
    result = finish(url, t)
    assert result.winner is not None and result.winner.params == {"workers": 5}
    est = result.winner.estimates["latency_mean_s"]
    assert est.contains(erlang_c_mean_latency(5)) or abs(est.mean / erlang_c_mean_latency(5) - 1) < 0.05
    assert result.winner.confident
    # the space (8 values) is smaller than the budget: every value is tried once, nothing twice
    assert sorted(t.params["workers"] for t in trials) == list(range(1, 9))
    # finalists: the three busiest feasible settings; 6 and 7 are clearly less busy than 5
    verdicts = {c.params["workers"]: c.verdict for c in result.candidates}
    assert verdicts == {5: "winner", 6: "loses", 7: "loses"}
    # replications are independent of the trials' own run (load 0, seed 0): none repeats it
    for c in result.candidates:
        assert all(rep["latency_mean_s"] != c.single_run["latency_mean_s"] for rep in c.replications)
    # an unstable setting breaks the bound in the first third of the window already: pruned there
    states = {t.params["workers"]: t.state.name for t in trials}
    assert all(states[c] == "PRUNED" for c in states if c <= 3)
    assert result.trials == {"complete": 5, "pruned": 3}
    # workers is the only parameter: it explains all the variance of each target over the trials
    assert set(result.importance) == {"service.server.utilisation", "latency_mean_s"}
    assert result.importance["service.server.utilisation"] == {"workers": pytest.approx(1.0)}
    assert result.importance["latency_mean_s"] == {"workers": pytest.approx(1.0)}


def test_trials_share_the_workload_and_seed(mmc):
    ev = Evaluator(task(mmc))
    assert ev.workload(0) is ev.workload(0)
    a, b = ev.run({"workers": 5}), ev.run({"workers": 5})
    assert a == b  # same workload, same seed: the same numbers
    c = ev.run({"workers": 6})
    assert c["throughput_per_s"] == pytest.approx(a["throughput_per_s"], rel=0.01)  # the same arrivals
    assert not np.array_equal(ev.workload(1).time_s[:50], ev.workload(0).time_s[:50])  # replication 1: new load


def test_a_tie_is_reported_when_intervals_overlap(mmc, tmp_path):
    """Minimising mean latency with 7 or 8 workers: both are M/M/c with a wait near zero, their
    intervals overlap, and neither is declared better."""
    url = f"sqlite:///{tmp_path / 'tie.db'}"
    t = task(mmc, "tie", maximize=[], minimize=["latency_mean_s"], constraints={}, trials=8, prune=False,
             tie_tolerance=0.0)
    create_study(url, t, warm=[{"workers": 7}, {"workers": 8}])
    run_study(url, t)
    result = finish(url, t)
    top = {c.params["workers"]: c.verdict for c in result.candidates}
    assert {top.get(7), top.get(8)} == {"winner", "tie"}


def wide(tmp_path, high=100):
    """The M/M/c with workers in 1..high: more values than a single int is tried at exhaustively."""
    path = tmp_path / f"mmc_{high}.yaml"
    path.write_text(mmc_model(1, high))
    return load_model(path)


def test_warm_start_runs_first_and_a_rerun_resumes(tmp_path):
    mmc = wide(tmp_path)
    url = f"sqlite:///{tmp_path / 'warm.db'}"
    t = task(mmc, "warm", trials=3)
    trials = run_study(url, t, warm=[{"workers": 6}, {"workers": 99}])  # 99 is outside the domain: skipped
    first = sorted(trials, key=lambda x: x.number)[0]
    assert first.params == {"workers": 6} and first.user_attrs["warm_start"]
    assert len(trials) == 3
    again = run_study(url, task(mmc, "warm", trials=5))  # more trials: it goes on from the three
    assert len(again) == 5
    with pytest.raises(TwinError, match="exists in this storage with other settings"):
        run_study(url, task(mmc, "warm", trials=5, window=600))


@pytest.mark.parametrize("url,message", [
    ("studies.db", "expected a database URL"),
    ("redis://127.0.0.1:6379", "unsupported scheme 'redis'"),
    ("postgresql://twin@127.0.0.1:1/nowhere", "cannot open it"),
])
def test_a_storage_that_cannot_be_used_is_named(url, message):
    with pytest.raises(TwinError, match=message):
        open_storage(url)


def test_two_objectives_keep_the_pareto_front(tmp_path):
    """Latency against cost on an M/M/c where each worker is an instance of price 1: more
    workers, lower latency, higher cost.  Every stable setting is on the front."""
    path = tmp_path / "mmc_priced.yaml"
    path.write_text(MMC.replace("    workers: 4\n", "    workers: 1\n    instances: 4\n    price_per_instance_hour: 1.0\n"
                                ).replace("targets: services.server.workers", "targets: services.server.instances"))
    model = load_model(path)
    url = f"sqlite:///{tmp_path / 'pareto.db'}"
    t = task(model, "pareto", maximize=[], minimize=["latency_mean_s", "cost"], constraints={"error_rate": 0.01},
             trials=12, sampler="nsga2", prune=False, finalists=3, replications=3)
    run_study(url, t)
    result = finish(url, t)
    front = {p["params"]["workers"] for p in result.pareto if p["feasible"]}
    assert front and min(front) >= 4  # an unstable setting (3 or fewer) is never on the front
    assert len(front) >= 2
    assert result.winner is not None and all(c.verdict in ("winner", "pareto", "loses") for c in result.candidates)
    # the winner is the front's best on the first objective (latency): the most workers replicated
    assert result.winner.params["workers"] == max(c.params["workers"] for c in result.candidates)


def test_a_study_whose_every_trial_fails_still_ends(tmp_path):
    """An objective the runs never define (this model has no cache): each trial fails with its
    reason, the study stops at its number of trials, and no winner is declared."""
    mmc = wide(tmp_path)
    url = f"sqlite:///{tmp_path / 'fails.db'}"
    t = task(mmc, "fails", maximize=[], minimize=["cache_hit_ratio"], constraints={}, trials=3, window=120, warmup=10)
    trials = run_study(url, t)
    assert [x.state.name for x in trials] == ["FAIL"] * 3
    assert all("undefined" in x.user_attrs["error"] for x in trials)
    assert finish(url, t).winner is None


def test_a_bursty_regime_is_swept_under_bursty_load(mmc):
    """A regime whose steps had an index of dispersion of 4 (per second) gets a two-state MMPP
    load of the same index and rate, not a Poisson one."""
    from twin.load.fit import dispersion

    t = task(mmc)
    t.profile = window_profile({"requests_per_s": 16.0, "burstiness": 4.0}, 900)
    w = Evaluator(t).workload(0)
    assert abs(len(w) / (16 * 900) - 1) < 0.15
    assert 2.8 < dispersion(w.time_s, 1.0, w.duration_s) < 5
    plain = Evaluator(task(mmc)).workload(0)
    assert dispersion(plain.time_s, 1.0, plain.duration_s) < 1.3


def test_every_verdict_on_finalists_whose_answer_is_known():
    """Minimise cost under latency_p99_s <= 0.2, five finalists built from their replications:
    the cheapest with its whole interval inside the bound wins; a cheaper one whose interval
    crosses the bound is unsure; one whose cost interval overlaps the winner's ties; a clearly
    dearer one loses; one over the bound on average is infeasible."""
    from twin.sim.stats import estimate
    from twin.sweep.study import Candidate, _judge

    s = Sweep(maximize=[], minimize=["cost"], constraints={"latency_p99_s": 0.2}, tie_tolerance=0.0, trials=10,
              window=60, warmup=0)

    def finalist(n, cost, latency):
        est = {"cost": estimate(cost), "latency_p99_s": estimate(latency)}
        lat = est["latency_p99_s"]
        return Candidate(n, {"n": n}, {}, est, feasible=lat.mean <= 0.2, confident=lat.high <= 0.2)

    cands = [finalist(0, [1.00, 1.01, 0.99, 1.00], [0.10, 0.11, 0.09, 0.10]),  # winner
             finalist(1, [0.80, 0.81, 0.79, 0.80], [0.15, 0.23, 0.17, 0.19]),  # cheaper, interval across 0.2
             finalist(2, [1.00, 1.03, 0.98, 1.01], [0.10, 0.10, 0.11, 0.09]),  # cost interval overlaps the winner's
             finalist(3, [2.00, 2.01, 1.99, 2.00], [0.05, 0.05, 0.06, 0.04]),  # clearly dearer
             finalist(4, [0.50, 0.50, 0.50, 0.50], [0.30, 0.31, 0.29, 0.30])]  # over the bound
    assert not cands[1].confident and cands[1].feasible
    _judge(cands, s)
    assert [c.verdict for c in cands] == ["winner", "unsure", "tie", "loses", "infeasible"]


def test_window_compliance_must_be_shown_not_just_met(monkeypatch):
    """compliance 0.875 ("7 windows in 8") at 80% confidence: 4 of 4 windows meet it but do not
    show it (Clopper-Pearson lower bound 0.67), 16 of 16 do (0.90), 15 of 16 do not (0.82); 3 of 4
    do not even meet it.  Firming up extends the cheapest open finalist alone until it is sure or
    capped, then the next."""
    from twin.sweep import study as st
    from twin.sweep.study import Candidate, _estimate, compliance_lower

    assert compliance_lower(4, 4, 0.8) == pytest.approx(0.2 ** (1 / 4))
    assert compliance_lower(16, 16, 0.8) == pytest.approx(0.2 ** (1 / 16))
    assert compliance_lower(0, 5, 0.8) == 0.0
    s = Sweep(maximize=[], minimize=["cost"], constraints={"error_rate": 0.01}, trials=10, window=900, warmup=60,
              replications=4, compliance=0.875)

    def candidate(n, errors, cost):
        c = Candidate(n, {"search_instances": n}, {}, runs=[{"error_rate": e, "cost": cost} for e in errors])
        _estimate(c, s)
        return c

    ok = [0.001, 0.0, 0.002, 0.0]
    assert (lambda c: (c.feasible, c.confident))(candidate(2, ok, 2.0)) == (True, False)
    assert (lambda c: (c.feasible, c.confident))(candidate(2, ok * 4, 2.0)) == (True, True)
    assert (lambda c: (c.feasible, c.confident))(candidate(2, ok * 3 + [0.02, 0, 0, 0], 2.0)) == (True, False)
    assert not candidate(1, [0.0, 0.03, 0.0, 0.0], 1.0).feasible
    loose = s.model_copy(update={"compliance": 0.75})
    c = Candidate(1, {}, {}, runs=[{"error_rate": e, "cost": 1.0} for e in [0.0, 0.03, 0.0, 0.0]])
    _estimate(c, loose)
    assert c.feasible and not c.confident  # 3 of 4 meet 0.75; shown only from many more windows

    # firming up: one instance fails a window in four (its true compliance), two never do
    pattern = {1: [0.0, 0.0, 0.0, 0.03], 2: [0.0] * 4, 3: [0.0] * 4}
    one, two, three = (candidate(n, [0.0] * 4, float(n)) for n in (1, 2, 3))
    extended = []

    def extend(task, cands, count, jobs):
        for c in cands:
            extended.append((c.trial, count))
            k = len(c.runs)
            c.runs += [{"error_rate": pattern[c.trial][i % 4], "cost": float(c.trial)} for i in range(k, count)]
            _estimate(c, task.sweep)

    monkeypatch.setattr(st, "_extend", extend)
    st._firm_up(type("T", (), {"sweep": s})(), [one, two, three], jobs=1)
    assert extended == [(1, 8), (1, 16), (2, 8), (2, 16)]  # one instance: 13 of 16 windows, not even feasible
    assert not one.feasible and two.confident and len(three.runs) == 4
