"""Fuzzing a few `twin` commands in-process: every case exits 0, or 2 with `twin CMD: error:` lines,
never a traceback. Inputs stay small (a few seconds of simulated load) so valid cases are cheap."""

import contextlib
import io

import yaml
from hypothesis import event, given
from hypothesis import strategies as st

from tests.conftest import MINIMAL, MODELS
from tests.fuzz.support import fuzz, mutated, text_mutated
from tests.fuzz.test_fuzz_spec import EDGE_CASES
from twin.cli import main

TUNED = MINIMAL + "tunables:\n  api_workers: {type: int, low: 1, high: 8, targets: services.api.workers}\n"


def run(argv: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as e:  # argparse refuses a flag: usage and exit status 2
            code = e.code
    stderr = err.getvalue()
    event(f"twin {argv[0]}: exit status {code}")
    assert "Traceback" not in stderr, stderr
    assert code in (0, 2), (code, stderr)
    if code == 2:
        assert stderr.strip(), "exit status 2 with nothing said"
    return code, stderr


def _flags(name, options):
    return st.one_of(st.just([]), st.just([]), st.sampled_from(options).map(lambda v: [name, v]))


@fuzz(300)
@given(st.one_of(st.just(TUNED), text_mutated(TUNED)),
       st.one_of(st.just("5"), st.sampled_from(["5", "2s", "0", "-1", "x", "nan", "inf", "10ms", "1e400"])),
       st.one_of(st.just("2"), st.sampled_from(["2", "1", "0", "-1", "x", "nan", "inf", "1e400"])),
       _flags("--set", ["services.api.workers=4", "services.api.workers=-1", "services.api=[", "nosuch=1",
                        "services.api.service_time_s={dist: gamma, mean: 0.01, cv: 2}", "=", "services.api.workers"]),
       _flags("--param", ["api_workers=4", "api_workers=99", "api_workers=1e400", "nosuch=1", "api_workers"]),
       _flags("--seed", ["1", "-1", "x", "99999999999999999999999"]))
def test_simulate(scratch, text, duration, rate, sets, params, seed):
    path = scratch / "model.yaml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    code, stderr = run(["simulate", str(path), "--duration", duration, "--warmup", "0", "--rate", rate,
                        "--replications", "1", "--json", *sets, *params, *seed])
    if code == 2 and "usage:" not in stderr:
        assert all(line.startswith("twin simulate: error: ") for line in stderr.splitlines()), stderr


@fuzz(150)
@given(st.lists(st.sampled_from(EDGE_CASES), min_size=1, max_size=2).flatmap(
           lambda cases: st.one_of(st.just(cases), mutated(cases, max_edits=1))),
       st.sampled_from(["timestamp,requests_per_s\n2026-01-01T00:00:00Z,1\n2026-01-01T00:01:00Z,2\n",
                        "timestamp,requests_per_s\n2026-01-01T00:00:00Z,x\n", "timestamp\n", "",
                        "timestamp,requests_per_s\n2026-01-01T00:01:00Z,1\n2026-01-01T00:00:00Z,1\n"]))
def test_synth_with_scenarios(scratch, cases, profile_text):
    scenario, profile = scratch / "scenarios.yaml", scratch / "profile.csv"
    scenario.write_text(yaml.safe_dump({"scenarios": cases}, allow_unicode=True))
    profile.write_text(profile_text)
    run(["synth", str(profile), "--model", str(MODELS / "reference" / "shop.yaml"), "--scenario", str(scenario),
         "-o", str(scratch / "workload.parquet")])


@fuzz(60)
@given(st.sampled_from(["timestamp=ts,class=endpoint,latency_s=duration_ms", "timestamp=ts", "ts", "=", "",
                        "timestamp=ts,timestamp=endpoint", "class=endpoint", "timestamp=nosuch", ",,,"]),
       st.sampled_from(["ms", "s", "us", "ns", "h", "x"]), st.sampled_from(["UTC", "Mars/Olympus", ""]),
       st.sampled_from(["", "%h %t \"%r\" %>s %b %D", "%{", "$"]))
def test_calibrate_flags(scratch, columns, latency_unit, time_zone, log_format):
    trace = scratch / "requests.csv"
    trace.write_text("ts,endpoint,duration_ms\n2024-01-01T10:00:01+01:00,GET /a,12.5\n"
                     "2024-01-01T10:00:02+01:00,GET /b,3\n")
    skeleton = MODELS / "reference" / "traced_shop.skeleton.yaml"
    flags = ["--columns", columns, "--latency-unit", latency_unit, "--time-zone", time_zone]
    if log_format:
        flags += ["--log-format", log_format]
    code, _ = run(["calibrate", str(trace), "--model", str(skeleton), "-o", str(scratch / "out.yaml"), *flags])
    assert code == 2  # two requests never calibrate a model
