"""A skewed interval (a pooled quantile's) is shown as [low, high], never as mean ± half-width."""

import math

from twin.report.run import _est, _finalists
from twin.report.simulation import fmt, interval_text
from twin.sim.stats import Estimate, pooled_quantile


def test_a_skewed_estimate_is_shown_by_its_ends():
    e = Estimate(100.0, 15.0, 10, lower=95.0, upper=125.0)
    assert fmt(e) == "100 [95, 125]"
    assert fmt(e, 1e3) == "1e+05 [9.5e+04, 1.25e+05]"
    assert "±" not in fmt(e)


def test_a_symmetric_estimate_keeps_plus_minus():
    assert fmt(Estimate(100.0, 2.5, 10)) == "100 ± 2.5"
    assert fmt(Estimate(0.1234, 0.001, 10), 1e3) == "123.4 ± 1"
    assert fmt(Estimate(1e6 + 0.1, 1e-7, 10)) == "1e+06 ± 1e-07"  # the rounding of mean -+ half is no skew
    assert fmt(Estimate(3.0, math.nan, 1)) == "3"
    assert fmt(Estimate(math.nan, math.nan, 0)) == "–"


def test_a_narrow_skewed_interval_gets_the_digits_to_show_its_ends():
    assert interval_text(123.456, 123.41, 123.52) == "123.46 [123.41, 123.52]"


def test_a_pooled_quantile_is_printed_skewed():
    import numpy as np

    rng = np.random.default_rng(4)
    samples = [rng.exponential(1.0, 2000) for _ in range(5)]
    e = pooled_quantile(samples, 0.99)
    text = fmt(e)
    assert "±" not in text and text.endswith("]"), text
    lo, hi = (float(x) for x in text.split("[")[1].rstrip("]").split(", "))
    assert math.isclose(lo, e.low, rel_tol=1e-3) and math.isclose(hi, e.high, rel_tol=1e-3)


def test_the_run_report_reads_the_ends_of_an_estimate_dict():
    skewed = Estimate(0.2, 0.05, 5, lower=0.18, upper=0.28).to_dict()
    assert _est(skewed) == "0.2 [0.18, 0.28]"
    assert _est(Estimate(0.2, 0.05, 5).to_dict()) == "0.2 ± 0.05"
    assert _est({"mean": 0.2, "half_width": 0.05}) == "0.2 ± 0.05"  # written before ci_low/ci_high
    assert _est({"mean": 0.2, "half_width": None}) == "0.2"
    assert _est(None) == "–"


def test_finalists_table_shows_a_skewed_p99_by_its_ends():
    doc = {"result": {"objectives": [["cost", "minimize"]], "constraints": {"latency_p99_s": 0.3},
                      "candidates": [{"verdict": "winner", "trial": 3, "params": {"workers": 4},
                                      "estimates": {"cost": Estimate(1.0, 0.1, 5).to_dict(),
                                                    "latency_p99_s": Estimate(0.2, 0.05, 5, lower=0.18,
                                                                              upper=0.28).to_dict()},
                                      "replications": [{"latency_p99_s": 0.2}] * 5}]}}
    html = _finalists(doc)
    assert "<td>0.2 [0.18, 0.28]</td>" in html and "<td>1 ± 0.1</td>" in html
