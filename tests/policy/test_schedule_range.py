"""The schedule (twin run's schedule stage) matches forecast steps to stored regimes; a step above
the busiest one keeps its settings (nothing better is stored) but the entry says so and asks for
a sweep, instead of holding them silently."""

import json
from types import SimpleNamespace

import pandas as pd

from tests.conftest import mmc_model
from twin.pipeline import _stage_schedule
from twin.policy.store import PolicyStore
from twin.spec import load_model
from twin.sweep.regimes import load_vector


def test_a_step_above_the_busiest_regime_is_flagged_in_the_schedule(tmp_path):
    (tmp_path / "mmc.yaml").write_text(mmc_model(1, 80))
    model = load_model(tmp_path / "mmc.yaml")
    stored = []
    with PolicyStore(f"sqlite:///{tmp_path / 'policy.db'}") as store:
        for regime, rate, workers in (("regime-1", 100.0, 24), ("regime-2", 200.0, 44)):
            load = {"requests_per_s": rate}
            p = store.record(model=model.name, experiment="exp", regime=regime, load=load, vector=load_vector(load),
                             params={"workers": workers}, confidence=1.0, runs=[], constraints={"latency_mean_s": 0.25})
            stored.append({"regime": regime, "version": p.version, "stored": True})
    (tmp_path / "policy.json").write_text(json.dumps({"policies": stored}))
    idx = pd.date_range("2026-03-02", periods=6, freq="h", tz="UTC")
    profile = pd.DataFrame({"requests_per_s_q0.9": [100.0, 100.0, 190.0, 200.0, 400.0, 400.0]}, index=idx)
    exp = SimpleNamespace(name="exp", regimes=SimpleNamespace(quantile=0.9),
                          policy=SimpleNamespace(db=None, max_distance=1.5, hysteresis=0.0),
                          schedule=SimpleNamespace(min_hold=0.0, lead_time=600.0))
    entries = _stage_schedule(exp, model, profile, tmp_path)["entries"]
    assert [(e["anchor"], e["steps"]) for e in entries] == [("exp/regime-1", 2), ("exp/regime-2", 4)]
    quiet, busy = entries
    assert quiet["out_of_range"] is None and not quiet["sweep_needed"]  # inside the range: as before
    assert busy["params"] == {"workers": 44} and busy["out_of_range"] == "above" and busy["sweep_needed"]
    assert "from 2026-03-02T04:00 outside the stored range: 400 req/s is above the busiest stored regime, " \
           "exp/regime-2 (200 req/s)" in busy["reason"]
