"""The policy database: load profiles, parameter sets, runs and policies, in SQLAlchemy.

A SQLite file by default, PostgreSQL (or any SQLAlchemy URL) by URL.  Opening a store brings its
schema to the newest version with Alembic (``twin/policy/migrations``, version table
``twin_policy_version``), so an older database is migrated in place.  Every write is one
transaction: a sweep's outcome for a regime (its profile, the candidates' runs, the policy) is
stored whole or not at all.

A policy maps a regime (a load profile) to a parameter set with a version and a confidence; a
new sweep of the same experiment's regime adds a version, and the engine reads the newest.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import JSON, DateTime, Float, ForeignKey, Integer, String, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from ..dburl import cannot_open, database_url
from ..spec import TwinError

MIGRATIONS = Path(__file__).parent / "migrations"


class Base(DeclarativeBase):
    pass


class Profile(Base):
    __tablename__ = "twin_profiles"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    load: Mapped[dict] = mapped_column(JSON)
    vector: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ParameterSet(Base):
    __tablename__ = "twin_parameter_sets"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model: Mapped[str] = mapped_column(String(200))
    digest: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict] = mapped_column(JSON)


class Run(Base):
    __tablename__ = "twin_runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    profile_id: Mapped[int] = mapped_column(ForeignKey("twin_profiles.id"))
    parameter_set_id: Mapped[int] = mapped_column(ForeignKey("twin_parameter_sets.id"))
    source: Mapped[str] = mapped_column(String(20))
    metrics: Mapped[dict] = mapped_column(JSON)
    seeds: Mapped[list] = mapped_column(JSON)
    study: Mapped[str | None] = mapped_column(String(200), nullable=True)
    trial: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PolicyRow(Base):
    __tablename__ = "twin_policies"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model: Mapped[str] = mapped_column(String(200))
    experiment: Mapped[str] = mapped_column(String(200))
    regime: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer)
    profile_id: Mapped[int] = mapped_column(ForeignKey("twin_profiles.id"))
    parameter_set_id: Mapped[int] = mapped_column(ForeignKey("twin_parameter_sets.id"))
    confidence: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    stage_key: Mapped[str | None] = mapped_column(String(64), nullable=True)  # the run stage that stored it
    constraints: Mapped[dict | None] = mapped_column(JSON, nullable=True)  # the sweep's: metric -> upper bound


@dataclass(frozen=True)
class Policy:
    """A stored policy as the engine reads it."""

    id: int
    model: str
    experiment: str
    regime: str
    version: int
    confidence: float
    params: dict
    load: dict
    vector: dict
    metrics: dict  # the chosen parameters' replicated metrics (mean, ci_low, ci_high per metric)
    created_at: datetime
    constraints: dict = field(default_factory=dict)  # the sweep's (metric -> upper bound); {} if not stored

    def to_dict(self) -> dict:
        return {"id": self.id, "model": self.model, "experiment": self.experiment, "regime": self.regime,
                "version": self.version, "confidence": self.confidence, "params": self.params, "load": self.load,
                "vector": self.vector, "metrics": self.metrics, "constraints": self.constraints,
                "created_at": self.created_at.isoformat()}


@dataclass(frozen=True)
class RunRecord:
    params: dict
    metrics: dict
    seeds: list
    study: str | None = None
    trial: int | None = None
    source: str = "twin"


def _digest(params: dict) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()


class PolicyStore:
    """The policy database at ``url``; use as a context manager, or ``close()`` it."""

    def __init__(self, url: str):
        url = database_url(url, "policy db", "runs/x/policy.db")
        self.engine = None
        try:
            self.engine = sa.create_engine(url, pool_pre_ping=True)
            self._migrate()
        except Exception as e:  # the driver's many kinds: the user needs the URL (no password) and the reason
            if self.engine is not None:
                self.engine.dispose()
            raise cannot_open("policy db", url, e) from None

    def _migrate(self) -> None:
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def schema_version(self) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(sa.text("SELECT version_num FROM twin_policy_version")).scalar()

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- writes ------------------------------------------------------------------------------
    def _parameter_set(self, session: Session, model: str, params: dict) -> ParameterSet:
        digest = _digest(params)
        found = session.scalar(select(ParameterSet).where(ParameterSet.model == model, ParameterSet.digest == digest))
        if found is None:
            found = ParameterSet(model=model, digest=digest, params=params)
            session.add(found)
            session.flush()
        return found

    def record(self, *, model: str, experiment: str, regime: str, load: dict, vector: dict, params: dict,
               confidence: float, runs: list[RunRecord], key: str | None = None,
               constraints: dict | None = None) -> Policy:
        """Store a regime's outcome in one transaction: its profile, every run, and the policy
        (the next version for this model, experiment and regime) with the sweep's ``constraints``
        (metric -> upper bound), which the engine checks its answers against.  With ``key`` (the run stage
        storing it), a policy of this regime already stored under the same key is returned as it
        is: a rerun of a stage that was killed after storing adds no second version."""
        for attempt in range(5):
            try:
                if key is not None:
                    found = self._stored(model, experiment, regime, key)
                    if found is not None:
                        return found
                return self._record(model=model, experiment=experiment, regime=regime, load=load, vector=vector,
                                    params=params, confidence=confidence, runs=runs, key=key,
                                    constraints=constraints)
            except sa.exc.IntegrityError:  # another writer took this version (or parameter set) meanwhile
                if attempt == 4:
                    raise TwinError(f"policy db: could not store {experiment}/{regime} after 5 tries; other writers "
                                    f"keep taking its next version") from None

    def _stored(self, model: str, experiment: str, regime: str, key: str) -> Policy | None:
        with Session(self.engine) as session:
            row = session.scalar(select(PolicyRow.id).where(
                PolicyRow.model == model, PolicyRow.experiment == experiment, PolicyRow.regime == regime,
                PolicyRow.stage_key == key).order_by(PolicyRow.version.desc()).limit(1))
        if row is None:
            return None
        return next(p for p in self.policies(model=model, latest=False) if p.id == row)

    def _record(self, *, model, experiment, regime, load, vector, params, confidence, runs, key=None,
                constraints=None) -> Policy:
        now = datetime.now(timezone.utc)
        with Session(self.engine) as session, session.begin():
            profile = Profile(name=f"{experiment}/{regime}", load=load, vector=vector, created_at=now)
            session.add(profile)
            session.flush()
            for r in runs:
                ps = self._parameter_set(session, model, r.params)
                session.add(Run(profile_id=profile.id, parameter_set_id=ps.id, source=r.source, metrics=r.metrics,
                                seeds=r.seeds, study=r.study, trial=r.trial, created_at=now))
            chosen = self._parameter_set(session, model, params)
            version = (session.scalar(select(func.max(PolicyRow.version)).where(
                PolicyRow.model == model, PolicyRow.experiment == experiment, PolicyRow.regime == regime)) or 0) + 1
            row = PolicyRow(model=model, experiment=experiment, regime=regime, version=version, profile_id=profile.id,
                            parameter_set_id=chosen.id, confidence=float(confidence), created_at=now, stage_key=key,
                            constraints=dict(constraints) if constraints else None)
            session.add(row)
            session.flush()
            chosen_metrics = next((r.metrics for r in runs if r.params == params and r.source == "twin"), {})
            return Policy(row.id, model, experiment, regime, version, float(confidence), dict(chosen.params), load,
                          vector, chosen_metrics, now, dict(constraints or {}))

    # -- reads -------------------------------------------------------------------------------
    def policies(self, *, model: str | None = None, latest: bool = True) -> list[Policy]:
        """Stored policies (the newest version of each regime, or all), oldest first."""
        with Session(self.engine) as session:
            q = select(PolicyRow, ParameterSet, Profile).join(
                ParameterSet, PolicyRow.parameter_set_id == ParameterSet.id).join(
                Profile, PolicyRow.profile_id == Profile.id)
            if model is not None:
                q = q.where(PolicyRow.model == model)
            rows = session.execute(q.order_by(PolicyRow.created_at, PolicyRow.id)).all()
            profiles = {pr.id for _, _, pr in rows}
            runs = session.execute(select(Run.profile_id, Run.parameter_set_id, Run.metrics, Run.source).where(
                Run.profile_id.in_(profiles))).all() if profiles else []
        metrics = {(r.profile_id, r.parameter_set_id): r.metrics for r in runs if r.source == "twin"}
        out = [Policy(p.id, p.model, p.experiment, p.regime, p.version, p.confidence, ps.params, pr.load, pr.vector,
                      metrics.get((pr.id, ps.id), {}), _aware(p.created_at), dict(p.constraints or {}))
               for p, ps, pr in rows]
        if latest:
            newest: dict[tuple, Policy] = {}
            for p in out:
                key = (p.model, p.experiment, p.regime)
                if key not in newest or p.version > newest[key].version:
                    newest[key] = p
            out = [p for p in out if newest[(p.model, p.experiment, p.regime)] is p]
        return out

    def runs(self, *, model: str | None = None) -> list[dict]:
        with Session(self.engine) as session:
            q = select(Run, ParameterSet, Profile).join(ParameterSet, Run.parameter_set_id == ParameterSet.id).join(
                Profile, Run.profile_id == Profile.id)
            if model is not None:
                q = q.where(ParameterSet.model == model)
            return [{"profile": pr.name, "params": ps.params, "metrics": r.metrics, "source": r.source,
                     "seeds": r.seeds, "study": r.study, "trial": r.trial, "created_at": _aware(r.created_at).isoformat()}
                    for r, ps, pr in session.execute(q.order_by(Run.id)).all()]


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=timezone.utc)  # SQLite drops the zone


__all__ = ["Policy", "PolicyStore", "RunRecord"]
