"""`twin validate`: every validation model agrees with its closed form, and the test has power."""

import dataclasses

import pytest

from tests.conftest import MODELS
from twin.validation import check_level, collect, judge, predict, run_model
from twin.sim import Estimate

SUITE = collect(MODELS / "validation")
LEVEL = check_level(SUITE)


def test_the_suite_covers_the_required_systems():
    formulas = " ".join(c.formula for _, _, checks in SUITE for c in checks)
    for needed in ("M/M/1", "Erlang C", "Pollaczek-Khinchine (deterministic)", "Pollaczek-Khinchine (lognormal)",
                   "M/M/2/5", "Jackson network", "Che's approximation"):
        assert needed in formulas
    assert any(c.metric.endswith("blocking_probability") for _, _, cs in SUITE for c in cs)
    assert any(c.metric.endswith("wait_probability") for _, _, cs in SUITE for c in cs)


@pytest.mark.slow
@pytest.mark.parametrize("path,model,checks", SUITE, ids=[p.stem for p, _, _ in SUITE])
def test_validation_model_matches_theory(path, model, checks):
    outcomes = run_model(model, checks, level=LEVEL, seed=0)
    failed = [f"{o.check.metric}: analytic {o.check.expected:.5g}, simulated {o.estimate} ({o.reason})"
              for o in outcomes if not o.passed]
    assert not failed, "\n".join(failed)


def test_a_wrong_answer_fails():
    # M/M/1 simulated at 7/s, judged against theory for 7.5/s: the waits must be told apart.
    _, model, _ = next(entry for entry in SUITE if entry[1].name == "mm1")
    wrong = [c for c in predict(model, 7.5) if c.metric in ("service.server.wait_mean_s", "latency_mean_s")]
    outcomes = run_model(model, wrong, level=LEVEL, seed=0, replications=10)
    assert not any(o.passed for o in outcomes)


def test_a_vague_estimate_fails():
    _, _, checks = SUITE[0]
    check = checks[0]
    wide = Estimate(check.expected, 0.5 * abs(check.expected), 3)
    ok, reason = judge(check, wide, 0.075)
    assert not ok and "too wide" in reason
    ok, _ = judge(check, dataclasses.replace(wide, half_width=0.0), 0.075)
    assert ok
