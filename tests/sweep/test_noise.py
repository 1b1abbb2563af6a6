"""No noise passed off as a setting (issue 12, item 4): a parameter whose effect on every
objective and constraint is inside the noise is left at the model's value, one with a real
effect keeps its swept value."""

from types import SimpleNamespace

import pytest

from tests.conftest import mmc_model
from tests.sweep.test_study import task
from twin.spec import load_model
from twin.sweep.noise import settle
from twin.sweep.study import finish, run_study

# the M/M/c of the sweep tests (16/s, 0.2 s, model value 4 workers) with a queue limit that the
# sweep may change but that is never reached at any stable setting: it changes nothing
QUEUED = mmc_model().replace("    workers: 4\n", "    workers: 4\n    queue_capacity: 1000\n") + (
    "  queue: {type: int, low: 500, high: 2000, step: 500, targets: services.server.queue_capacity}\n")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_parameter_without_effect_is_left_at_the_models_value(tmp_path, seed):
    path = tmp_path / "queued.yaml"
    path.write_text(QUEUED)
    t = task(load_model(path), trials=32, window=300, warmup=50, replications=4, finalists=3,
             constraints={"latency_mean_s": 0.3})  # c=4: 0.349 s, c=5: 0.232 s (Erlang C)
    t.seed = seed
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    trials = run_study(url, t)
    result = finish(url, t)
    # workers has a clear effect: the busiest setting within the latency bound, 5 (Erlang C)
    assert result.winner.params == {"workers": 5, "queue": 1000}
    assert result.effects["workers"]["verdict"] == "effect"
    assert result.effects["workers"]["effects"]["latency_mean_s"]["ci_high"] < 0  # 5 is faster than 4
    row = result.effects["queue"]
    assert row["verdict"] in ("no measurable effect", "at current") and row["value"] == 1000
    # the sweep drew several queue limits for 5 workers; whichever the winner had, it is reported
    assert {tr.params["queue"] for tr in trials if tr.params["workers"] == 5} > {1000}
    if row["verdict"] == "no measurable effect":
        assert row["swept"] != 1000 and all(e["ci_low"] <= 0 <= e["ci_high"] for e in row["effects"].values())
    assert result.to_dict()["effects"] == result.effects
    assert result.to_dict()["winner"]["params"] == {"workers": 5, "queue": 1000}


def candidate(params, reps, feasible=True, confident=True):
    return SimpleNamespace(params=dict(params), replications=reps, estimates={}, feasible=feasible,
                           confident=confident)


SWEEP = SimpleNamespace(objectives=[("cost", "minimize")], constraints={"latency_p99_s": 1.0})


def test_a_clear_effect_is_never_reported_as_no_effect():
    """b at its current value costs clearly more on every paired replication: b keeps its value;
    a changes nothing on any replication: a goes back to its current value."""
    base = [{"cost": c, "latency_p99_s": 0.5} for c in (10.0, 11.0, 9.5, 10.5)]
    variants = {("x", 2): [{"cost": r["cost"], "latency_p99_s": 0.5} for r in base],
                ("x", 1): [{"cost": r["cost"] + 3 + 0.1 * i, "latency_p99_s": 0.5} for i, r in enumerate(base)]}
    winner = candidate({"a": "y", "b": 2}, base)
    calls = []

    def replicate(params):
        calls.append(params)
        return candidate(params, variants[(params["a"], params["b"])])

    out = settle(winner, replicate, {"a": "x", "b": 1}, ["a", "b"], SWEEP)
    assert out["a"]["verdict"] == "no measurable effect" and out["a"]["value"] == "x"
    assert out["b"]["verdict"] == "effect" and out["b"]["value"] == 2
    assert out["b"]["effects"]["cost"]["ci_high"] < 0
    assert winner.params == {"a": "x", "b": 2}
    assert calls == [{"a": "x", "b": 2}, {"a": "x", "b": 1}]  # b judged against the settled a


def test_an_effect_within_the_tie_tolerance_is_negligible_and_goes_back_to_current():
    """A deterministic 0.5% cost difference (memory priced at a tiny share of the bill) is measurable
    (its paired interval excludes 0) but inside tie_tolerance 1%: left at the current value and
    reported as a negligible effect; at 2% it is an effect and keeps the swept value."""
    from twin.sim.stats import estimate

    base = [{"cost": c, "latency_p99_s": 0.5} for c in (10.0, 11.0, 9.5, 10.5)]
    sweep = SimpleNamespace(**vars(SWEEP), tie_tolerance=0.01)
    for extra, verdict, value in ((0.005, "negligible effect", 64), (0.02, "effect", 9)):
        winner = candidate({"memory": 9}, base)
        winner.estimates = {"cost": estimate([r["cost"] for r in base]), "latency_p99_s": estimate([0.5] * 4)}
        dearer = [{"cost": r["cost"] * (1 + extra), "latency_p99_s": 0.5} for r in base]
        out = settle(winner, lambda p: candidate(p, dearer), {"memory": 64}, ["memory"], sweep)
        assert out["memory"]["effects"]["cost"]["ci_high"] < 0  # measurable: the swept value is cheaper
        assert out["memory"]["verdict"] == verdict and out["memory"]["value"] == value, extra
        assert winner.params == {"memory": value}


def test_no_effect_that_breaks_a_constraint_keeps_the_swept_value():
    base = [{"cost": 10.0, "latency_p99_s": 0.9 + 0.01 * i} for i in range(4)]
    winner = candidate({"a": "y"}, base)
    out = settle(winner, lambda p: candidate(p, base, confident=False), {"a": "x"}, ["a"], SWEEP)
    assert out["a"]["verdict"] == "effect" and winner.params == {"a": "y"}


def test_the_run_report_shows_each_parameters_outcome():
    from twin.report.run import _effects

    base = [{"cost": c, "latency_p99_s": 0.5} for c in (10.0, 11.0, 9.5, 10.5)]
    winner = candidate({"a": "y", "b": 2}, base)
    out = settle(winner, lambda p: candidate(p, base), {"a": "x", "b": 2}, ["a", "b"], SWEEP)
    doc = {"result": {"objectives": [["cost", "minimize"]], "constraints": {"latency_p99_s": 1.0}, "effects": out}}
    page = _effects(doc)
    assert "no measurable effect, left at x (swept y)" in page and "the current value" in page
    assert "cost: winner − current" in page and "0 [0, 0]" in page
    assert _effects({"result": {**doc["result"], "effects": {}}}) == ""  # an older run folder: no table


def test_ties_go_to_the_current_settings_then_to_fewer_resources(tmp_path):
    """Equal costs (workers unpriced): among tied finalists the winner is the one at the model's
    workers if any, else the fewest workers, whichever had the better mean."""
    from twin.sim.stats import estimate
    from twin.spec.experiment import Sweep
    from twin.sweep.study import Candidate, _judge

    path = tmp_path / "wide.yaml"
    path.write_text(mmc_model(1, 64))
    model = load_model(path)
    s = Sweep(maximize=[], minimize=["cost"], constraints={"latency_p99_s": 0.2}, tie_tolerance=0.0, trials=10,
              window=60, warmup=0)

    def finalist(n, workers, cost):
        est = {"cost": estimate(cost), "latency_p99_s": estimate([0.1, 0.11, 0.09, 0.1])}
        return Candidate(n, {"workers": workers}, {}, est, feasible=True, confident=True)

    def judged(current):
        cands = [finalist(0, 34, [1.00, 1.02, 0.98, 1.00]), finalist(1, 29, [1.01, 1.03, 0.99, 1.01]),
                 finalist(2, 47, [1.00, 1.01, 0.99, 1.01]), finalist(3, 4, [1.50, 1.51, 1.49, 1.50])]
        _judge(cands, s, current, model)
        return {c.params["workers"]: c.verdict for c in cands}

    assert judged({"workers": 4}) == {29: "winner", 34: "tie", 47: "tie", 4: "loses"}  # 4 is clearly dearer
    assert judged({"workers": 47}) == {47: "winner", 34: "tie", 29: "tie", 4: "loses"}
    assert judged(None) == {29: "winner", 34: "tie", 47: "tie", 4: "loses"}
