"""Importance as each target's share of variance, on studies whose answer is known."""

import optuna
import pytest
from optuna.distributions import IntDistribution
from optuna.trial import TrialState, create_trial

from twin.spec.experiment import Sweep
from twin.sweep.study import importance
from twin.sweep.task import SweepTask


def _study(rows):
    """A study of completed trials: rows of (params, objective value, constraint excesses)."""
    study = optuna.create_study()
    dists = {"workers": IntDistribution(0, 4), "memory_size": IntDistribution(0, 4)}
    for params, value, constraints in rows:
        study.add_trial(create_trial(params=params, distributions=dists, value=value, state=TrialState.COMPLETE,
                                     user_attrs={"constraints": constraints}))
    return study


def _task(constraints):
    sweep = Sweep(maximize=[], minimize=["cost"], constraints=constraints, trials=25, window=60, warmup=0)
    return SweepTask(study="s", model={}, profile={}, settings=sweep.model_dump())


def test_a_knob_worth_one_percent_of_the_cost_gets_one_percent():
    """cost = 100 w + m on a full 5 x 5 grid: memory_size moves about 1% of the cost's variance
    and nothing of the latency constraint's, which only the workers move; each target has its
    own shares, and no knob is ranked on another's effect."""
    rows = [({"workers": w, "memory_size": m}, 100.0 * w + m, [0.5 - 0.2 * w])
            for w in range(5) for m in range(5)]
    shares = importance(_study(rows), _task({"latency_p99_s": 0.2}))
    assert set(shares) == {"cost", "latency_p99_s"}
    assert shares["cost"]["workers"] == pytest.approx(1 / 1.0001, abs=1e-3)
    assert shares["cost"]["memory_size"] == pytest.approx(1e-4, abs=1e-3)
    assert list(shares["cost"]) == ["workers", "memory_size"]
    assert shares["latency_p99_s"] == {"workers": pytest.approx(1.0), "memory_size": 0.0}


def test_a_knob_that_moves_a_constraint_is_important_there_only():
    """The objective depends on the workers alone, the constraint on memory alone."""
    rows = [({"workers": w, "memory_size": m}, float(w), [float(m)]) for w in range(5) for m in range(5)]
    shares = importance(_study(rows), _task({"error_rate": 0.01}))
    assert shares["cost"] == {"workers": pytest.approx(1.0), "memory_size": 0.0}
    assert shares["error_rate"] == {"memory_size": pytest.approx(1.0), "workers": 0.0}


def test_too_few_trials_give_no_shares():
    rows = [({"workers": w, "memory_size": 0}, float(w), [0.0]) for w in range(3)]
    assert importance(_study(rows), _task({"error_rate": 0.01})) == {}
