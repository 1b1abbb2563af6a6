"""`twin forecast`, `twin policy` and `twin sweep` with odd paths and wrong values: refused before
any work (exit 2, one line naming the flag or file, no traceback, nothing written), and names
with rich-markup brackets printed as written."""

import contextlib
import sqlite3

import pytest

from tests.conftest import ROOT
from tests.test_cli import SHOP, run_cli

SERIES_CSV = "timestamp,value\n" + "".join(f"2026-03-{2 + h // 24:02d} {h % 24:02d}:00:00,{50 + h % 24 + h * 7 % 5}\n"
                                           for h in range(24 * 5))
TRACE_CSV = "timestamp,class,latency_s\n" + "".join(f"2026-03-{2 + h // 24:02d}T{h % 24:02d}:30:00Z,browse,0.1\n"
                                                    for h in range(24 * 3))
EXPERIMENT = ROOT / "experiments" / "quickstart.yaml"


@pytest.fixture
def files(tmp_path):
    """{series}: a valid history; {empty}: an empty file; {db}: a file standing in for a database;
    {other}: a SQLite database that is not twin's; {full}: a folder that is not a run folder; {run}:
    a run folder holding a history h.csv; {trace}: a request log of three days; {tmp}: the folder."""
    (tmp_path / "series.csv").write_text(SERIES_CSV)
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "trace.csv").write_text(TRACE_CSV)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / ".twin-run").write_text("")
    (tmp_path / "run" / "h.csv").write_text(SERIES_CSV)
    (tmp_path / "x.db").write_text("not empty")
    with contextlib.closing(sqlite3.connect(tmp_path / "other.db")) as db:  # a database, of someone else's
        db.execute("CREATE TABLE accounts (id INTEGER)")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    names = {"series": "series.csv", "empty": "empty.csv", "db": "x.db", "full": "full", "trace": "trace.csv",
             "run": "run", "other": "other.db"}

    def fill(text):
        text = str(text).replace("{tmp.name}", tmp_path.name).replace("{tmp}", str(tmp_path))
        for key, name in names.items():
            text = text.replace("{" + key + "}", str(tmp_path / name))
        return text
    return fill


def no_work(monkeypatch):
    """Every command's work fails the test if it begins."""
    import twin.forecast.run
    import twin.policy.store
    import twin.sweep.study

    def work(*a, **k):
        raise AssertionError("the work began before its inputs and outputs were checked")

    for module, name in ((twin.forecast.run, "load_inputs"), (twin.forecast.run, "run_backtest"),
                         (twin.forecast.run, "fit_chosen"), (twin.policy.store, "PolicyStore"),
                         (twin.sweep.study, "join_or_show")):
        monkeypatch.setattr(module, name, work)


BT = ["forecast", "backtest", "{series}", "--time-zone", "UTC"]
FIT = ["forecast", "fit", "{series}", "--time-zone", "UTC"]
PREDICT = ["forecast", "predict", "{series}", "--time-zone", "UTC"]
QUERY = ["policy", "query", "--db", "sqlite:///{db}", "--model-file", SHOP, "--rate", "10"]


@pytest.mark.parametrize("args,message", [
    (["forecast", "backtest", "{tmp}"], "SERIES {tmp}: is a folder, expected a file"),
    (["forecast", "backtest", "{tmp}/none.csv"], "SERIES {tmp}/none.csv: no such file"),
    (["forecast", "predict", "{empty}", "-o", "{tmp}/p.csv"], "SERIES {empty}: is empty, expected a history"),
    ([*BT, "--events", "{tmp}"], "--events {tmp}: is a folder, expected a file"),
    ([*BT, "--social", "{empty}"], "--social {empty}: is empty"),
    ([*BT, "--out", "/proc/nope"], "--out /proc/nope: cannot write here"),
    ([*BT, "--out", "{series}"], "--out {series}: exists and is not a folder"),
    ([*BT, "--out", "{series}/run"], "--out {series}/run: cannot write here ({series} is not a folder)"),
    ([*BT, "--out", "{full}"], "--out {full}: exists, is not empty and is not a twin run folder"),
    ([*FIT, "-o", "/proc/nope"], "-o /proc/nope: cannot write here"),
    ([*FIT, "-o", "{tmp}"], "-o {tmp}: is a folder, expected a file name"),
    ([*FIT, "-o", "{series}/m.npz"], "-o {series}/m.npz: cannot write here ({series} is not a folder)"),
    ([*PREDICT, "-o", "/proc/nope.csv"], "-o /proc/nope.csv: cannot write here"),
    ([*PREDICT, "-o", "{series}/a/p.csv"], "-o {series}/a/p.csv: cannot write here ({series} is not a folder)"),
    ([*PREDICT, "--out", "{full}"], "--out {full}: exists, is not empty and is not a twin run folder"),
    ([*PREDICT, "-o", "{tmp}/p.csv", "--fitted", "{tmp}/none.npz"], "--fitted {tmp}/none.npz: no such file"),
    ([*PREDICT, "-o", "{tmp}/p.csv", "--fitted", "{empty}"], "--fitted {empty}: is empty"),
    ([*FIT, "-o", "{series}"], "-o {series}: is the input SERIES {series}; writing it would destroy it"),
    ([*PREDICT, "--events", "{tmp}/../{tmp.name}/series.csv", "-o", "{series}"], "-o {series}: is the input SERIES"),
    (["forecast", "predict", "{run}/h.csv", "--time-zone", "UTC", "--out", "{run}"],
     "--out {run}: holds the input SERIES {run}/h.csv"),
    ([*BT, "--windows", "-1"], "argument --windows: expected a whole number >= 1, got '-1'"),
    ([*BT, "--windows", "nan"], "argument --windows: expected a whole number >= 1, got 'nan'"),
    ([*BT, "--seed", "-3"], "argument --seed: expected a whole number >= 0"),
    ([*BT, "--target", "[/x]"], "argument --target: expected a name of letters, digits and _"),
    ([*BT, "--target", ""], "argument --target: expected a name"),
    ([*PREDICT, "--calibration-windows", "0", "-o", "{tmp}/p.csv"], "argument --calibration-windows: expected"),
    (["policy", "show", "--db", "foo://x/y"], "--db 'foo://x/y': unsupported scheme 'foo'"),
    (["policy", "show", "--db", "policy.db"], "--db 'policy.db': expected a database URL"),
    (["policy", "show", "--db", "sqlite:///{tmp}"], "--db sqlite:///{tmp}: {tmp} is a folder, expected a database"),
    (["policy", "show", "--db", "sqlite:///{empty}"], "--db sqlite:///{empty}: {empty} is empty, not a database"),
    (["policy", "export", "--db", "sqlite:///{db}", "-o", "/proc/nope"], "-o /proc/nope: cannot write here"),
    (["policy", "export", "--db", "sqlite:///{db}", "-o", "{tmp}"], "-o {tmp}: is a folder, expected a file name"),
    (["policy", "export", "--db", "sqlite:///{db}", "-o", "{db}"], "-o {db}: is the database --db reads"),
    (["policy", "show", "--db", "sqlite:///{db}", "-o", "{tmp}/p.json"], "-o {tmp}/p.json: only export writes a file"),
    ([*QUERY, "--out", "{tmp}/run"], "--out {tmp}/run: the run folder of a query --sweep; without --sweep nothing"),
    (["policy", "query", "--db", "sqlite:///{db}", "--model-file", "{tmp}", "--rate", "1"],
     "--model-file {tmp}: is a folder, expected a file"),
    (["policy", "query", "--db", "sqlite:///{db}", "--model-file", "{empty}", "--rate", "1"],
     "--model-file {empty}: is empty, expected a system model"),
    ([*QUERY, "--sweep", "{tmp}/none.yaml"], "--sweep {tmp}/none.yaml: no such file"),
    ([*QUERY, "--sweep", EXPERIMENT, "--out", "{series}"], "--out {series}: exists and is not a folder"),
    ([*QUERY, "--mix", "browse=nan"], "--mix browse=nan: expected CLASS=SHARE with a class of shop"),
    ([*QUERY, "--mix", "browse=inf"], "--mix browse=inf: expected CLASS=SHARE"),
    ([*QUERY, "--mix", "browse=-1"], "--mix browse=-1: expected CLASS=SHARE"),
    ([*QUERY, "--mix", "[/x]=1"], "--mix [/x]=1: expected CLASS=SHARE"),
    ([*QUERY, "--mix", "browse=0", "--mix", "search=0"], "--mix: the shares add up to 0"),
    ([*QUERY, "--max-distance", "nan"], "argument --max-distance: expected a number > 0, got 'nan'"),
    ([*QUERY, "--rate", "-1"], "argument --rate: expected a number >= 0, got '-1'"),
    ([*QUERY, "--burstiness", "inf"], "argument --burstiness: expected a number >= 0, got 'inf'"),
    ([*QUERY, "--neighbours", "0"], "argument --neighbours: expected a whole number >= 1"),
    (["sweep", "--storage", "mongodb://h/db"], "--storage 'mongodb://h/db': unsupported scheme 'mongodb'"),
    (["policy", "show", "--db", "sqlite:///{other}"], "--db sqlite:///{other}: {other} is not a twin policy database"),
    (["sweep", "--storage", "sqlite:///{other}"], "--storage sqlite:///{other}: {other} is not a study storage (it has "
                                                  "no studies table)"),
    (["sweep", "--storage", "sqlite:///{empty}"], "--storage sqlite:///{empty}: {empty} is empty, not a database"),
    (["sweep", "--storage", "sqlite:///{tmp}/none.db"], "--storage sqlite:///{tmp}/none.db: no such database"),
    (["sweep", "--storage", "sqlite:///{db}", "--worker-index", "-1"], "argument --worker-index: expected"),
])
def test_bad_paths_and_values_are_refused_before_any_work(files, tmp_path, capsys, monkeypatch, args, message):
    no_work(monkeypatch)
    before = {p: p.stat().st_size for p in tmp_path.rglob("*")}
    code, err = run_cli(capsys, *map(files, args))
    assert code == 2 and "Traceback" not in err, err
    assert files(message) in err, err
    assert len([line for line in err.splitlines() if "error" in line]) == 1, err
    assert {p: p.stat().st_size for p in tmp_path.rglob("*")} == before  # nothing written, no database made


@pytest.mark.parametrize("args,message", [
    (["--horizon", "nan"], "--horizon: expected a duration"),
    (["--horizon", "-1"], "--horizon: -1 is shorter than the history's step"),
    (["--step", "inf"], "--step: expected a duration"),
    (["--windows", str(10**15)], f"too short for {10**15} windows"),
    (["--trace-step", "nan"], "--trace-step: 'nan' must be a positive duration"),
    (["--trace-step=-5min"], "--trace-step: '-5min' must be a positive duration"),
    (["--trace-step", "soon"], "--trace-step: 'soon' is not a duration"),
    # a nanosecond step would ask for petabytes of memory; a millisecond is still too many steps
    (["--trace-step", "1ns"], "--trace-step: 1ns cuts {trace}'s 3.0 days into 255,600,000,000,000 steps, more than"),
    (["--trace-step", "1ms"], "--trace-step: 1ms cuts {trace}'s 3.0 days into 255,600,000 steps"),
])
def test_bad_settings_are_named_before_any_model_is_fitted(files, capsys, monkeypatch, args, message):
    from twin.forecast.baselines import SeasonalNaive

    def fit(*a, **k):
        raise AssertionError("a model was fitted before the settings were checked")

    monkeypatch.setattr(SeasonalNaive, "fit", fit)
    series = ["forecast", "backtest", "{trace}"] if args[0].startswith("--trace-step") else BT
    code, err = run_cli(capsys, *map(files, [*series, "--models", "seasonal_naive_daily", *args]))
    assert code == 2 and "Traceback" not in err and files(message) in err, err
    assert len(err.strip().splitlines()) == 1, err


def test_names_with_brackets_are_printed_as_written(tmp_path, capsys):
    # rich reads [...] as markup: an unmatched closing tag stopped these commands after their work
    import optuna

    from twin.cli import main
    from twin.policy.store import PolicyStore, RunRecord
    from twin.sweep.regimes import load_vector

    def cli(*argv):
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        assert code == 0 and "Traceback" not in err, err
        return out

    (tmp_path / "a[").mkdir()
    series = tmp_path / "a[" / "x]b.csv"  # the path holds [/x]; a step is missing, and the note names the file
    lines = SERIES_CSV.splitlines(keepends=True)
    series.write_text("".join(lines[:-30] + lines[-29:]))
    out = tmp_path / "o[/x]"
    printed = cli("forecast", "backtest", series, "--time-zone", "UTC", "--models", "seasonal_naive_daily",
                  "--windows", "2", "--out", out)
    assert (out / "report.html").is_file() and f"written to {out}/" in printed

    db = f"sqlite:///{tmp_path / 'policy.db'}"
    with PolicyStore(db) as store:
        params = {"workers[/x]": 8, "data_structure": "[/x]"}
        store.record(model="shop", experiment="e[/x]", regime="r[/x]", load={"requests_per_s": 10.0},
                     vector=load_vector({"requests_per_s": 10.0}), params=params, confidence=0.8,
                     runs=[RunRecord(params, {}, [0], "s[/x]", 0)])
    assert "e[/x]" in cli("policy", "show", "--db", db)
    assert "written to" in cli("policy", "export", "--db", db, "-o", tmp_path / "e[/x].json")
    assert (tmp_path / "e[" / "x].json").is_file()
    code = main(["policy", "query", "--db", db, "--model-file", str(SHOP), "--rate", "10"])
    printed = capsys.readouterr().out  # refused (1): these parameters are no tunables of the shop, as the check says
    assert code == 1 and "parameters: workers[/x]=8, data_structure=[/x]" in printed and "e[/x]/r[/x] v1" in printed
    assert "do not fit shop's tunables" in printed

    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    optuna.create_study(study_name="st[/x]", storage=storage).optimize(lambda t: t.suggest_float("a[/x]", 0, 1),
                                                                        n_trials=1)
    printed = cli("sweep", "--storage", storage)
    assert "st[/x]" in printed and "a[/x]=" in printed


def test_a_progress_label_is_text(monkeypatch):
    # twin sweep --worker --study NAME labels its progress bar with the name; on a terminal, rich read it as markup
    import io
    import sys

    from twin.cli import _Progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stderr", Terminal())
    with _Progress(True) as bar:
        bar.update("study st[/x]", 1, 2)
    assert "study st[/x]" in sys.stderr.getvalue()


def test_a_query_without_an_answer_says_why_on_one_line(tmp_path, capsys):
    # the reason is long (the busiest regime, the nearest distance); wrapped at 120 columns it split its words
    from twin.cli import main
    from twin.policy.store import PolicyStore, RunRecord
    from twin.sweep.regimes import load_vector

    db = f"sqlite:///{tmp_path / 'policy.db'}"
    with PolicyStore(db) as store:
        params = {"workers": 8}
        store.record(model="shop", experiment="an-experiment-with-a-long-name", regime="regime-1",
                     load={"requests_per_s": 10.0}, vector=load_vector({"requests_per_s": 10.0}), params=params,
                     confidence=0.8, runs=[RunRecord(params, {}, [0], "s", 0)])
    code = main(["policy", "query", "--db", db, "--model-file", str(SHOP), "--rate", "5000"])
    out = capsys.readouterr().out
    assert code == 1 and out.startswith("no recommendation: ") and len(out.splitlines()) == 1, out
    assert len(out) > 120  # long enough that it used to wrap
