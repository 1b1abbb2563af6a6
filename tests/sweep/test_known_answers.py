"""A tiny version of benchmarks/sweep_known_answers.py: a staffing sweep must find Erlang C's
fewest workers and a cache-sizing sweep Che's capacity (within 5%), through twin's own
run_study and finish.  The full measurement (10 seeds, two loads, two constraints) is in
benchmarks/RESULTS.md, "Known answers (issue 12)"."""

import importlib.util
from pathlib import Path

from twin.sweep.study import finish, run_study

PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "sweep_known_answers.py"
_spec = importlib.util.spec_from_file_location("sweep_known_answers", PATH)
known = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(known)


def winner(task, tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    run_study(url, task)
    result = finish(url, task)
    assert result.winner is not None, "no setting met the constraint"
    return result.winner.params


def test_staffing_sweep_finds_erlang_c_fewest_workers(tmp_path):
    metric = "service.server.wait_mean_s"
    c = known.exact_c(metric, 32.0, known.BOUNDS[metric])
    assert c == 9  # inside the domain 2..14, not at an edge
    params = winner(known.staffing_task(32.0, metric, seed=0, window=200.0, replications=4), tmp_path)
    assert params["workers"] == c


def test_cache_sizing_sweep_is_within_5_percent_of_che(tmp_path):
    che_bytes, _ = known.che_capacity_bytes(known.CACHE_TARGET)
    low, _, step = known.cache_grid(che_bytes)
    grid = (low + 12 * step, low + 20 * step, step)  # 9 values around Che's answer, not at an edge
    assert grid[0] * 1024 < che_bytes < grid[1] * 1024
    params = winner(known.cache_task(seed=0, window=120.0, replications=3, grid=grid), tmp_path)
    assert abs(params["capacity"] / che_bytes - 1) <= 0.05
