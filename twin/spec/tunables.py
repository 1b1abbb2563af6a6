"""Tunable parameters: named, typed domains bound to model fields.

A tunable is what a sweep may change and what a policy sets::

    tunables:
      memory_size:          # cache capacity; bytes inferred from the target's name
        type: int
        low: 64MiB
        high: 4GiB
        log: true
        targets: [caches.products.capacity_bytes]
        monotone: increasing  # more load never needs less memory: blends respect it
      data_structure:
        type: categorical
        choices: [hash, tree, list]
        targets: [caches.products.data_structure]

A value is checked against the domain (bounds, integrality, choices) and then written to every
target path; the model is validated again, so a value is held to the same rules as the file.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from .errors import Problem
from .units import format_bytes, parse_bytes, parse_seconds

Choice = str | bool | int | float


def _as_list(value):
    return [value] if isinstance(value, str) else value


def infer_unit(path: str) -> str | None:
    """``caches.x.capacity_bytes`` -> 'bytes'; ``services.y.timeout_s`` -> 'seconds'."""
    field = path.rsplit(".", 1)[-1]
    if field.endswith("_bytes"):
        return "bytes"
    if field.endswith("_s"):
        return "seconds"
    return None


def _parse_any(value):
    """A bound with a unit but no unit declared: a byte size if it reads as one, else a duration."""
    if not isinstance(value, str):
        return value
    for parse in (parse_bytes, parse_seconds):
        try:
            return parse(value)
        except ValueError:
            pass
    return value


class Tunable(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["int", "float", "categorical"]
    targets: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1), BeforeValidator(_as_list)]
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: Annotated[float, Field(gt=0)] | None = None
    choices: list[Choice] | None = None
    unit: Literal["bytes", "seconds"] | None = None
    #: capacity-like (instances, workers, memory): the best value never falls as the load rises
    #: (``increasing``) or never rises (``decreasing``); the policy engine's blends respect it
    monotone: Literal["increasing", "decreasing"] | None = None
    description: str = ""

    @model_validator(mode="before")
    @classmethod
    def _parse_units(cls, data):
        if isinstance(data, dict) and data.get("type") in ("int", "float"):
            targets = _as_list(data.get("targets") or [])
            first = targets[0] if isinstance(targets, list) and targets else None
            unit = data.get("unit") or (infer_unit(first) if isinstance(first, str) else None)
            data = dict(data)
            if unit and "unit" not in data:
                data["unit"] = unit
            parse = parse_bytes if unit == "bytes" else parse_seconds if unit == "seconds" else _parse_any
            for bound in ("low", "high", "step"):
                if bound in data and data[bound] is not None:
                    data[bound] = parse(data[bound])
        return data

    @model_validator(mode="after")
    def _domain(self):
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("expected a non-empty list of 'choices' for a categorical tunable")
            if len(set(map(repr, self.choices))) != len(self.choices):
                raise ValueError(f"expected distinct choices, got {self.choices}")
            if self.low is not None or self.high is not None or self.log or self.step is not None:
                raise ValueError("a categorical tunable takes 'choices', not low/high/log/step")
            if self.monotone is not None:
                raise ValueError("'monotone' is for int and float tunables; a categorical one has no order")
            return self
        if self.choices is not None:
            raise ValueError(f"an {self.type} tunable takes low/high, not 'choices'")
        if self.low is None or self.high is None:
            raise ValueError(f"expected both 'low' and 'high' for an {self.type} tunable")
        if not (math.isfinite(self.low) and math.isfinite(self.high)) or self.low >= self.high:
            raise ValueError(f"expected finite low < high, got low={self.low:g}, high={self.high:g}")
        if self.log and self.low <= 0:
            raise ValueError(f"expected low > 0 for a log-scale tunable, got {self.low:g}")
        if self.log and self.step is not None:
            raise ValueError("'step' and 'log' cannot be combined (Optuna's rule too)")
        if self.type == "int" and (self.low != int(self.low) or self.high != int(self.high)):
            raise ValueError(f"expected whole-number bounds for an int tunable, got [{self.low:g}, {self.high:g}]")
        if self.type == "int" and self.step is not None and self.step != int(self.step):
            raise ValueError(f"expected a whole-number step for an int tunable, got {self.step:g}")
        return self

    def describe_domain(self) -> str:
        if self.type == "categorical":
            return "one of " + ", ".join(map(str, self.choices))
        kind = "an integer" if self.type == "int" else "a number"
        scale = " (log scale)" if self.log else ""
        return f"{kind} in [{self.format(self.low)}, {self.format(self.high)}]{scale}"

    def format(self, value) -> str:
        if self.unit == "bytes" and isinstance(value, (int, float)) and value == int(value):
            return format_bytes(int(value))
        if isinstance(value, float) and self.type == "int":
            value = int(value)
        return f"{value:g}" if isinstance(value, float) else str(value)

    def coerce(self, value: Any):
        """Parse (units, strings from the command line) and check a value; ValueError if outside."""
        if self.type == "categorical":
            for choice in self.choices:
                if value == choice or (isinstance(value, str) and str(choice) == value):
                    return choice
            raise ValueError(f"expected {self.describe_domain()}, got {value!r}")
        try:
            if isinstance(value, str):
                value = (parse_bytes if self.unit == "bytes" else parse_seconds)(value)
                if isinstance(value, str):
                    value = float(value)
            if isinstance(value, bool):
                raise ValueError
            number = float(value)
            if not math.isfinite(number):
                raise ValueError
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"expected {self.describe_domain()}, got {value!r}") from None
        if self.type == "int":
            if number != int(number):
                raise ValueError(f"expected {self.describe_domain()}, got {value!r}")
            number = int(number)
        if not (self.low <= number <= self.high):
            raise ValueError(f"expected {self.describe_domain()}, got {self.format(number)}")
        return number


def get_path(data: Any, path: str):
    """The value at a dotted path (``services.api.calls.0.timeout_s``); KeyError if absent."""
    node = data
    for part in path.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise KeyError(part)
    return node


def check_tunables(model) -> list[Problem]:
    """Each target exists, holds a value of the tunable's kind, and that value is in the domain."""
    if not model.tunables:
        return []
    data = model.model_dump(by_alias=True)
    out = []
    for name, t in model.tunables.items():
        for i, target in enumerate(t.targets):
            where = f"tunables.{name}.targets.{i}"
            if target.split(".", 1)[0] == "tunables":
                out.append(Problem(where, "a tunable cannot target another tunable"))
                continue
            try:
                current = get_path(data, target)
            except KeyError:
                out.append(Problem(where, f"expected a dotted path to a field of the model, got {target!r} "
                                          f"(no such field)"))
                continue
            if isinstance(current, (dict, list)):
                out.append(Problem(where, f"expected a path to a single value, got {target!r}, which holds a "
                                          f"{'mapping' if isinstance(current, dict) else 'list'}"))
                continue
            numeric = isinstance(current, (int, float)) and not isinstance(current, bool)
            if t.type in ("int", "float") and not numeric:
                out.append(Problem(where, f"an {t.type} tunable needs a numeric field, but {target} holds {current!r}"))
                continue
            if t.type == "int" and isinstance(current, float) and current != int(current):
                out.append(Problem(where, f"an int tunable needs an integer field, but {target} holds {current!r}"))
                continue
            if current is None:
                continue
            try:
                t.coerce(current)
            except ValueError as e:
                out.append(Problem(f"tunables.{name}", f"the model's current value at {target} is outside the "
                                                        f"domain: {e}"))
    return out
