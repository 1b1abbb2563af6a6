"""The skeleton: the structure a trace cannot reveal (instances, workers, queues, pools, caches,
timeouts, prices), written as a system model whose measurable parts may be left out.

A service without ``service_time_s`` and a model without ``classes`` are allowed here; they get
placeholders that calibration replaces, and the placeholders are listed so that anything left
unmeasured is reported rather than silently simulated.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..spec import SystemModel, validate_model
from ..spec.loader import read_yaml

PLACEHOLDER_TIME = {"dist": "deterministic", "value": 0.0}


@dataclass(frozen=True)
class Skeleton:
    model: SystemModel
    path: str
    placeholder_services: frozenset[str]  # service times the skeleton did not give
    placeholder_classes: bool  # the skeleton named no request classes


def load_skeleton(path: str | Path) -> Skeleton:
    data, lines = read_yaml(path)
    placeholders: set[str] = set()
    classes_missing = False
    if isinstance(data, dict):
        data = dict(data)
        services = data.get("services")
        if isinstance(services, dict):
            services = {k: dict(v) if isinstance(v, dict) else v for k, v in services.items()}
            for name, svc in services.items():
                if isinstance(svc, dict) and "service_time_s" not in svc:
                    svc["service_time_s"] = PLACEHOLDER_TIME
                    placeholders.add(name)
            data["services"] = services
            if not data.get("classes") and services:
                data["classes"] = {"placeholder": {"share": 1.0, "entry": next(iter(services))}}
                classes_missing = True
    model = validate_model(data, source=str(path), lines=lines)
    return Skeleton(model, str(path), frozenset(placeholders), classes_missing)
