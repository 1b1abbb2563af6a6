"""Secrets never at rest or on screen: one redaction for every database URL twin prints or writes,
no storage URL in a study, files written atomically with the mode open() gives, reading commands
that do not create a database, and a PostgreSQL-backed run whose password is found nowhere."""

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pandas as pd
import pytest

from tests.conftest import mmc_model
from tests.test_cli import twin
from tests.test_pipeline import EXPERIMENT, MODEL
from twin.dburl import cannot_open, redact
from twin.rundir import atomic_directory, write_atomically, write_frame_atomically

PASSWORD = "Tw1n@S3cr%9t:x"  # an @, a %, a :
ENCODED = quote(PASSWORD, safe="")


@pytest.mark.parametrize("url,shown", [
    ("postgresql://twin:secret@db:5432/x", "postgresql://twin:***@db:5432/x"),
    (f"postgresql://twin:{ENCODED}@db:5432/x", "postgresql://twin:***@db:5432/x"),
    ("postgresql://twin:p@ss@db/x", "postgresql://twin:***@db/x"),  # an @ left unescaped
    ("postgresql://twin:pa/ss@db/x", "postgresql://twin:***@db/x"),  # a / cuts a parser's host short
    ("postgresql://twin@db/x?password=secret&sslmode=require", "postgresql://twin@db/x?password=***&sslmode=require"),
    ("postgresql://db/x?sslmode=require&PASSWORD=p%40ss", "postgresql://db/x?sslmode=require&PASSWORD=***"),
    ("postgresql://twin@db:5432/x", "postgresql://twin@db:5432/x"),
    ("sqlite:////tmp/a:b@c.db", "sqlite:////tmp/a:b@c.db"),  # a file, not credentials
])
def test_redact_hides_every_form_of_password(url, shown):
    assert redact(url) == shown


def test_a_drivers_message_is_scrubbed_of_the_password():
    url = f"postgresql://twin:{ENCODED}@db/x"
    err = cannot_open("storage", url, RuntimeError(f"auth failed for {PASSWORD} and {ENCODED}"))
    assert PASSWORD not in str(err) and ENCODED not in str(err)
    assert "storage postgresql://twin:***@db/x: cannot open it" in str(err)


def test_a_study_carries_no_storage_url_and_its_name_no_password(tmp_path):
    import optuna

    from twin.spec import load_model
    from twin.spec.experiment import Sweep
    from twin.sweep.study import TASK_ATTR, create_study, task_digest
    from twin.sweep.task import SweepTask, window_profile

    path = tmp_path / "mmc.yaml"
    path.write_text(mmc_model(1, 8))
    model = load_model(path).model_dump(by_alias=True)
    profile = window_profile({"requests_per_s": 16.0}, 600)

    def task(storage):
        settings = Sweep(minimize=["latency_mean_s"], trials=2, window=600, warmup=60, storage=storage).model_dump()
        return SweepTask(study="s", model=model, profile=profile, settings=settings, seed=1)

    one, other = task(f"postgresql://twin:{ENCODED}@db/x"), task("postgresql://twin:another@db/x")
    assert "storage" not in one.settings and PASSWORD not in one.to_json() and ENCODED not in one.to_json()
    assert task_digest(one) == task_digest(other)
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    create_study(url, one)
    stored = optuna.load_study(study_name="s", storage=url).user_attrs[TASK_ATTR]
    assert "storage" not in stored and ENCODED not in stored and "Tw1n" not in stored


def test_atomic_files_have_the_mode_open_gives(tmp_path):
    frame = pd.DataFrame({"x": [1, 2]})
    for umask in (0o022, 0o027):
        old = os.umask(umask)
        try:
            plain = tmp_path / f"plain-{umask:o}"
            plain.write_text("x")
            write_atomically(tmp_path / f"atomic-{umask:o}.json", "{}")
            write_frame_atomically(tmp_path / f"atomic-{umask:o}.parquet", frame)
            with atomic_directory(tmp_path / f"folder-{umask:o}") as folder:
                (folder / "x").write_text("x")
        finally:
            os.umask(old)
        want = 0o666 & ~umask
        assert plain.stat().st_mode & 0o777 == want
        for suffix in ("json", "parquet"):
            assert (tmp_path / f"atomic-{umask:o}.{suffix}").stat().st_mode & 0o777 == want, suffix
        assert (tmp_path / f"folder-{umask:o}").stat().st_mode & 0o777 == 0o777 & ~umask  # as mkdir gives


@pytest.mark.parametrize("args,flag", [
    (("policy", "show", "--db"), "--db"),
    (("policy", "export", "-o", "out.json", "--db"), "--db"),
    (("policy", "query", "--model-file", "mmc.yaml", "--rate", "3", "--db"), "--db"),
    (("sweep", "--storage"), "--storage"),
])
def test_reading_commands_refuse_a_missing_sqlite_database(tmp_path, args, flag):
    (tmp_path / "mmc.yaml").write_text(mmc_model())
    url = "sqlite:///typo.db"
    r = twin(*args, url, cwd=tmp_path)
    assert r.returncode == 2, r.stdout + r.stderr
    assert f"{flag} {url}: no such database (typo.db does not exist)" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "typo.db").exists() and not (tmp_path / "out.json").exists()


# -- a PostgreSQL-backed run, on a private server with a password -----------------------------------

def _need(reason: str):
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (needed in CI)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def private_postgres():
    """A PostgreSQL server of its own (initdb into a temporary folder, a superuser password,
    scram-sha-256 on 127.0.0.1, a free port), stopped and removed afterwards whatever happens."""
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if not initdb or not pg_ctl:
        _need("initdb/pg_ctl not on PATH: no private PostgreSQL for the password test")
    user = None
    if os.geteuid() == 0:  # initdb refuses root: run the server as the postgres account
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            _need("running as root and no postgres account to run a private PostgreSQL server as")
    base = Path(tempfile.mkdtemp(prefix="twin-pg-"))
    data = base / "data"
    started = False
    try:
        (base / "pw").write_text(PASSWORD + "\n")
        if user is not None:
            for p in (base, base / "pw"):
                os.chown(p, user.pw_uid, user.pw_gid)
        run_as = {"user": user.pw_uid, "cwd": base} if user is not None else {"cwd": base}
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        subprocess.run([initdb, "-D", data, "-U", "postgres", f"--pwfile={base / 'pw'}", "--auth=scram-sha-256",
                        "--no-sync", "-E", "UTF8"], check=True, capture_output=True, timeout=120, **run_as)
        (base / "pw").unlink()
        started = True  # from here a server may be running, even if the start below fails or times out
        subprocess.run([pg_ctl, "-D", data, "-l", base / "log", "-w", "-t", "60", "-o",
                        f"-p {port} -k {base} -c listen_addresses=127.0.0.1", "start"],
                       check=True, capture_output=True, timeout=120, **run_as)
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=port, user="postgres", password=PASSWORD, dbname="postgres",
                             autocommit=True, connect_timeout=10) as conn:
            conn.execute("CREATE DATABASE twin")
        yield {"url": f"postgresql://postgres:{ENCODED}@127.0.0.1:{port}/twin", "port": port}
    finally:
        if started:
            subprocess.run([pg_ctl, "-D", data, "-m", "immediate", "-w", "stop"], capture_output=True, timeout=120,
                           **run_as)
        shutil.rmtree(base, ignore_errors=True)


def _rows(port) -> list[str]:
    """Every row of every table of every schema of the run's database, as text."""
    import psycopg

    with psycopg.connect(host="127.0.0.1", port=port, user="postgres", password=PASSWORD, dbname="twin",
                         connect_timeout=10) as conn:
        tables = conn.execute("SELECT table_schema, table_name FROM information_schema.tables "
                              "WHERE table_type = 'BASE TABLE'").fetchall()
        out = []
        for schema, table in tables:
            out += [r[0] for r in conn.execute(f'SELECT t::text FROM "{schema}"."{table}" t')]
    assert any("tiny.regime-" in r for r in out)  # the studies are there
    return out


def test_a_postgresql_run_leaves_its_password_nowhere(private_postgres, tmp_path):
    url = private_postgres["url"]
    (tmp_path / "mmc.yaml").write_text(MODEL)
    idx = pd.date_range("2026-03-02", periods=24 * 14, freq="h")
    rate = np.where((idx.hour >= 8) & (idx.hour < 20), 14.0, 5.0) + np.random.default_rng(0).normal(0, 0.3, len(idx))
    pd.DataFrame({"timestamp": idx.strftime("%Y-%m-%d %H:%M:%S"), "value": rate.round(3)}).to_csv(
        tmp_path / "load.csv", index=False)
    text = EXPERIMENT.format(trials=3).replace("  finalists: 2", f"  finalists: 1\n  storage: '{url}'")
    text = text.replace("replications: 3", "replications: 2").replace("max: 2", "max: 1")
    (tmp_path / "tiny.yaml").write_text(text + f"policy: {{db: '{url}'}}\n")
    out = tmp_path / "run"
    runs = [twin("run", tmp_path / "tiny.yaml", "--out", out),
            twin("policy", "show", "--db", url), twin("sweep", "--storage", url)]
    for r in runs:
        assert r.returncode == 0, r.stderr
    secrets = [PASSWORD, ENCODED, ENCODED.lower()]
    for r in runs:
        for s in secrets:
            assert s not in r.stdout and s not in r.stderr
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) > 5
    for p in files:
        data = p.read_bytes()
        for s in secrets:
            assert s.encode() not in data, p
    rows = _rows(private_postgres["port"])
    for s in secrets:
        assert not [r for r in rows if s in r]
    assert "postgres:***@127.0.0.1" in runs[1].stdout + runs[2].stdout
    wrong = twin("sweep", "--storage", url.replace(ENCODED, quote("Wr0ng@pw%", safe="")))
    assert wrong.returncode == 2 and "storage postgresql://postgres:***@127.0.0.1" in wrong.stderr
    assert "cannot open it" in wrong.stderr and "Wr0ng" not in wrong.stderr and "Traceback" not in wrong.stderr
