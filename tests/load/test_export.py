"""k6 and Locust shapes follow the profile's rate as the twin's load does."""

import json
import sys
import types

import numpy as np
import pandas as pd
import pytest

from tests.test_cli import twin
from twin.load.arrivals import LoadError
from twin.load.export import k6_script, locust_shape, stages


def profile():
    idx = pd.date_range("2026-01-01", periods=4, freq="5min", tz="UTC")
    return pd.DataFrame({"requests_per_s": [10.0, 40.0, 20.0, 5.0], "requests_per_s_q0.9": [15.0, 60.0, 30.0, 8.0]},
                        index=idx)


def k6_options(script: str) -> dict:
    body = script.split("export const options = ", 1)[1].split(";\n", 1)[0]
    return json.loads(body)


def test_k6_ramps_the_arrival_rate_through_the_step_centres():
    opts = k6_options(k6_script(profile(), quantile=0.9))["scenarios"]["load"]
    assert opts["executor"] == "ramping-arrival-rate" and opts["timeUnit"] == "1s" and opts["startRate"] == 15.0
    assert [s["target"] for s in opts["stages"]] == [15.0, 60.0, 30.0, 8.0, 8.0]
    assert sum(int(s["duration"][:-1]) for s in opts["stages"]) == 4 * 300
    assert opts["maxVUs"] >= opts["preAllocatedVUs"] >= 60


def run_shape(code: str, times):
    """Execute a generated locustfile against a stub of locust and sample its tick()."""
    stub = types.ModuleType("locust")

    class _Base:
        pass

    stub.HttpUser, stub.LoadTestShape = _Base, _Base
    stub.constant_pacing = lambda s: s
    stub.task = lambda f: f
    sys.modules["locust"] = stub
    try:
        ns = {}
        exec(compile(code, "locustfile.py", "exec"), ns)
    finally:
        del sys.modules["locust"]
    shape = ns["ProfileShape"]()
    out = []
    for t in times:
        shape.get_run_time = lambda t=t: t
        out.append(shape.tick())
    return out


def test_locust_users_make_the_rate_with_their_pacing():
    ticks = run_shape(locust_shape(profile(), pacing_s=2.0), [0, 150, 450, 1199, 1200])
    users = [t[0] if t else None for t in ticks]
    assert users[0] == 20 and users[1] == 20  # 10 req/s x 2 s pacing, held to the first centre
    assert users[2] == 80  # the second step's centre: 40 req/s
    assert users[3] == 10 and ticks[4] is None  # the last step held to the end, then stop
    with pytest.raises(LoadError, match="pacing_s"):
        locust_shape(profile(), pacing_s=0)


def test_bad_rates_are_named_and_the_cli_writes_both(tmp_path):
    p = profile()
    p.iloc[2, 0] = np.nan
    with pytest.raises(LoadError, match=r"requests_per_s at 2026-01-01 00:10:00\+00:00"):
        stages(p)
    profile().to_csv(tmp_path / "p.csv", index_label="timestamp")
    out = twin("loadshape", tmp_path / "p.csv", "--k6", tmp_path / "s.js", "--locust", tmp_path / "l.py",
               "--quantile", "0.9")
    assert out.returncode == 0, out.stderr
    assert k6_options((tmp_path / "s.js").read_text())["scenarios"]["load"]["stages"][1]["target"] == 60.0
    assert "class ProfileShape(LoadTestShape)" in (tmp_path / "l.py").read_text()
    out = twin("loadshape", tmp_path / "p.csv")
    assert out.returncode == 2 and "--k6" in out.stderr
