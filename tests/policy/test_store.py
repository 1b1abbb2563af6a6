"""The policy database: migrations, transactional writes, versions, on SQLite and PostgreSQL."""

import uuid

import pytest
import sqlalchemy as sa

from twin.policy.store import PolicyStore, RunRecord
from twin.spec import TwinError


def record(store, regime="regime-1", version_params=None, experiment="exp", model="shop"):
    params = version_params or {"workers": 8, "data_structure": "hash"}
    return store.record(model=model, experiment=experiment, regime=regime, load={"requests_per_s": 120.0},
                        vector={"requests_per_s": 6.9}, params=params, confidence=0.8,
                        runs=[RunRecord(params, {"latency_p99_s": {"mean": 0.2, "ci_low": 0.18, "ci_high": 0.22}},
                                        [0, 1, 2], "exp.regime-1", 4),
                              RunRecord({"workers": 4, "data_structure": "list"}, {"latency_p99_s": {"mean": 0.9}},
                                        [0, 1, 2], "exp.regime-1", 7)],
                        constraints={"latency_p99_s": 0.25})


def check_store(url):
    with PolicyStore(url) as store:
        assert store.schema_version() == "0003"
        first = record(store)
        assert first.constraints == {"latency_p99_s": 0.25}
        assert first.version == 1 and first.params == {"workers": 8, "data_structure": "hash"}
        assert first.metrics["latency_p99_s"]["mean"] == 0.2
        second = record(store, version_params={"workers": 10, "data_structure": "hash"})
        assert second.version == 2
        latest = store.policies(model="shop")
        assert [p.version for p in latest] == [2] and latest[0].params["workers"] == 10
        assert len(store.policies(model="shop", latest=False)) == 2
        assert len(store.runs(model="shop")) == 4
    with PolicyStore(url) as again:  # reopening finds the schema current and the rows there
        assert len(again.policies(model="shop", latest=False)) == 2
        assert again.policies(model="shop")[0].constraints == {"latency_p99_s": 0.25}  # kept with the policy


def test_sqlite_store(tmp_path):
    check_store(f"sqlite:///{tmp_path / 'policy.db'}")


def test_postgres_store(postgres_url):
    schema = f"twin_test_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    try:
        check_store(postgres_url + f"?options=-csearch_path%3D{schema}")
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()


def test_a_failed_write_leaves_nothing(tmp_path):
    url = f"sqlite:///{tmp_path / 'policy.db'}"
    with PolicyStore(url) as store:
        with pytest.raises(sa.exc.StatementError):
            store.record(model="shop", experiment="e", regime="r", load={}, vector={}, params={"a": 1},
                         confidence=0.5, runs=[RunRecord({"a": object()}, {}, [])])  # cannot be stored as JSON
        assert store.policies() == [] and store.runs() == []


def test_a_bad_url_is_named(tmp_path):
    with pytest.raises(TwinError, match="expected a database URL"):
        PolicyStore("policy.db")
    with pytest.raises(TwinError, match="cannot open it"):
        PolicyStore("postgresql://twin@127.0.0.1:1/nowhere")
