"""``twin validate``: simulate every model of a folder and hold it to its closed form.

Each model's checks come from ``theory.predict``.  A check passes when the analytic value lies
inside the replications' confidence interval *and* that interval is tight (its half-width is
at most ``max_rel_half_width`` of the value), so that a vague simulation cannot pass.  The
intervals are Bonferroni-adjusted over all checks of the suite: the chance that any correct
check fails by bad luck is at most ``1 - level``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..sim import Estimate, PoissonArrivals, run_replications, summarize
from ..spec import SystemModel, TwinError, load_model
from .theory import Check, NotAnalytic, predict


@dataclass(frozen=True)
class Outcome:
    model: str
    check: Check
    estimate: Estimate
    passed: bool
    reason: str


def collect(directory: str | Path) -> list[tuple[Path, SystemModel, list[Check]]]:
    """Every model in ``directory`` with the checks theory gives for it."""
    directory = Path(directory)
    files = sorted(directory.glob("*.yaml"))
    if not files:
        raise TwinError(f"{directory}: no validation models (*.yaml) found")
    out = []
    for path in files:
        model = load_model(path)
        try:
            checks = predict(model, model.defaults.rate_per_s)
        except NotAnalytic as e:
            raise TwinError(f"{path}: not a validation model: theory has no exact answer ({e})") from None
        out.append((path, model, checks))
    return out


def judge(check: Check, est: Estimate, max_rel_half_width: float) -> tuple[bool, str]:
    scale = abs(check.expected) or 1.0
    if not est.n:
        return False, "no estimate"
    if est.half_width > max_rel_half_width * scale:
        return False, f"interval too wide (±{est.half_width / scale:.1%} > ±{max_rel_half_width:.1%})"
    if not est.contains(check.expected):
        return False, "analytic value outside the interval"
    return True, ""


def check_level(models: list[tuple[Path, SystemModel, list[Check]]], level: float = 0.95) -> float:
    """Per-check confidence level that keeps the whole suite's false-failure chance at ``1 - level``."""
    return 1 - (1 - level) / sum(len(checks) for _, _, checks in models)


def run_model(model: SystemModel, checks: list[Check], *, level: float, seed: int = 0,
              replications: int | None = None, jobs: int = 1, max_rel_half_width: float = 0.075,
              progress: Callable[[str, int, int], None] | None = None) -> list[Outcome]:
    """Simulate one validation model with its defaults and judge each of its checks."""
    d = model.defaults
    n = replications or d.replications
    results = run_replications(
        model, PoissonArrivals(d.rate_per_s, d.duration_s), replications=n, seed=seed, jobs=jobs,
        progress=(lambda k: progress(model.name, k, n)) if progress else None)
    summary = summarize(results, level=level)
    outcomes = []
    for check in checks:
        est = summary.metrics[check.metric]
        ok, reason = judge(check, est, max_rel_half_width)
        outcomes.append(Outcome(model.name, check, est, ok, reason))
    return outcomes


def run_suite(directory: str | Path, *, seed: int = 0, replications: int | None = None, jobs: int = 1,
              level: float = 0.95, max_rel_half_width: float = 0.075,
              progress: Callable[[str, int, int], None] | None = None) -> list[Outcome]:
    """Run every model of the suite; ``progress(model, done, total)`` is called after each replication."""
    models = collect(directory)
    per_check = check_level(models, level)
    outcomes = []
    for _, model, checks in models:
        outcomes += run_model(model, checks, level=per_check, seed=seed, replications=replications, jobs=jobs,
                              max_rel_half_width=max_rel_half_width, progress=progress)
    return outcomes
