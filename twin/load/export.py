"""Load shapes for real load tools, from a load profile: drive a real system with the same shape.

- ``k6_script``: a k6 scenario with the ``ramping-arrival-rate`` executor.  Its stages ramp the
  arrival rate linearly from one target to the next, which is the twin's own rate curve: linear
  between the centres of the profile's steps.
- ``locust_shape``: a Locust ``LoadTestShape`` whose users each send one request every
  ``pacing_s`` seconds (``constant_pacing``), so the request rate is users / pacing; the user
  count follows the same curve, step by step.

Both take the rate at a chosen quantile of the forecast, like ``twin synth``, and carry a header
saying which profile, quantile and time window they came from.

>>> import pandas as pd
>>> idx = pd.date_range("2026-01-01", periods=3, freq="10min", tz="UTC")
>>> p = pd.DataFrame({"requests_per_s": [5.0, 20.0, 10.0]}, index=idx)
>>> stages(p)
[(300.0, 5.0), (600.0, 20.0), (600.0, 10.0), (300.0, 10.0)]
"""

from __future__ import annotations

import json
import math

import pandas as pd

from .arrivals import LoadError
from .profile_workload import _step, profile_rates


def stages(profile: pd.DataFrame, quantile: float | None = None) -> list[tuple[float, float]]:
    """(duration in s, target rate per s) pairs: hold the first step's rate to its centre, ramp
    linearly from centre to centre, hold the last to the end."""
    rates = profile_rates(profile, quantile)
    step = _step(profile).total_seconds()
    out = [(step / 2, float(rates[0]))]
    out += [(step, float(r)) for r in rates[1:]]
    out.append((step / 2, float(rates[-1])))
    return out


def _duration(seconds: float) -> str:
    return f"{int(round(seconds))}s"


def k6_script(profile: pd.DataFrame, *, url: str = "http://localhost:8080/", quantile: float | None = None,
              source: str = "load profile", max_vus: int | None = None) -> str:
    """A k6 script (JavaScript) whose ``load`` scenario follows the profile's arrival rate."""
    st = stages(profile, quantile)
    peak = max(r for _, r in st)
    options = {"scenarios": {"load": {
        "executor": "ramping-arrival-rate", "startRate": round(st[0][1], 3), "timeUnit": "1s",
        "preAllocatedVUs": max(1, math.ceil(peak)), "maxVUs": max_vus or max(10, math.ceil(10 * peak)),
        "stages": [{"duration": _duration(d), "target": round(r, 3)} for d, r in st]}}}
    return (f"// k6 scenario from {json.dumps(source)} (quantile {quantile if quantile is not None else 'median'}), "
            f"{profile.index[0]} to {profile.index[-1] + _step(profile)}; written by twin\n"
            "import http from 'k6/http';\n\n"
            f"export const options = {json.dumps(options, indent=2)};\n\n"
            f"export default function () {{\n  http.get({json.dumps(url)});\n}}\n")


def locust_shape(profile: pd.DataFrame, *, pacing_s: float = 1.0, host: str = "http://localhost:8080",
                 quantile: float | None = None, source: str = "load profile") -> str:
    """A locustfile: a user sending one request per ``pacing_s`` and a ``LoadTestShape`` whose
    user count makes the profile's rate (users = rate x pacing), ramping between step centres."""
    if not (pacing_s > 0 and math.isfinite(pacing_s)):
        raise LoadError(f"pacing_s: expected a number of seconds > 0, got {pacing_s!r}")
    st = stages(profile, quantile)
    knots, t = [(0.0, round(st[0][1] * pacing_s, 3))], 0.0
    for d, r in st:  # each stage ramps to its target over its duration, as k6's do
        t += d
        knots.append((round(t, 3), round(r * pacing_s, 3)))
    return f'''"""Locust load shape from {json.dumps(source)} (quantile {quantile if quantile is not None else "median"}),
{profile.index[0]} to {profile.index[-1] + _step(profile)}; written by twin.  Run: locust -f THIS_FILE"""
import math

from locust import HttpUser, LoadTestShape, constant_pacing, task

# (seconds from the start, users); users = requests/s x pacing, linear in between
KNOTS = {json.dumps(knots)}
PACING_S = {pacing_s!r}


class ProfileUser(HttpUser):
    host = {host!r}
    wait_time = constant_pacing(PACING_S)

    @task
    def request(self):
        self.client.get("/")


class ProfileShape(LoadTestShape):
    def tick(self):
        t = self.get_run_time()
        if t >= KNOTS[-1][0]:
            return None
        for (t0, u0), (t1, u1) in zip(KNOTS, KNOTS[1:]):
            if t0 <= t < t1:
                users = u0 + (u1 - u0) * (t - t0) / (t1 - t0)
                return max(1, math.ceil(users)), max(1.0, abs(u1 - u0) / max(t1 - t0, 1e-9) * 10)
        return None
'''


__all__ = ["k6_script", "locust_shape", "stages"]
