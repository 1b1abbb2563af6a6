"""Small models and fixed arrival tables with answers that can be worked out by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd

from twin.sim import Workload
from twin.spec import validate_model


def model(services: dict, classes: dict | None = None, **extra):
    classes = classes or {"get": {"share": 1.0, "entry": next(iter(services))}}
    return validate_model({"name": "t", "classes": classes, "services": services, **extra})


def fixed(m, times, *, cls=None, sizes=None, keys=None, duration=None) -> Workload:
    n = len(times)
    frame = pd.DataFrame({"time_s": np.asarray(times, dtype=float),
                          "class": cls if cls is not None else [next(iter(m.classes))] * n})
    if sizes is not None:
        frame["size_bytes"] = sizes
    if keys is not None:
        frame["key"] = keys
    return Workload.from_frame(frame, m, duration_s=duration if duration is not None else float(max(times)) + 1)


def det(value):
    return {"dist": "deterministic", "value": value}
