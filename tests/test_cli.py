"""The command line as a user meets it: output, files, and bad input (exit 2, one line, no traceback)."""

import json
import re
import subprocess
import sys

import pandas as pd
import pytest

from tests.conftest import MINIMAL, MODELS, ROOT

SHOP = MODELS / "reference" / "shop.yaml"
MM1 = MODELS / "validation" / "mm1.yaml"


def twin(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "twin", *map(str, args)], capture_output=True, text=True, cwd=cwd)


def test_simulate_json_has_the_promised_metrics():
    out = twin("simulate", MM1, "--duration", 400, "--warmup", 50, "--replications", 3, "--jobs", 1, "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    m = doc["metrics"]
    for key in ("latency_mean_s", "latency_p50_s", "latency_p95_s", "latency_p99_s", "throughput_per_s",
                "error_rate", "cost", "cache_hit_ratio"):
        assert key in m
    lat = m["latency_mean_s"]
    assert lat["ci_low"] < lat["mean"] < lat["ci_high"] and lat["n"] == 3 and lat["level"] == 0.95
    assert m["cache_hit_ratio"]["mean"] is None  # no cache in this model
    assert 0.5 < doc["services"]["server"]["utilisation"]["mean"] < 0.9
    assert doc["replications"] == 3 and doc["rate_per_s"] == 7.0


def test_simulate_is_reproducible():
    args = ("simulate", MM1, "--duration", 200, "--warmup", 20, "--replications", 2, "--json", "--seed", 9)
    assert twin(*args).stdout == twin(*args, "--jobs", 1).stdout


def test_simulate_table_with_overrides_and_params(tmp_path):
    out = twin("simulate", SHOP, "--rate", 60, "--duration", 120, "--warmup", 20, "--replications", 2,
               "--set", "services.frontend.instances=2", "--param", "memory_size=16MiB",
               "--param", "data_structure=tree", "--out", tmp_path / "run")
    assert out.returncode == 0, out.stderr
    assert "product_cache" in out.stdout and "95% confidence interval" in out.stdout
    # a pooled quantile's interval is skewed: shown by its ends, not as mean ± half-width
    line = {ln.split("│")[1].strip(): ln for ln in out.stdout.splitlines() if ln.count("│") >= 3}
    assert re.search(r"\d \[[\d.]+, [\d.]+\] │$", line["latency p99 (ms)"]) and "±" not in line["latency p99 (ms)"]
    assert "±" in line["latency mean (ms)"] and "mean ±" not in out.stdout and "value, 95% CI" in out.stdout
    run = tmp_path / "run"
    for name in ("summary.json", "replications.csv", "requests.parquet", "timeseries.csv", "model.yaml",
                 "report.html"):
        assert (run / name).is_file(), name
    doc = json.loads((run / "summary.json").read_text())
    assert doc["params"] == {"memory_size": "16MiB", "data_structure": "tree"}
    assert "frontend:\n    instances: 2" in (run / "model.yaml").read_text()
    assert "capacity_bytes: 16777216" in (run / "model.yaml").read_text()
    req = pd.read_parquet(run / "requests.parquet")
    assert set(req["replication"]) == {0, 1} and "services_visited" in req
    html = (run / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 3 and "http" not in html.split("<body>")[1].split("data:")[0]
    assert re.search(r"<td>latency p99 \(ms\)</td><td>[\d.]+ \[[\d.]+, [\d.]+\]</td>", html)
    assert "mean ± 95% CI" not in html


@pytest.mark.parametrize("args,message", [
    (["simulate", "{bad}"], "{bad}:8: services.api.worker: unknown field 'worker'"),
    (["simulate", MM1, "--set", "services.server.workers=abc"], "--set: services.server.workers: expected an integer"),
    (["simulate", MM1, "--param", "memory_size=1GiB"], "--param: memory_size: unknown tunable"),
    (["simulate", MM1, "--warmup", 5000, "--duration", 100], "--warmup: expected a warm-up shorter"),
    (["simulate", "no/such/model.yaml"], "no/such/model.yaml: no such file"),
    (["simulate", MM1, "--rate", -3], "argument --rate: expected a number > 0, got '-3'"),
    (["simulate", MM1, "--replications", 0], "expected a whole number >= 1"),
    (["validate", "{empty}"], "no validation models"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
    bad = tmp_path / "bad.yaml"
    bad.write_text(MINIMAL + "    worker: 3\n")
    (tmp_path / "empty").mkdir()
    args = [str(a).replace("{bad}", str(bad)).replace("{empty}", str(tmp_path / "empty")) for a in args]
    message = message.replace("{bad}", str(bad))
    out = twin(*args)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert message in out.stderr
    errors = [line for line in out.stderr.splitlines() if "error" in line]
    assert len(errors) == 1


def test_partial_output_is_never_left_behind(tmp_path):
    target = tmp_path / "run"
    target.mkdir()
    (target / ".twin-run").write_text("")
    (target / "old.txt").write_text("previous run")
    out = twin("simulate", MM1, "--set", "services.server.workers=0", "--out", target)
    assert out.returncode == 2
    assert [p.name for p in tmp_path.iterdir()] == ["run"]
    assert (target / "old.txt").read_text() == "previous run"


FAST_MM1 = """\
name: quick
classes:
  job: {share: 1.0, entry: server}
services:
  server:
    service_time_s: {dist: exponential, mean: 0.1}
defaults: {rate_per_s: 3.0, duration_s: 3000, warmup_s: 100, replications: 12}
"""


def test_validate_prints_pass_and_exits_0(tmp_path):
    (tmp_path / "quick.yaml").write_text(FAST_MM1)
    out = twin("validate", tmp_path, "--jobs", 1)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "M/M/1" in out.stdout and "pass" in out.stdout and "0 failed" in out.stdout


def test_validate_refuses_a_model_without_closed_form(tmp_path):
    (tmp_path / "x.yaml").write_text(FAST_MM1.replace("    service_time_s", "    instances: 2\n    service_time_s"))
    out = twin("validate", tmp_path)
    assert out.returncode == 2
    assert "not a validation model" in out.stderr and "2 instances" in out.stderr


def test_replay_an_arrival_table(tmp_path):
    table = tmp_path / "arrivals.csv"
    times = [i * 0.2 for i in range(2000)]
    table.write_text("time_s,class\n" + "".join(f"{t},job\n" for t in times))
    out = twin("simulate", MM1, "--workload", table, "--warmup", 10, "--replications", 2, "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["workload_file"] == str(table) and doc["duration_s"] == pytest.approx(times[-1])
    assert doc["metrics"]["throughput_per_s"]["mean"] == pytest.approx(5.0, rel=0.01)


@pytest.mark.parametrize("content,message", [
    ("time_s,class\n0.0,job\nsoon,job\n", "arrivals.csv: time_s: expected numbers; row 3 holds 'soon'"),
    ("time_s,class\n0.0,job\n1.0,jobb\n", "arrivals.csv: class: unknown request classes jobb"),
    ("time_s,class\n2.0,job\n1.0,job\n", "row 1 goes back in time"),
    ("time_s,class\n", "the arrival table has no rows"),
    ("time_s,class,colour\n0,job,red\n", "unknown columns colour"),
    ("time_s,class\n0,job\n0,job\n", "every arrival is at time 0, so the table spans no time; give the window to "
                                     "simulate with --duration"),
])
def test_bad_arrival_tables(tmp_path, content, message):
    table = tmp_path / "arrivals.csv"
    table.write_text(content)
    out = twin("simulate", MM1, "--workload", table, "--warmup", 0)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert message in out.stderr, out.stderr


def test_out_never_deletes_a_folder_that_is_not_a_run(tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "notes.txt").write_text("mine")
    out = twin("simulate", MM1, "--duration", 50, "--warmup", 5, "--replications", 1, "--out", victim)
    assert out.returncode == 2 and "is not a twin run folder" in out.stderr
    assert (victim / "notes.txt").read_text() == "mine"
    out = twin("simulate", MM1, "--duration", 50, "--warmup", 5, "--replications", 1, "--out", ".", cwd=tmp_path)
    assert out.returncode == 2 and "refusing to replace the current folder" in out.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["victim"]
    run = tmp_path / "run"
    for _ in range(2):  # a run folder is replaced by the next run
        out = twin("simulate", MM1, "--duration", 50, "--warmup", 5, "--replications", 1, "--out", run)
        assert out.returncode == 0, out.stderr
    assert (run / ".twin-run").is_file() and sorted(p.name for p in tmp_path.iterdir()) == ["run", "victim"]


@pytest.mark.parametrize("name", ["trace.parquet", "trace.jsonl"])
def test_simulate_writes_a_trace_calibration_can_read(tmp_path, name):
    from twin.traces import read_traces

    out = twin("simulate", MODELS / "reference" / "traced_shop.yaml", "--rate", 20, "--duration", 30,
               "--replications", 1, "--trace", tmp_path / name)
    assert out.returncode == 0, out.stderr
    trace, _ = read_traces([tmp_path / name])
    assert set(trace["service"].astype(str)) == {"frontend", "cache", "catalog", "orders", "payments", "db"}
    browse = trace[(trace["parent_id"].isna()) & (trace["class"].astype(str) == "browse")]
    assert browse["key"].notna().all() and browse["bytes_in"].notna().all()  # the arrival table's data


def _command_paths(parser, prefix=()):
    """Every command path of the parser: (), ("simulate",), ("forecast", "backtest"), ..."""
    import argparse

    yield prefix
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _command_paths(sub, (*prefix, name))


def test_every_help_page_prints(capsys):
    from twin.cli import build_parser, main

    paths = list(_command_paths(build_parser()))
    assert ("simulate",) in paths and ("forecast", "backtest") in paths and len(paths) > 10
    for path in paths:
        with pytest.raises(SystemExit) as done:
            main([*path, "--help"])
        out = capsys.readouterr()
        assert done.value.code == 0, (path, out.err)
        assert "usage: twin" in out.out and "Traceback" not in out.err, path
    out = twin("--help")  # and through the real entry point
    assert out.returncode == 0 and "Traceback" not in out.stderr and "simulate" in out.stdout, out.stderr


def run_cli(capsys, *argv):
    """``twin ARGV`` in this process: (exit status, stderr)."""
    from twin.cli import main

    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:  # argparse refusing a flag
        code = e.code
    return code, capsys.readouterr().err


PROFILE_CSV = "timestamp,requests_per_s\n2026-03-02T08:00:00Z,10\n2026-03-02T09:00:00Z,12\n2026-03-02T10:00:00Z,11\n"


@pytest.mark.parametrize("args,message", [
    (["synth", "{profile}", "--model", SHOP, "--start", "yesterday", "-o", "{tmp}/w.parquet"],
     "argument --start: expected a time with its zone, e.g. 2026-03-02T08:00:00Z"),
    (["synth", "{profile}", "--model", SHOP, "--start", "2026-03-02T09:00", "-o", "{tmp}/w.parquet"],
     "argument --start: expected a time with its zone"),
    (["synth", "{profile}", "--model", SHOP, "--end", "NaT", "-o", "{tmp}/w.parquet"],
     "argument --end: expected a time with its zone"),
    (["synth", "{profile}", "--model", SHOP, "--start", "2026-03-02T10:00Z", "--end", "2026-03-02T09:00Z", "-o",
      "{tmp}/w.parquet"], "--start 2026-03-02 10:00:00+00:00 is not before --end"),
    (["synth", "{profile}", "--model", SHOP, "--quantile", "nan", "-o", "{tmp}/w.parquet"],
     "argument --quantile: expected a fraction between 0 and 1, got 'nan'"),
    (["loadshape", "{profile}", "--k6", "{tmp}/s.js", "--quantile", "inf"],
     "argument --quantile: expected a fraction between 0 and 1, got 'inf'"),
    (["synth", "{tmp}", "--model", SHOP, "-o", "{tmp}/w.parquet"], "PROFILE {tmp}: is a folder, expected a file"),
    (["loadshape", "{tmp}/none.csv", "--k6", "{tmp}/s.js"], "PROFILE {tmp}/none.csv: no such file"),
    (["loadshape", "{profile}", "--k6", "{tmp}"], "--k6 {tmp}: is a folder, expected a file name"),
    (["simulate", MM1, "--workload", "{tmp}"], "--workload {tmp}: is a folder, expected a file"),
    (["calibrate", "{tmp}", "--model", SHOP, "-o", "{tmp}/m.yaml"], "TRACE {tmp}: is a folder, expected a file"),
    (["calibrate", "{profile}", "--model", "{tmp}/none.yaml", "-o", "{tmp}/m.yaml", "--name", "<x>"],
     "--name <x>: expected a model name of at most 64 ASCII letters"),
    (["synth", "{profile}", "--model", SHOP, "--bursts-from", "{tmp}/trace.csv", "-o", "{tmp}/w.parquet"],
     "--bursts-from {tmp}/trace.csv: 3 request(s) over 0 s; fitting 3 burst states (--burst-states) needs at least 30"),
    (["simulate", MM1, "--out", "/proc/nope"], "--out /proc/nope: cannot write here"),
    (["simulate", MM1, "--out", "{profile}/run"], "--out {profile}/run: cannot write here ({profile} is not a folder)"),
    (["simulate", MM1, "--out", "{profile}"], "--out {profile}: exists and is not a folder"),
    (["simulate", MM1, "--trace", "{profile}/t.parquet"], "--trace {profile}/t.parquet: cannot write here"),
    (["run", ROOT / "experiments" / "quickstart.yaml", "--out", "{profile}/run"],
     "--out {profile}/run: cannot write here ({profile} is not a folder)"),
])
def test_bad_paths_and_values_are_refused_before_any_work(tmp_path, capsys, monkeypatch, args, message):
    import twin.calibrate.calibrate  # noqa: F401  (imported first: they bind run_replications on import,
    import twin.pipeline
    import twin.sim
    import twin.validation.suite  # noqa: F401  and must keep the real one after this test)

    def work(*a, **k):
        raise AssertionError("the work began before its inputs and outputs were checked")

    monkeypatch.setattr(twin.sim, "run_replications", work)
    monkeypatch.setattr(twin.pipeline, "run", work)
    profile = tmp_path / "profile.csv"
    profile.write_text(PROFILE_CSV)
    (tmp_path / "trace.csv").write_text("timestamp,class,latency_s\n" + "2026-03-02T08:00:00Z,browse,0.1\n" * 3)
    before = sorted(tmp_path.rglob("*"))

    def fill(text):
        return str(text).replace("{profile}", str(profile)).replace("{tmp}", str(tmp_path))
    code, err = run_cli(capsys, *map(fill, args))
    assert code == 2 and "Traceback" not in err, err
    assert fill(message) in err
    assert len([line for line in err.splitlines() if "error" in line]) == 1, err
    assert sorted(tmp_path.rglob("*")) == before  # nothing half-written


def test_a_file_the_system_refuses_is_one_line(capsys, monkeypatch):
    import twin.validation

    def refuse(*a, **k):
        raise PermissionError(13, "Permission denied", "/srv/models/mm1.yaml")

    monkeypatch.setattr(twin.validation, "run_suite", refuse)
    code, err = run_cli(capsys, "validate", "--json")
    assert code == 2 and err == "twin validate: error: /srv/models/mm1.yaml: Permission denied\n"


def test_loadshape_scripts_hold_no_code_from_a_file_name(tmp_path, capsys):
    import ast

    names = ['p\nrequire("child_process").execSync("touch OWNED");.csv',
             'p""" + __import__("os").system("touch OWNED") + """\\N.csv', "p\u2028OWNED();.csv"]
    for i, name in enumerate(names):
        (tmp_path / name).write_text(PROFILE_CSV)
        k6, locust = tmp_path / f"s{i}.js", tmp_path / f"s{i}.py"
        code, err = run_cli(capsys, "loadshape", tmp_path / name, "--k6", k6, "--locust", locust)
        assert code == 0, err
        script = k6.read_text()
        assert script.startswith("// k6 scenario from ") and "OWNED" in script.split("\n")[0]
        assert "OWNED" not in "\n".join(script.splitlines()[1:]) and "\u2028" not in script
        tree = ast.parse(locust.read_text())  # valid Python, the name inside its docstring only
        assert "OWNED" in ast.get_docstring(tree)
        assert not [n for n in ast.walk(tree) if isinstance(n, ast.Constant) and "OWNED" in str(n.value)
                    and n is not tree.body[0].value]


def test_synth_model_file_holds_no_yaml_from_a_file_name(tmp_path, capsys):
    from twin.spec import load_model

    (tmp_path / "profile.csv").write_text(PROFILE_CSV)
    scenario = tmp_path / "s\ndescription: injected\nx.yaml"
    scenario.write_text("- {kind: slow_dependency, service: payments, factor: 3}\n")
    code, err = run_cli(capsys, "synth", tmp_path / "profile.csv", "--model", SHOP, "--scenario", scenario,
                        "-o", tmp_path / "w.parquet")
    assert code == 0, err
    edited = tmp_path / "w.model.yaml"
    assert edited.read_text().split("\n", 1)[0].startswith("# ")
    assert load_model(edited).description == load_model(SHOP).description


def test_paths_with_brackets_are_printed_as_written(tmp_path, capsys):
    # rich reads [...] as markup: an unmatched closing tag used to stop the command after its work
    (tmp_path / "profile.csv").write_text(PROFILE_CSV)
    out = tmp_path / "w[/x].parquet"
    code, err = run_cli(capsys, "synth", tmp_path / "profile.csv", "--model", SHOP, "-o", out)
    assert code == 0 and out.is_file(), err
    run = tmp_path / "r[/x][bold]"
    code, err = run_cli(capsys, "simulate", MM1, "--duration", 20, "--warmup", 2, "--replications", 1, "--jobs", 1,
                        "--out", run)
    assert code == 0 and (run / "report.html").is_file(), err
    models = tmp_path / "m[/x]"
    models.mkdir(parents=True)
    (models / "quick.yaml").write_text(FAST_MM1.replace("duration_s: 3000", "duration_s: 200").replace(
        "replications: 12", "replications: 2"))
    code, err = run_cli(capsys, "validate", models, "--jobs", 1)
    assert code in (0, 1), err
