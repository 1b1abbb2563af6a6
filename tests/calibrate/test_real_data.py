"""Readers and calibration on real public samples (tests/fixtures/traces, licences beside them)."""

import math

import numpy as np
import pytest

from tests.conftest import ROOT
from twin.calibrate.calibrate import calibrate
from twin.calibrate.skeleton import load_skeleton
from twin.traces import read_traces

FIXTURES = ROOT / "tests" / "fixtures" / "traces"


@pytest.fixture
def skeleton(tmp_path):
    def make(service, time=0.05):
        path = tmp_path / "skeleton.yaml"
        path.write_text(f"name: real\nservices:\n  {service}: {{instances: 2, workers: 16, service_time_s: {time}}}\n")
        return load_skeleton(path)
    return make


def test_apache_access_log_gives_mix_sizes_and_arrivals(skeleton):
    trace, inputs = read_traces([FIXTURES / "apache_access_2000.log"], service="web")
    assert inputs[0]["rows"] == 2000 and inputs[0]["malformed"] == 0
    cal = calibrate(trace, skeleton("web"), inputs=inputs, max_classes=6)
    m = cal.model
    assert "GET_presentations" in m.classes and abs(sum(c.share for c in m.classes.values()) - 1) < 1e-9
    assert len(m.classes) <= 7  # six named, the rest folded into 'other'
    sizes = m.classes["GET_presentations"].payload_bytes
    assert sizes.mean() > 1000  # images and slides: kilobytes
    # no latency in a combined log: the skeleton's service time stays, and it is said
    assert m.services["web"].service_time_s.mean() == 0.05
    assert any("no latencies" in w for w in cal.warnings)
    arrivals = m.provenance["arrivals"]
    assert arrivals["rate_per_s"] > 0 and arrivals["index_of_dispersion"]
    assert m.provenance["classes"]["GET_presentations"]["labels"] == ["GET /presentations"]


def test_azure_llm_trace_is_bursty_with_heavy_tailed_sizes(skeleton):
    trace, inputs = read_traces([FIXTURES / "azure_llm_conv_5000.csv"], time_zone="UTC", service="llm",
                                columns={"timestamp": "TIMESTAMP", "bytes_in": "ContextTokens",
                                         "bytes_out": "GeneratedTokens"})
    assert len(trace) == 5000 and str(trace["timestamp"].iloc[0]) == "2023-11-16 18:15:46.680590+00:00"
    cal = calibrate(trace, skeleton("llm"), inputs=inputs)
    m = cal.model
    assert set(m.classes) == {"request"}
    size = m.classes["request"].payload_bytes  # generated tokens, sizes in whatever unit the trace has
    assert size.mean() == pytest.approx(trace["bytes_out"].iloc[: cal.model.provenance["requests"]["train"]].mean(),
                                        rel=0.1)
    dispersion = m.provenance["arrivals"]["index_of_dispersion"]
    # sub-minute bursts: counts vary far more than Poisson (index 1) at the minute scale
    assert dispersion["60s"] > 2 and dispersion["1s"] >= 1
    assert not math.isnan(m.defaults.rate_per_s) and m.defaults.rate_per_s == pytest.approx(5000 / 1000, rel=0.25)
    assert np.isclose(sum(c.share for c in m.classes.values()), 1.0)
