from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"


@pytest.fixture
def write_yaml(tmp_path):
    """Write a model text to a file and return its path."""
    def write(text: str, name: str = "model.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path
    return write


MINIMAL = """\
name: tiny
classes:
  get: {share: 1.0, entry: api}
services:
  api:
    workers: 2
    service_time_s: {dist: exponential, mean: 0.01}
"""


@pytest.fixture(scope="session")
def postgres_url():
    """The PostgreSQL server of this machine (TWIN_TEST_POSTGRES_URL; default trust auth on
    127.0.0.1:5432, database test).  Where it cannot be reached the test is skipped, except in
    CI (CI=true), where a missing server is a failure."""
    import os

    url = os.environ.get("TWIN_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
    try:
        import psycopg

        psycopg.connect(url, connect_timeout=5).close()
    except Exception as e:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"PostgreSQL at {url} is needed in CI and cannot be reached: {e}")
        pytest.skip(f"no PostgreSQL at {url}: {e}")
    return url


def mmc_model(low: int = 1, high: int = 8, price: float | None = None) -> str:
    """The M/M/c of models/validation/mmc.yaml (16/s, mean service 0.2 s) with its workers as a
    tunable in [low, high]: the sweeps' test model, whose answers Erlang C gives."""
    priced = f"    price_per_instance_hour: {price}\n" if price is not None else ""
    return ("name: mmc_sized\nclasses:\n  job: {share: 1.0, entry: server}\nservices:\n  server:\n    workers: 4\n"
            f"    service_time_s: {{dist: exponential, mean: 0.2}}\n{priced}tunables:\n"
            f"  workers: {{type: int, low: {low}, high: {high}, targets: services.server.workers}}\n")
