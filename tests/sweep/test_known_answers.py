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


def test_p99_staffing_at_rho_08_survives_the_two_old_failure_modes(tmp_path):
    """Seed 3: c = 8's trial read p99 1.25 s > 1.2 s on its one window and was screened out (now the
    near miss, judged on replications); seed 8: c = 8's interval over 5 replications crossed the bound
    and the sure c = 9 won (now firmed up with more replications).  Exact p99 at c = 8: 1.030 s."""
    metric = "latency_p99_s"
    assert known.exact_c(metric, 32.0, known.BOUNDS[metric]) == 8
    for seed in (3, 8):
        task = known.staffing_task(32.0, metric, seed=seed, window=300.0, replications=5)
        url = f"sqlite:///{tmp_path / f'study-{seed}.db'}"
        trials = run_study(url, task)
        result = finish(url, task)
        assert result.winner is not None and result.winner.params["workers"] == 8, seed
        assert result.winner.confident
        eight = next(t for t in trials if t.params["workers"] == 8)
        if seed == 3:  # screened out by one window before: its own run broke the bound
            assert eight.user_attrs["constraints"][0] > 0
        if seed == 8:  # unsure on 5 replications before
            assert len(result.winner.replications) > 5
