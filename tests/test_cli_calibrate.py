"""`twin calibrate` as a user meets it: files written, a verdict, and bad input as one line, exit 2."""

import pytest

from tests.calibrate.synthetic import otlp_trace
from tests.conftest import ROOT
from tests.test_cli import twin
from twin.spec import load_model

MODELS = ROOT / "models" / "reference"
FIXTURES = ROOT / "tests" / "fixtures" / "traces"


@pytest.fixture(scope="module")
def trace(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "trace.jsonl"
    otlp_trace(load_model(MODELS / "traced_shop.yaml"), path, rate_per_s=30, duration_s=400)
    return path


@pytest.mark.slow
def test_calibrate_writes_model_and_report(trace, tmp_path):
    out = tmp_path / "models" / "shop.yaml"
    res = twin("calibrate", trace, "--model", MODELS / "traced_shop.skeleton.yaml", "-o", out, "--replications", 2)
    assert res.returncode == 0, res.stderr
    assert "verdict:" in res.stdout and "fidelity on held-out requests" in res.stdout
    model = load_model(out)  # a normal model, loadable as any other
    assert model.name == "shop" and model.provenance["fidelity"]["verdict"] in ("faithful", "undetermined")
    assert model.services["orders"].service_time_s.dist == "exponential"
    report = out.with_suffix(".calibration.html").read_text()
    assert "Verdict" in report and report.count("data:image/png;base64,") >= 6
    res = twin("simulate", out, "--duration", 60, "--warmup", 10, "--replications", 1, "--json")
    assert res.returncode == 0, res.stderr


@pytest.mark.slow
def test_a_wrong_skeleton_is_caught_and_strict_fails(trace, tmp_path):
    # the skeleton says orders has one worker where production had eight: the twin queues where
    # the real system did not, and the held-out comparison must say so
    skeleton = tmp_path / "s.yaml"
    skeleton.write_text((MODELS / "traced_shop.skeleton.yaml").read_text().replace(
        "orders: {instances: 2, workers: 4}", "orders: {instances: 1, workers: 1}"))
    res = twin("calibrate", trace, "--model", skeleton, "-o", tmp_path / "m.yaml", "--replications", 2, "--strict")
    assert res.returncode == 1 and "verdict: not faithful" in res.stdout
    res = twin("calibrate", trace, "--model", skeleton, "-o", tmp_path / "m.yaml", "--replications", 2)
    assert res.returncode == 0


def _bad(tmp_path, *args):
    res = twin("calibrate", *args)
    assert res.returncode == 2, res.stdout + res.stderr
    assert "Traceback" not in res.stderr
    errors = [line for line in res.stderr.splitlines() if ": error: " in line]
    assert len(errors) == 1, res.stderr
    return errors[0]


def test_service_missing_from_the_skeleton(trace, tmp_path):
    skeleton = tmp_path / "s.yaml"
    text = (MODELS / "traced_shop.skeleton.yaml").read_text().replace("  payments: {workers: 16}\n", "")
    skeleton.write_text(text)
    line = _bad(tmp_path, trace, "--model", skeleton, "-o", tmp_path / "m.yaml")
    assert "services payments appear in the trace but not in the skeleton" in line


def test_malformed_log_lines_stop_unless_keep_going(tmp_path):
    log = tmp_path / "access.log"
    good = (FIXTURES / "apache_access_2000.log").read_text().splitlines(keepends=True)
    log.write_text("".join(good[:300]) + "garbage line\n" + "".join(good[300:600]) + "more garbage\n")
    skeleton = tmp_path / "s.yaml"
    skeleton.write_text("name: web\nservices:\n  web: {workers: 8, service_time_s: 0.02}\n")
    line = _bad(tmp_path, log, "--model", skeleton, "-o", tmp_path / "m.yaml")
    assert "2 malformed line(s) (lines 301, 602)" in line and "--keep-going" in line
    res = twin("calibrate", log, "--model", skeleton, "-o", tmp_path / "m.yaml", "--keep-going")
    assert res.returncode == 0, res.stderr
    assert "no latencies" in res.stdout


@pytest.mark.parametrize("content,message", [
    ("ts,endpoint,ms\n2024-01-01T00:00:00Z,a,1\n2024-01-01T01:00:00+01:00,a,2\n", "time zone"),
    ("ts,endpoint,ms\n", "no requests"),
    ("ts,endpoint,ms\n" + "".join(f"2024-01-01T00:00:{i:02d}Z,a,3\n" for i in range(50)), "needs at least 200"),
])
def test_bad_request_logs(tmp_path, content, message):
    log = tmp_path / "requests.csv"
    log.write_text(content)
    skeleton = tmp_path / "s.yaml"
    skeleton.write_text("name: web\nservices:\n  web: {workers: 8}\n")
    line = _bad(tmp_path, log, "--model", skeleton, "-o", tmp_path / "m.yaml", "--columns",
                "timestamp=ts,class=endpoint,latency_s=ms", "--latency-unit", "ms")
    assert message in line


def test_output_must_be_yaml_and_skeleton_valid(trace, tmp_path):
    assert "expected a .yaml file" in _bad(tmp_path, trace, "--model", MODELS / "traced_shop.skeleton.yaml",
                                           "-o", tmp_path / "m.json")
    skeleton = tmp_path / "s.yaml"
    skeleton.write_text("name: x\nservices:\n  web: {workrs: 8}\n")
    assert "s.yaml:3: services.web.workrs: unknown field" in _bad(tmp_path, trace, "--model", skeleton,
                                                                  "-o", tmp_path / "m.yaml")


def test_more_bad_input(trace, tmp_path):
    sk = MODELS / "traced_shop.skeleton.yaml"
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    assert "cannot write here" in _bad(tmp_path, trace, "--model", sk, "-o", blocker / "m.yaml")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert "empty.jsonl: empty file" in _bad(tmp_path, empty, "--model", sk, "-o", tmp_path / "m.yaml")
    assert "given twice" in _bad(tmp_path, trace, "--model", sk, "-o", tmp_path / "m.yaml",
                                 "--columns", "timestamp=a,timestamp=b")
    util = tmp_path / "util.csv"
    util.write_text("timestamp,value\n2026-01-05T10:00:00Z,55\n2026-01-05T10:01:00Z,60\n")
    assert "a percentage?" in _bad(tmp_path, trace, "--model", sk, "-o", tmp_path / "m.yaml",
                                   "--utilisation", f"frontend={util}")
    util.write_text("timestamp,value\n2026-01-05T10:00:00Z,0.5\n2026-01-05T10:01:00Z,0.6\n")
    assert "not a service of the trace" in _bad(tmp_path, trace, "--model", sk, "-o", tmp_path / "m.yaml",
                                                "--utilisation", f"nope={util}")


@pytest.mark.slow
def test_model_name_comes_from_the_file_name(trace, tmp_path):
    out = tmp_path / "shop.v2.yaml"
    res = twin("calibrate", trace, "--model", MODELS / "traced_shop.skeleton.yaml", "-o", out, "--replications", 1)
    assert res.returncode == 0, res.stderr
    assert load_model(out).name == "shop"
