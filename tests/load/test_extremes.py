"""Load at the edges: windows too short to bring an arrival, rates that would exhaust memory."""

import re

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from twin.load import scenarios
from twin.load.arrivals import LoadError
from twin.load.profile_workload import workload
from twin.sim import PoissonArrivals
from twin.spec import SpecError, load_model
from twin.spec.experiment import Sweep
from twin.sweep.task import Evaluator, SweepTask, window_profile

MM1 = "models/validation/mm1.yaml"


def _profile(rate, steps=2, freq="5min"):
    return pd.DataFrame({"requests_per_s": [rate] * steps},
                        index=pd.date_range("2026-01-01", periods=steps, freq=freq, tz="UTC"))


@pytest.mark.parametrize("rate,expected", [(1e308, "expected at most 1e+08 arrivals in all, got inf"),
                                           (1e6, "expected at most 1e+08 arrivals in all, got 6e+08"),
                                           (0.0, "expected a window in which at least 1 arrival is expected, got 0")])
def test_a_profile_must_bring_between_one_and_max_arrivals(rate, expected):
    # 1e308 req/s once ran until memory was gone; 0 req/s gave an empty load and a run of nothing
    with pytest.raises(LoadError, match=re.escape("load profile, requests_per_s, over 600 s: " + expected)):
        workload(_profile(rate), load_model(MM1), np.random.default_rng(1))


def _task(window, scenario_list=()):
    model = load_model(MM1)
    return SweepTask(study="s", model=model.model_dump(mode="json", by_alias=True, exclude_none=True),
                     profile=window_profile({"requests_per_s": 5.0}, window), scenarios=list(scenario_list),
                     settings={"window": window, "warmup": 0.0}, seed=1)


def test_a_sweep_window_too_short_for_one_arrival_names_sweep_window():
    with pytest.raises(LoadError, match=r"^sweep.window \(0.001 s\) at the load profile's requests_per_s: expected a "
                                        r"window in which at least 1 arrival is expected, got 0.005$"):
        Evaluator(_task(0.001)).workload(0)


def test_a_sweep_window_longer_than_a_day_is_refused():
    with pytest.raises(ValidationError, match="window\n  Input should be less than or equal to 86400"):
        Sweep(window=1e9)


def test_a_poisson_run_too_short_for_one_arrival_is_refused():
    with pytest.raises(SpecError, match="at least 1 arrival is expected, got rate x duration = 0.007"):
        PoissonArrivals(7.0, 0.001)


def test_a_flash_crowd_after_the_window_leaves_the_load_alone_and_a_partial_window_runs():
    ev = Evaluator(_task(20.0, [{"kind": "flash_crowd", "at": "30s", "factor": 2}]))
    plain = Evaluator(_task(20.0)).workload(0)
    assert np.array_equal(ev.workload(0).time_s, plain.time_s)
    assert ev.run({}, fraction=1 / 3)["throughput_per_s"] > 0
    assert scenarios.parse([{"kind": "flash_crowd", "at": "30s", "factor": 2}])[0].window()[0] == 30.0


def test_arrival_processes_refuse_more_arrivals_than_a_run_holds():
    from twin.load.arrivals import hawkes, mmpp, nhpp

    rng = np.random.default_rng(0)
    for make, name in ((lambda: nhpp([0, 60], [1e308, 1e308], rng), "knots_r"),
                       (lambda: mmpp([1e12, 1], [1, 1], [[0, 1], [1, 0]], 100, rng), "rates"),
                       (lambda: hawkes(1e9, 0.5, 1, 100, rng), "mu")):
        with pytest.raises(LoadError, match=f"^{name}: expected at most 1e\\+08 arrivals in all"):
            make()


def test_an_edge_case_that_would_bring_too_many_arrivals_names_its_factor():
    model = load_model(MM1)
    w = PoissonArrivals(100.0, 600.0).generate(model, np.random.default_rng(1))
    cases = scenarios.parse([{"kind": "flash_crowd", "at": 0, "factor": 1e4, "hold": "5min"}])
    with pytest.raises(SpecError, match=r"^flash_crowd.factor: expected a load of at most 1e\+08 arrivals"):
        scenarios.apply(cases, model, w, np.random.default_rng(2))
