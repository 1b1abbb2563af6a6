"""System models, their schema, the one loader and its errors. Imports nothing else of twin."""

from .distributions import DISTRIBUTION_NAMES, Distribution
from .errors import Problem, SpecError, TwinError
from .loader import apply_overrides, apply_params, current_params, load_model, parse_assignments, validate_model
from .model import Cache, Call, RequestClass, Service, SystemModel, expected_visits
from .tunables import Tunable

__all__ = [
    "DISTRIBUTION_NAMES", "Distribution", "Problem", "SpecError", "TwinError",
    "apply_overrides", "apply_params", "current_params", "load_model", "parse_assignments", "validate_model",
    "Cache", "Call", "RequestClass", "Service", "SystemModel", "expected_visits", "Tunable",
]
