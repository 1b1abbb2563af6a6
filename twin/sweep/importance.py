"""What moves the decision: the share of each target's variance that each swept parameter explains.

Targets are the objectives and each constraint separately (a constraint by its relative excess
over its bound, an affine function of its metric, so the same shares as the metric's).  For
each target and parameter, the share is a first-order variance decomposition (the main effect of
a functional ANOVA): the trials are grouped by the parameter's value (numeric values with more
than ``MAX_GROUPS`` distinct values are cut at quantiles into that many groups), and the share is
the variance of the group means over the target's total variance, adjusted for the number of
groups (adjusted R², clipped to [0, 1]).  Shares are fractions of that target's own variance, so
a knob that moves 1% of the cost reads 0.01 on the cost, whatever its rank; what no single
parameter explains (interactions, and noise across the window) is ``1 - sum``, at most.

The trials used are the completed ones, one per distinct parameter set (reuses and repeats are
the same point once): pruned trials have no whole-window values.  Fewer than ``MIN_TRIALS`` such
trials, or a target that does not vary, give no shares for it.
"""

from __future__ import annotations

import math

import numpy as np
from optuna.trial import TrialState

MAX_GROUPS = 6
MIN_TRIALS = 4


def main_effect_share(x: list, y: np.ndarray) -> float:
    """The share of ``y``'s variance explained by grouping on ``x`` (adjusted, in [0, 1])."""
    n = len(y)
    distinct = sorted(set(x), key=repr)
    if len(distinct) <= MAX_GROUPS or not all(isinstance(v, (int, float)) for v in x):
        index = {v: i for i, v in enumerate(distinct)}
        groups = np.array([index[v] for v in x])
    else:  # quantile groups of the ranks (ties kept together by ranking on the value)
        ranks = np.argsort(np.argsort(np.asarray(x, dtype=float), kind="stable"), kind="stable")
        groups = (ranks * MAX_GROUPS) // n
    k = len(set(groups.tolist()))
    total = float(np.sum((y - y.mean()) ** 2))
    if k < 2 or total <= 0:
        return 0.0
    within = sum(float(np.sum((y[groups == g] - y[groups == g].mean()) ** 2)) for g in set(groups.tolist()))
    if n - k <= 0:
        share = 1.0 - within / total
    else:
        share = 1.0 - (within / (n - k)) / (total / (n - 1))
    return float(min(1.0, max(0.0, share)))


def variance_shares(trials: list, targets: dict[str, callable], params: list[str]) -> dict[str, dict[str, float]]:
    """{target: {parameter: share}} over ``trials`` (frozen trials), each target read by its
    function; parameters in decreasing share."""
    out = {}
    for name, read in targets.items():
        rows = [(t, read(t)) for t in trials]
        rows = [(t, v) for t, v in rows if v is not None and math.isfinite(v)]
        if len(rows) < MIN_TRIALS:
            continue
        y = np.array([v for _, v in rows], dtype=float)
        shares = {p: main_effect_share([t.params[p] for t, _ in rows], y) for p in params
                  if all(p in t.params for t, _ in rows)}
        if float(np.ptp(y)) > 0 and shares:
            out[name] = dict(sorted(shares.items(), key=lambda kv: -kv[1]))
    return out


def study_importance(study, objectives: list[tuple[str, str]], constraints: dict) -> dict[str, dict[str, float]]:
    """The shares of a study's completed trials, per objective and per constraint (by metric name)."""
    from .sampling import is_reuse

    seen, trials = set(), []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        key = repr(sorted(t.params.items()))
        if not is_reuse(t) and key not in seen:
            seen.add(key)
            trials.append(t)
    targets = {m: (lambda t, i=i: t.values[i]) for i, (m, _) in enumerate(objectives)}
    for i, m in enumerate(constraints):
        def excess(t, i=i):
            c = t.user_attrs.get("constraints", [])
            return c[i] if i < len(c) else None
        targets.setdefault(m, excess)
    params = sorted({p for t in trials for p in t.params})
    return variance_shares(trials, targets, params)


__all__ = ["main_effect_share", "study_importance", "variance_shares"]
