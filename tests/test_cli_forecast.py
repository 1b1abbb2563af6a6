"""`twin forecast` as a user meets it: backtest tables, a load profile, and clear errors."""

import json

import numpy as np
import pandas as pd
import pytest

from tests.test_cli import twin
from tests.test_pipeline import experiment  # noqa: F401  (a fixture)


@pytest.fixture
def series(tmp_path):
    idx = pd.date_range("2026-03-02", periods=24 * 21, freq="h")
    rng = np.random.default_rng(0)
    y = 50 + 20 * np.sin(2 * np.pi * np.arange(len(idx)) / 24) + 8 * (idx.dayofweek >= 5) + rng.normal(0, 2, len(idx))
    path = tmp_path / "load.csv"
    pd.DataFrame({"timestamp": idx.strftime("%Y-%m-%d %H:%M:%S"), "value": y.round(2)}).drop(index=[100, 101]).to_csv(
        path, index=False)
    return path


def test_backtest_prints_scores_selection_and_writes_a_report(series, tmp_path):
    out = twin("forecast", "backtest", series, "--time-zone", "UTC", "--models",
               "seasonal_naive_daily,seasonal_naive_weekly,mstl", "--windows", 4, "--out", tmp_path / "bt")
    assert out.returncode == 0, out.stderr
    assert "2 missing step(s)" in out.stdout  # the repair is stated
    assert "mstl" in out.stdout and "selected on the first 2 windows" in out.stdout
    doc = json.loads((tmp_path / "bt" / "summary.json").read_text())
    assert {r["forecaster"] for r in doc["summary"]} == {"seasonal_naive_daily", "seasonal_naive_weekly", "mstl"}
    assert doc["selection"]["chosen"] in {"seasonal_naive_daily", "seasonal_naive_weekly", "mstl"}
    assert (tmp_path / "bt" / "report.html").read_text().count("data:image/png;base64,") == 2


def test_predict_writes_a_load_profile(series, tmp_path):
    out = twin("forecast", "predict", series, "--time-zone", "UTC", "--horizon", "12h", "-o", tmp_path / "p.csv")
    assert out.returncode == 0, out.stderr
    p = pd.read_csv(tmp_path / "p.csv")
    assert len(p) == 12 and {"timestamp", "requests_per_s", "requests_per_s_q0.1", "requests_per_s_q0.9"} <= set(p)
    assert (p["requests_per_s_q0.1"] <= p["requests_per_s"]).all() and (p["requests_per_s"] <= p["requests_per_s_q0.9"]).all()


def test_fit_then_predict(series, tmp_path):
    out = twin("forecast", "fit", series, "--time-zone", "UTC", "--model", "seasonal_naive_daily", "-o",
               tmp_path / "m.npz")
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "m.npz").read_bytes()[:4] == b"PK\x03\x04"  # an archive of arrays and JSON, no pickle
    out = twin("forecast", "predict", series, "--time-zone", "UTC", "--fitted", tmp_path / "m.npz", "-o",
               tmp_path / "p.parquet")
    assert out.returncode == 0, out.stderr
    assert len(pd.read_parquet(tmp_path / "p.parquet")) == 24


def test_a_saved_mstl_forecasts_from_the_end_of_its_history_only(series, tmp_path, capsys):
    from twin.cli import main

    early = tmp_path / "early.csv"
    early.write_text("".join(series.read_text().splitlines(keepends=True)[:-24]))
    assert main(["forecast", "fit", str(early), "--time-zone", "UTC", "--model", "mstl", "--calibration-windows", "2",
                 "-o", str(tmp_path / "m.npz")]) == 0
    assert main(["forecast", "predict", str(early), "--time-zone", "UTC", "--fitted", str(tmp_path / "m.npz"),
                 "-o", str(tmp_path / "early.csv.out.csv")]) == 0
    capsys.readouterr()
    assert main(["forecast", "predict", str(series), "--time-zone", "UTC", "--fitted", str(tmp_path / "m.npz"),
                 "-o", str(tmp_path / "p.csv")]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'm.npz'}: mstl forecasts from the end of its training data (480 steps), not after 504" in err
    assert "fit it again on this history" in err and not (tmp_path / "p.csv").exists()


def test_auto_on_a_history_too_short_for_its_backtest_names_the_setting(experiment, tmp_path, capsys):
    from twin.cli import main

    path = experiment()
    path.write_text(path.read_text().replace("model: seasonal_naive_daily", "model: auto"))
    short = path.parent / "load.csv"  # the experiment's history, cut to 30 hours
    short.write_text("".join(short.read_text().splitlines(keepends=True)[:31]))
    assert main(["forecast", "predict", str(short), "--time-zone", "UTC", "-o", str(tmp_path / "p.csv")]) == 2
    err = capsys.readouterr().err
    assert "twin forecast: error: --model: auto chooses by a backtest, and history of 30 steps is too short" in err
    assert err.rstrip().endswith("name a model, or use fewer --calibration-windows or a shorter --horizon"), err
    assert main(["run", str(path), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert f"{path}:6: forecast.model: auto chooses by a backtest, and history of 30 steps" in err, err
    assert "use fewer forecast.calibration_windows or a shorter forecast.horizon" in err


def test_predict_refuses_a_fitted_file_that_is_not_a_saved_model(series, tmp_path, capsys):
    import pickle

    from twin.cli import main

    bad = {"m.pkl": pickle.dumps({"fitted": object()}), "noise.npz": np.random.default_rng(1).bytes(999),
           "half.npz": None}
    main(["forecast", "fit", str(series), "--time-zone", "UTC", "--model", "seasonal_naive_daily",
          "--calibration-windows", "2", "-o", str(tmp_path / "good.npz")])
    bad["half.npz"] = (tmp_path / "good.npz").read_bytes()[:500]
    for name, data in bad.items():
        (tmp_path / name).write_bytes(data)
        capsys.readouterr()
        status = main(["forecast", "predict", str(series), "--time-zone", "UTC", "--fitted", str(tmp_path / name),
                       "-o", str(tmp_path / "p.csv")])
        err = capsys.readouterr().err
        assert status == 2 and f"{tmp_path / name}: not a forecast model written by" in err, err
        assert len(err.strip().splitlines()) == 1 and not (tmp_path / "p.csv").exists()


@pytest.mark.parametrize("args,message", [
    (["--models", "prophet"], "unknown model(s) prophet"),
    (["--horizon", "soon"], "--horizon: expected a duration"),
    (["--windows", 400], "too short for 400 windows of 24 steps"),
    (["--windows", 400], "or fewer training steps before the first)"),
])
def test_backtest_bad_input(series, args, message):
    out = twin("forecast", "backtest", series, "--time-zone", "UTC", *map(str, args))
    assert out.returncode == 2 and "Traceback" not in out.stderr and message in out.stderr


def test_bad_series_and_events(tmp_path, series):
    neg = tmp_path / "neg.csv"
    neg.write_text("timestamp,value\n2026-01-01 00:00:00,1\n2026-01-01 01:00:00,-3\n2026-01-01 02:00:00,2\n")
    out = twin("forecast", "backtest", neg, "--time-zone", "UTC")
    assert out.returncode == 2 and "negative" in out.stderr and "Traceback" not in out.stderr
    out = twin("forecast", "backtest", series)
    assert out.returncode == 2 and "pass --time-zone" in out.stderr and "Traceback" not in out.stderr
    events = tmp_path / "events.csv"
    events.write_text("type,start,end\nparty,2026-03-05T00:00:00Z,2026-03-06T00:00:00Z\n")
    out = twin("forecast", "backtest", series, "--time-zone", "UTC", "--events", events)
    assert out.returncode == 2 and "party" in out.stderr and "Traceback" not in out.stderr


def test_predict_into_a_run_folder_with_a_report(series, tmp_path):
    out = twin("forecast", "predict", series, "--time-zone", "UTC", "--model", "mstl", "--horizon", "12h",
               "--out", tmp_path / "run")
    assert out.returncode == 0, out.stderr
    run = tmp_path / "run"
    assert {"profile.parquet", "profile.csv", "profile.json", "report.html", ".twin-run"} <= {p.name for p in run.iterdir()}
    meta = json.loads((run / "profile.json").read_text())
    assert meta["model"] == "mstl" and meta["horizon_steps"] == 12 and meta["recalibration"]["requests_per_s"]
    assert any("2 missing step(s)" in n for n in meta["notes"])
    assert "data:image/png;base64," in (run / "report.html").read_text()
    # a folder that is not a run folder is refused before any work
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    out = twin("forecast", "predict", series, "--time-zone", "UTC", "--out", other)
    assert out.returncode == 2 and "not a twin run folder" in out.stderr
    out = twin("forecast", "predict", series, "--time-zone", "UTC")
    assert out.returncode == 2 and "-o FILE" in out.stderr


def test_predict_auto_says_which_model_and_how_intervals_were_set(series, tmp_path):
    out = twin("forecast", "predict", series, "--time-zone", "UTC", "--horizon", "6h", "--calibration-windows", 3,
               "-o", tmp_path / "p.csv")
    assert out.returncode == 0, out.stderr
    assert "chosen by a backtest over 3 windows" in out.stdout and "intervals recalibrated" in out.stdout


def test_social_posts_are_read_with_their_repairs_and_bad_ones_are_refused(series, tmp_path):
    posts = tmp_path / "posts.csv"
    posts.write_text("timestamp,text\n2026-03-05T10:00:00Z,love the new release\n2026-03-05T10:20:00Z,\n"
                     "2026-03-06T11:00:00Z,site is down again\n")
    out = twin("forecast", "backtest", series, "--time-zone", "UTC", "--social", posts, "--models", "mstl",
               "--windows", 2)
    assert out.returncode == 0, out.stderr
    assert "empty text" in out.stdout  # the dropped post is stated
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,text\nyesterday,hello\n")
    out = twin("forecast", "backtest", series, "--time-zone", "UTC", "--social", bad, "--models", "mstl")
    assert out.returncode == 2 and "bad.csv" in out.stderr and "Traceback" not in out.stderr


def test_events_make_the_covariate_blind_models_event_aware(series, tmp_path):
    events = tmp_path / "events.yaml"
    events.write_text("events:\n  - {type: campaign, start: 2026-03-10T00:00:00Z, end: 2026-03-11T00:00:00Z}\n")
    out = twin("forecast", "backtest", series, "--time-zone", "UTC", "--events", events, "--models",
               "seasonal_naive_daily,mstl", "--windows", 2)
    assert out.returncode == 0, out.stderr
    assert "mstl+events" in out.stdout and "inside / outside events" in out.stdout


def test_predict_from_a_trace_gives_the_whole_load_profile(tmp_path):
    rng = np.random.default_rng(1)
    t = np.sort(rng.uniform(0, 4 * 86400, 40_000)) + 1.7e9
    pd.DataFrame({"timestamp": pd.to_datetime(t, unit="s", utc=True).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                  "class": np.where(rng.random(len(t)) < 0.2, "checkout", "browse"),
                  "latency_s": 0.05, "bytes_out": rng.integers(100, 5000, len(t)),
                  "session": rng.integers(0, 300, len(t)).astype(str)}).to_csv(tmp_path / "trace.csv", index=False)
    out = twin("forecast", "predict", tmp_path / "trace.csv", "--trace-step", "1h", "--model", "seasonal_naive_daily",
               "--horizon", "6h", "-o", tmp_path / "p.csv")
    assert out.returncode == 0, out.stderr
    p = pd.read_csv(tmp_path / "p.csv")
    for col in ("requests_per_s", "data_volume_bytes_per_s", "user_concurrency", "requests_per_s_q0.9",
                "mix_browse", "mix_checkout", "burstiness"):
        assert col in p, col
    np.testing.assert_allclose(p["mix_browse"] + p["mix_checkout"], 1.0)
    assert np.all(np.abs(p["requests_per_s"] / (40_000 / (4 * 86400)) - 1) < 0.5)


def test_synth_turns_a_profile_into_a_workload_the_twin_replays(series, tmp_path):
    out = twin("forecast", "predict", series, "--time-zone", "UTC", "--counts", "--model", "seasonal_naive_daily",
               "--horizon", "6h", "-o", tmp_path / "p.csv")
    assert out.returncode == 0, out.stderr
    p = pd.read_csv(tmp_path / "p.csv")
    assert p["requests_per_s"].max() < 1  # about 50 an hour: 0.014 per second
    out = twin("synth", tmp_path / "p.csv", "--model", "models/reference/shop.yaml", "--quantile", 0.9, "-o",
               tmp_path / "w.csv")
    assert out.returncode == 0, out.stderr
    w = pd.read_csv(tmp_path / "w.csv")
    assert {"time_s", "class", "size_bytes", "key", "session"} <= set(w) and (np.diff(w["time_s"]) >= 0).all()
    assert abs(len(w) / (p["requests_per_s_q0.9"].sum() * 3600) - 1) < 0.5
    out = twin("simulate", "models/reference/shop.yaml", "--workload", tmp_path / "w.csv", "--replications", 1)
    assert out.returncode == 0, out.stderr
    out = twin("synth", tmp_path / "p.csv", "--model", "models/reference/shop.yaml", "--quantile", 0.99, "-o",
               tmp_path / "w2.csv")
    assert out.returncode == 2 and "requests_per_s_q0.99" in out.stderr and not (tmp_path / "w2.csv").exists()


def test_synth_with_edge_cases_writes_the_edited_model_beside_the_workload(series, tmp_path):
    out = twin("forecast", "predict", series, "--time-zone", "UTC", "--counts", "--model", "seasonal_naive_daily",
               "--horizon", "6h", "-o", tmp_path / "p.csv")
    assert out.returncode == 0, out.stderr
    (tmp_path / "s.yaml").write_text("scenarios:\n  - {kind: flash_crowd, at: 1h, factor: 4}\n"
                                     "  - {kind: slow_dependency, service: payments, factor: 3}\n")
    out = twin("synth", tmp_path / "p.csv", "--model", "models/reference/shop.yaml", "--scenario",
               tmp_path / "s.yaml", "-o", tmp_path / "w.parquet")
    assert out.returncode == 0, out.stderr
    assert "flash_crowd (load)" in out.stdout and (tmp_path / "w.model.yaml").exists()
    out = twin("simulate", tmp_path / "w.model.yaml", "--workload", tmp_path / "w.parquet", "--replications", 1)
    assert out.returncode == 0, out.stderr
    (tmp_path / "bad.yaml").write_text("- {kind: flash_crowd, at: 1h, factor: 4, colour: red}\n")
    out = twin("synth", tmp_path / "p.csv", "--model", "models/reference/shop.yaml", "--scenario",
               tmp_path / "bad.yaml", "-o", tmp_path / "w3.parquet")
    assert out.returncode == 2 and "scenarios[0].colour: unknown field" in out.stderr
    assert "Traceback" not in out.stderr and not (tmp_path / "w3.parquet").exists()


def test_synth_from_sessions_fitted_on_a_trace(tmp_path):
    rng = np.random.default_rng(3)
    rows = []
    for s in range(400):  # sessions of 1 to 5 requests, 20 s apart
        t0 = 1.7e9 + rng.uniform(0, 4 * 86400)
        for k in range(rng.integers(1, 6)):
            rows.append((t0 + 20 * k, "browse" if k else "search", f"s{s}"))
    t, cls, sess = map(np.array, zip(*sorted(rows)))
    pd.DataFrame({"timestamp": pd.to_datetime(t, unit="s", utc=True).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                  "class": cls, "latency_s": 0.05, "session": sess}).to_csv(tmp_path / "trace.csv", index=False)
    out = twin("forecast", "predict", tmp_path / "trace.csv", "--trace-step", "1h", "--model", "seasonal_naive_daily",
               "--horizon", "3h", "-o", tmp_path / "p.csv")
    assert out.returncode == 0, out.stderr
    out = twin("synth", tmp_path / "p.csv", "--model", "models/reference/shop.yaml", "--sessions-from",
               tmp_path / "trace.csv", "-o", tmp_path / "w.csv")
    assert out.returncode == 0, out.stderr
    assert "graph fitted from 400" in out.stdout
    w = pd.read_csv(tmp_path / "w.csv")
    assert set(w["class"]) <= {"browse", "search"} and (w["session"] >= 0).all()


def test_synth_with_bursts_fitted_on_the_azure_trace(tmp_path):
    idx = pd.date_range("2026-01-01", periods=12, freq="5min", tz="UTC")
    pd.DataFrame({"timestamp": idx, "requests_per_s": np.full(12, 5.0)}).to_csv(tmp_path / "p.csv", index=False)
    out = twin("synth", tmp_path / "p.csv", "--model", "models/validation/mm1.yaml", "--bursts-from",
               "tests/fixtures/traces/azure_llm_conv_5000.csv", "--columns", "timestamp=TIMESTAMP", "--time-zone",
               "UTC", "-o", tmp_path / "w.parquet")
    assert out.returncode == 0, out.stderr
    assert "MMPP from" in out.stdout and "levels" in out.stdout
    w = pd.read_parquet(tmp_path / "w.parquet")
    assert abs(len(w) / (5.0 * 3600) - 1) < 0.1


@pytest.mark.parametrize("old,new,message", [
    ("horizon: 12h", "horizon: 100000d", "tiny.yaml:6: forecast.horizon: 100000d is 2400000 steps of 1 h; at most 336"),
    ("model: seasonal_naive_daily", "model: prophet", "tiny.yaml:6: forecast.model: unknown model(s) prophet"),
])
def test_an_experiment_s_forecast_settings_are_named_with_file_and_line(experiment, tmp_path, capsys, old, new,
                                                                        message):
    from twin.cli import main

    path = experiment()
    path.write_text(path.read_text().replace(old, new))
    assert main(["run", str(path), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert f"twin run: error: {path.parent}/{message}" in err and "--horizon" not in err and "--model" not in err, err
    if "model" in old:  # refused before any work
        assert not (tmp_path / "run").exists()
