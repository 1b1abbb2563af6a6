"""Proof that the twin is right: closed-form queueing theory and the suite that checks against it."""

from .suite import Outcome, check_level, collect, judge, run_model, run_suite
from .theory import Check, NotAnalytic, che_hit_ratio, erlang_b, erlang_c, mg1, mm1_sojourn_quantile, mmc, mmck, predict

__all__ = ["Outcome", "check_level", "collect", "judge", "run_model", "run_suite", "Check", "NotAnalytic", "che_hit_ratio", "erlang_b", "erlang_c",
           "mg1", "mm1_sojourn_quantile", "mmc", "mmck", "predict"]
