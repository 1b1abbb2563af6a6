"""What every fuzz test shares: deterministic settings, the "clean error or result" check, and
grammar-aware mutation of valid examples (random values, types and keys at random places).

Each test sets its own ``max_examples`` so that the whole suite runs >= 10,000 cases in about two
minutes on one core; ``TWIN_FUZZ_SCALE=10`` multiplies them for a longer local hunt. Runs are
derandomized: CI sees the same cases every time.
"""

from __future__ import annotations

import copy
import os
import traceback

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st

from twin.spec import TwinError

SCALE = float(os.environ.get("TWIN_FUZZ_SCALE", "1"))


def fuzz(examples: int):
    """Settings for one fuzz test: ``examples`` cases, the same ones on every run, no deadline."""
    return settings(max_examples=max(1, int(examples * SCALE)), derandomize=True, database=None, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much], print_blob=False)


def clean(call, *args, **kwargs):
    """``call``'s result, or None when it raised a ``TwinError`` with a one-problem-a-line message.

    Any other exception is a crash: it propagates and the fuzz test fails with the case.
    """
    try:
        result = call(*args, **kwargs)
        event(f"{call.__name__}: read")
        return result
    except TwinError as e:
        event(f"{call.__name__}: {type(e).__name__}")
        text = str(e)
        assert text.strip(), f"{type(e).__name__} with no message"
        assert "Traceback" not in text, text
        return None
    except BaseException as e:  # keep hypothesis' shrinking, but say what escaped
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        e.add_note("escaped as a crash, not a TwinError:\n" + "".join(traceback.format_exception_only(e)))
        raise


UNIT_WORDS = ["10ms", "1.5s", "2min", "1h", "1d", "-5s", "0", "1e400", "1e-400", "5 MiB", "64MiB", "1GiB", "3kb",
              ".5", "1e3ms", "nan", "inf", "-inf", "1_000", "0x10", "µs", "", " ", "1 2", "١٢"]
WORDS = ["lru", "lfu", "fifo", "hash", "tree", "list", "json", "exponential", "lognormal", "gamma", "weibull",
         "pareto", "deterministic", "empirical", "uniform", "round_robin", "random", "least_outstanding", "api",
         "get", "frontend", "server", "browse", "checkout", "dist", "mean", "cv", "value", "samples", "to", "classes"]

scalars = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-3, max_value=100),
    st.sampled_from([0, -1, 2**31, 2**63, 10**30, -(10**30)]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.5, 1e-300, 1e300, -0.0]),
    st.sampled_from(UNIT_WORDS), st.sampled_from(WORDS),
    st.text(max_size=8),
)
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3),
    st.dictionaries(st.one_of(st.sampled_from(WORDS), st.text(max_size=5)), inner, max_size=3)), max_leaves=6)


def paths(doc, prefix=()) -> list[tuple]:
    """Every place in a nested dict/list document, as a tuple of keys and indexes."""
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += paths(v, prefix + (i,))
    return out


def _parent(doc, path):
    node = doc
    for p in path[:-1]:
        node = node[p]
    return node


@st.composite
def mutated(draw, base, *, max_edits: int = 3, keys=WORDS):
    """``base`` (a valid document) with 1..max_edits edits: a value replaced by another of any
    type, an entry deleted, an entry added under a known or random key, or a subtree copied."""
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, max_edits))):
        where = draw(st.sampled_from(paths(doc)))
        action = draw(st.sampled_from(["replace", "replace", "delete", "add", "copy"]))
        if not where:
            if action == "replace" and draw(st.integers(0, 9)) == 0:
                doc = draw(values)
            continue
        parent, key = _parent(doc, where), where[-1]
        if action == "replace":
            parent[key] = draw(values)
        elif action == "delete":
            del parent[key]
        elif action == "add" and isinstance(parent[key], dict):
            parent[key][draw(st.one_of(st.sampled_from(list(keys)), st.text(max_size=6)))] = draw(values)
        elif action == "add" and isinstance(parent[key], list):
            parent[key].append(draw(values))
        elif action == "copy":
            other = draw(st.sampled_from(paths(doc)))
            parent[key] = copy.deepcopy(_parent(doc, other)[other[-1]]) if other else draw(values)
    return doc


YAML_NOISE = list("[]{}:,&*!|>-#'\"?%@`\\\t\n ") + ["\x00", "\ufeff", "\u2028", "<<: ", "&a ", "*a", "!!str ",
                                                    "!!python/object:os.system ", "---\n", "...\n", "\x85"]


@st.composite
def text_mutated(draw, text: str, noise=YAML_NOISE, max_edits: int = 4):
    """``text`` with a few characters or tokens inserted, deleted or lines duplicated."""
    for _ in range(draw(st.integers(1, max_edits))):
        i = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["insert", "insert", "delete", "dup", "cut"]))
        if action == "insert":
            text = text[:i] + draw(st.one_of(st.sampled_from(noise), st.text(max_size=3))) + text[i:]
        elif action == "delete":
            text = text[:i] + text[i + draw(st.integers(1, 8)):]
        elif action == "dup":
            lines = text.splitlines(keepends=True)
            if lines:
                j = draw(st.integers(0, len(lines) - 1))
                text = "".join(lines[:j + 1] + lines[j:])
        else:
            text = text[:i]
    return text
