"""The sampler wastes no trials: small spaces searched exhaustively, repeats reused (not run,
not counted), and the same seed gives the same trials with any number of workers."""

import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from tests.conftest import mmc_model
from twin.spec import load_model
from twin.sweep.sampling import exhaustive, grid, planned_trials
from twin.sweep.study import close_storage, create_study, open_storage, run_study
from tests.sweep.test_study import task


def model(tmp_path, high):
    path = tmp_path / f"mmc_{high}.yaml"
    path.write_text(mmc_model(1, high))
    return load_model(path)


def test_a_forty_value_staffing_range_is_tried_at_every_value():
    """25 trials of a 40-value int space could miss the exact optimum: all 40 are queued."""
    dists = {"workers": IntDistribution(1, 40)}
    assert exhaustive(dists, 25) and planned_trials(dists, 25) == 40
    assert sorted(p["workers"] for p in grid(dists, seed=3)) == list(range(1, 41))
    assert grid(dists, seed=3) == grid(dists, seed=3) != grid(dists, seed=4)  # seeded order


def test_only_small_discrete_spaces_are_exhaustive():
    two = {"a": IntDistribution(1, 5), "b": CategoricalDistribution(["x", "y"])}
    assert exhaustive(two, 10) and planned_trials(two, 40) == 10  # no trial beyond the 10 points
    assert not exhaustive(two, 9) and planned_trials(two, 9) == 9
    assert not exhaustive({"a": IntDistribution(1, 100)}, 40)
    assert not exhaustive({"f": FloatDistribution(0, 1)}, 1000)
    assert exhaustive({"f": FloatDistribution(0, 1, step=0.25)}, 5)
    assert [p["f"] for p in sorted(grid({"f": FloatDistribution(0, 1, step=0.25)}, 0), key=lambda p: p["f"])] == [
        0.0, 0.25, 0.5, 0.75, 1.0]


def test_a_repeated_proposal_is_reused_not_run_and_not_counted(tmp_path):
    """The same parameters asked twice under common random numbers: the second trial is told the
    first's values and constraints, marked as a reuse, and the budget still buys 3 new points."""
    url = f"sqlite:///{tmp_path / 'reuse.db'}"
    t = task(model(tmp_path, 100), "reuse", trials=3, window=120, warmup=10, sampler="random")
    storage = open_storage(url)
    create_study(storage, t, warm=[{"workers": 6}]).enqueue_trial({"workers": 6})  # asked again
    close_storage(storage)
    trials = sorted(run_study(url, t), key=lambda x: x.number)
    first, again = trials[0], trials[1]
    assert first.params == again.params == {"workers": 6}
    assert again.user_attrs["reuse_of"] == first.number and "reuse_of" not in first.user_attrs
    assert again.values == first.values and again.user_attrs["constraints"] == first.user_attrs["constraints"]
    assert {k: v for k, v in again.system_attrs.items() if k.startswith("constraints")} == {
        k: v for k, v in first.system_attrs.items() if k.startswith("constraints")}
    assert len([x for x in trials if "reuse_of" not in x.user_attrs]) == 3 and len(trials) == 4


@pytest.mark.parametrize("sampler,high,n", [("random", 100, 4), ("tpe", 6, 6)])
def test_the_same_seed_gives_the_same_trials_with_any_number_of_workers(tmp_path, sampler, high, n):
    """Random search (trial n seeded by n) and an exhaustive space (trial n runs the n-th queued
    point) give each trial number the same parameters with one worker or two."""
    m = model(tmp_path, high)
    runs = []
    for workers in (1, 2):
        url = f"sqlite:///{tmp_path / f'{sampler}{workers}.db'}"
        t = task(m, "same", trials=4, window=60, warmup=5, sampler=sampler, prune=False)
        trials = run_study(url, t, workers=workers)
        runs.append({x.number: x.params["workers"] for x in trials if not x.user_attrs.get("surplus")})
    # (two workers may both ask for the last trial: the later is a surplus, failed unrun and not counted)
    assert len(runs[0]) == n and runs[0] == runs[1]
