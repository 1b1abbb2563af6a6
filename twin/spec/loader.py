"""The one way a model comes in: YAML file -> validated ``SystemModel``, with overrides.

Problems are reported with the file, the line and the dotted path::

    models/shop.yaml:14: services.api.workers: expected a number >= 1, got -3

``--set PATH=VALUE`` changes any field, ``--param NAME=VALUE`` any tunable; both are validated
exactly like the file.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .errors import Problem, SpecError, TwinError
from .explain import problems_from
from .model import SystemModel
from .safeyaml import MAX_BYTES, parse_yaml
from .tunables import get_path


def read_yaml(path: str | Path) -> tuple[Any, dict[str, int]]:
    """Parse a YAML file; return the data and the line of every dotted path in it."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_BYTES:
            raise TwinError(f"{path}: {path.stat().st_size} bytes; the most a YAML file may hold is {MAX_BYTES}")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TwinError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise TwinError(f"{path}: is a directory, expected a YAML file") from None
    except UnicodeDecodeError as e:
        raise TwinError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    data, node = parse_yaml(text, str(path))
    lines: dict[str, int] = {}
    if node is not None:
        _index_lines(node, "", lines, path)
    return data, lines


def _index_lines(node, prefix: str, lines: dict[str, int], path: Path) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            name = str(key.value)
            line = key.start_mark.line + 1
            if name in seen and name != "<<":
                raise SpecError([Problem(f"{prefix}{name}", f"duplicate key (first on line {seen[name]})",
                                         str(path), line)])
            seen[name] = line
            lines[f"{prefix}{name}"] = line
            _index_lines(value, f"{prefix}{name}.", lines, path)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[f"{prefix}{i}"] = item.start_mark.line + 1
            _index_lines(item, f"{prefix}{i}.", lines, path)


def validate_model(data: Any, *, source: str | None = None, lines: dict[str, int] | None = None) -> SystemModel:
    """``SystemModel`` from a plain dict, or a ``SpecError`` located in ``source``."""
    if not isinstance(data, Mapping):
        got = "an empty document" if data is None else f"a {type(data).__name__}"
        raise SpecError([Problem("", f"expected a mapping with name, classes and services, got {got}", source)])
    try:
        return SystemModel.model_validate(data)
    except ValidationError as e:
        raise SpecError(problems_from(e, SystemModel)).located(source, lines) from None
    except SpecError as e:
        raise e.located(source, lines) from None


def load_model(path: str | Path, *, sets: Iterable[str] = (), params: Mapping[str, Any] | None = None) -> SystemModel:
    """Read, validate and override a model file.

    >>> m = load_model("models/validation/mm1.yaml", sets=["services.server.workers=2"])
    >>> m.services["server"].workers
    2
    """
    data, lines = read_yaml(path)
    model = validate_model(data, source=str(path), lines=lines)
    sets = list(sets)
    if sets:
        model = apply_overrides(model, sets)
    if params:
        model = apply_params(model, params)
    return model


def set_path(data: dict, path: str, value: Any, *, source: str) -> dict:
    """A copy of ``data`` (a full model dump) with ``value`` at the dotted ``path``."""
    parts = path.replace("[", ".").replace("]", "").strip(".").split(".")
    out = copy.deepcopy(data)
    node: Any = out
    for depth, part in enumerate(parts):
        here = ".".join(parts[:depth])
        last = depth == len(parts) - 1
        if isinstance(node, dict):
            if part not in node and last and _is_named_map(parts[:depth]):
                node[part] = value  # a new entry of a user-named map (a link, a pool, a class...)
                break
            if part not in node:
                known = list(node)
                near = difflib.get_close_matches(part, known, n=1)
                hint = f" (did you mean {near[0]!r}?)" if near else ""
                raise SpecError([Problem(here, f"has no entry {part!r}{hint}; known: {', '.join(known) or 'none'}",
                                         source)])
            if last:
                node[part] = value
            else:
                node = node[part]
        elif isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise SpecError([Problem(here, f"expected an index below {len(node)}, got {part!r}", source)])
            if last:
                node[int(part)] = value
            else:
                node = node[int(part)]
        else:
            what = "not set" if node is None else f"a single value ({node!r})"
            raise SpecError([Problem(here, f"is {what}; set the whole block, e.g. --set '{here}={{...}}'", source)])
    return out


def _is_named_map(parts: list[str]) -> bool:
    """Whether the schema at ``parts`` is a mapping of user-chosen names (not a record of fields)."""
    from typing import get_origin

    from .explain import walk

    _, ann = walk(SystemModel, tuple(parts))
    return get_origin(ann) is dict


def apply_overrides(model: SystemModel, sets: Iterable[str], *, source: str = "--set") -> SystemModel:
    """Apply ``PATH=VALUE`` overrides (VALUE is read as YAML) and validate the result."""
    data = model.model_dump(by_alias=True)
    for item in sets:
        path, sep, text = item.partition("=")
        if not sep or not path.strip():
            raise SpecError([Problem("", f"expected PATH=VALUE, got {item!r}", source)])
        try:
            value, _ = parse_yaml(text, source)
        except TwinError:
            shown = text if len(text) <= 60 else text[:57] + "..."
            problem = Problem(path.strip(), f"expected a YAML value after '=', got {shown!r}", source)
            raise SpecError([problem]) from None
        data = set_path(data, path.strip(), value, source=source)
    return validate_model(data, source=source)


def apply_params(model: SystemModel, params: Mapping[str, Any], *, source: str = "--param") -> SystemModel:
    """Set tunables by name: each value is checked against its domain, then written to its targets."""
    data = model.model_dump(by_alias=True)
    for name, raw in params.items():
        tunable = model.tunables.get(name)
        if tunable is None:
            known = ", ".join(model.tunables) or "none: the model declares no tunables"
            near = difflib.get_close_matches(name, list(model.tunables), n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise SpecError([Problem(name, f"unknown tunable{hint}; known: {known}", source)])
        try:
            value = tunable.coerce(raw)
        except ValueError as e:
            raise SpecError([Problem(name, str(e), source)]) from None
        for target in tunable.targets:
            data = set_path(data, target, value, source=source)
    return validate_model(data, source=source)


def parse_assignments(items: Iterable[str], *, source: str) -> dict[str, str]:
    """``["a=1", "b=x"]`` -> ``{"a": "1", "b": "x"}``, for ``--param`` flags."""
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise SpecError([Problem("", f"expected NAME=VALUE, got {item!r}", source)])
        out[name.strip()] = value.strip()
    return out


def current_params(model: SystemModel) -> dict[str, Any]:
    """The value each tunable has in ``model`` (read from its first target)."""
    data = model.model_dump(by_alias=True)
    return {name: get_path(data, t.targets[0]) for name, t in model.tunables.items()}
