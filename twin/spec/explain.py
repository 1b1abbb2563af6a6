"""Turn pydantic validation errors into one-line problems a user can act on.

Each problem names the dotted path in the model (``services.api.workers``) and what was
expected, with the value that was found; an unknown field lists the allowed names and
suggests the nearest one.
"""

from __future__ import annotations

import difflib
import types
from typing import Annotated, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from .errors import Problem

_PLAIN = {
    "int_parsing": "expected an integer",
    "int_type": "expected an integer",
    "int_from_float": "expected a whole number",
    "float_parsing": "expected a number",
    "float_type": "expected a number",
    "finite_number": "expected a finite number",
    "bool_parsing": "expected true or false",
    "bool_type": "expected true or false",
    "string_type": "expected a text value",
    "dict_type": "expected a mapping (name: value)",
    "model_type": "expected a mapping of fields",
    "model_attributes_type": "expected a mapping of fields",
    "list_type": "expected a list",
    "missing": "missing required field",
    "string_pattern_mismatch": "expected a name of ASCII letters, digits, '_' or '-' that starts with a letter or '_'",
}
_BOUNDS = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}


def _unwrap(ann):
    """Strip Annotated and Optional; a union of several records comes back as a list."""
    while True:
        origin = get_origin(ann)
        if origin is Annotated:
            ann = get_args(ann)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in get_args(ann) if a is not type(None)]
            if len(args) == 1:
                ann = args[0]
            else:
                return args
        else:
            return ann


def _tagged_member(members, tag):
    for m in members:
        if isinstance(m, type) and issubclass(m, BaseModel) and "dist" in m.model_fields:
            if tag in get_args(m.model_fields["dist"].annotation):
                return m
    return None


def walk(root: type[BaseModel], loc: tuple) -> tuple[list[str], object]:
    """Follow a pydantic error location through the schema.

    Returns the user-facing path (union tags dropped) and the annotation found at its end.
    """
    ann: object = root
    path: list[str] = []
    for elem in loc:
        if elem == "[key]":  # pydantic's marker for a problem with a mapping's key itself
            continue
        ann = _unwrap(ann)
        if isinstance(ann, list):  # a discriminated union: this element is the tag
            member = _tagged_member(ann, elem)
            if member is not None:
                ann = member
                continue
            ann = None
        path.append(str(elem))
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            field = ann.model_fields.get(str(elem)) or next(
                (f for f in ann.model_fields.values() if f.alias == elem), None)
            ann = field.annotation if field is not None else None
        elif get_origin(ann) is dict:
            ann = get_args(ann)[1]
        elif get_origin(ann) is list:
            ann = get_args(ann)[0]
        else:
            ann = None
    return path, _unwrap(ann) if ann is not None else None


def field_names(model: type[BaseModel]) -> list[str]:
    return [f.alias or name for name, f in model.model_fields.items()]


def _describe(error: dict, root: type[BaseModel]) -> Problem:
    loc = tuple(error["loc"])
    kind = error["type"]
    ctx = error.get("ctx") or {}
    got = error.get("input")
    path, _ = walk(root, loc)
    if kind == "extra_forbidden":
        _, parent = walk(root, loc[:-1])
        unknown = str(loc[-1])
        msg = f"unknown field {unknown!r}"
        if isinstance(parent, type) and issubclass(parent, BaseModel):
            names = field_names(parent)
            near = difflib.get_close_matches(unknown, names, n=1)
            msg += f" (did you mean {near[0]!r}?)" if near else ""
            msg += f"; expected one of: {', '.join(names)}"
        return Problem(".".join(path), msg)
    if kind == "union_tag_invalid":
        return Problem(".".join(path + ["dist"]),
                       f"unknown distribution {ctx.get('tag')!r}; expected one of: "
                       f"{ctx.get('expected_tags', '').replace(chr(39), '')}")
    if kind == "union_tag_not_found":
        return Problem(".".join(path), "expected a distribution with a 'dist' field (exponential, deterministic, "
                                       "uniform, lognormal, gamma, weibull, empirical) or a plain number")
    if kind in ("model_type", "model_attributes_type") and isinstance(walk(root, loc)[1], list):
        msg = "expected a distribution (a mapping with 'dist') or a plain number"
    elif kind in _BOUNDS:
        bound = next(iter(ctx.values()), "?")
        bound = f"{bound:g}" if isinstance(bound, (int, float)) else bound
        msg = f"expected a number {_BOUNDS[kind]} {bound}"
    elif kind == "literal_error":
        msg = f"expected one of {ctx.get('expected', '')}"
    elif kind in ("too_short", "too_long"):
        size = ctx.get("min_length" if kind == "too_short" else "max_length")
        msg = f"expected {'at least' if kind == 'too_short' else 'at most'} {size} {'entry' if size == 1 else 'entries'}"
    elif kind == "value_error":
        msg = str(ctx.get("error", error["msg"]))
        # a check across fields names the field it blames first ("warmup: expected ..."): point there
        head, sep, rest = msg.partition(": ")
        node = walk(root, loc)[1]
        if sep and isinstance(node, type) and issubclass(node, BaseModel) and head in field_names(node):
            path, msg = [*path, head], rest
    elif kind in _PLAIN:
        msg = _PLAIN[kind]
    else:
        msg = error["msg"].replace("Input should be", "expected")
    if kind != "missing" and not isinstance(got, (dict, list)) and "got " not in msg:
        msg += f", got {got!r}"
    return Problem(".".join(path), msg)


def problems_from(err: ValidationError, root: type[BaseModel]) -> list[Problem]:
    return [_describe(e, root) for e in err.errors(include_url=False)]
