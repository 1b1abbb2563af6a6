"""YAML parsing with bounded work: hostile files get one clear error, never a hang or a traceback.

Every YAML twin reads (models, skeletons, experiments, scenarios, ``--set`` values) goes through
``parse_yaml``. It refuses, naming the file and line:

- files over ``MAX_BYTES``;
- nesting deeper than ``MAX_DEPTH`` (``[[[[...]]]]`` would otherwise exhaust the stack);
- aliases that refer to their own anchor (a cycle), more than ``MAX_ALIASES`` aliases, or aliases
  whose expansion adds more than ``MAX_ALIAS_EXPANSION`` values ("billion laughs": a few hundred
  bytes that expand to 10^9 values);
- characters YAML forbids (a NUL byte), and values the safe constructor cannot build (a timestamp
  with month 13, an integer of 5,000 digits).

Only the safe constructor is used: no Python object is ever built from a data file.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.events import AliasEvent

from .errors import TwinError

MAX_BYTES = 8 * 2**20
MAX_DEPTH = 64
MAX_ALIASES = 10_000
MAX_ALIAS_EXPANSION = 100_000


class _BoundedLoader(yaml.SafeLoader):
    """A ``SafeLoader`` whose composer counts depth and the values aliases expand to."""

    def __init__(self, text: str):
        super().__init__(text)
        self._depth = 0
        self._aliases = 0
        self._expansion = 0
        self._sizes: dict[int, int] = {}  # id(node) -> values under it, aliases expanded

    def compose_node(self, parent, index):
        if self.check_event(AliasEvent):
            event = self.peek_event()
            node = self.anchors.get(event.anchor)
            if node is not None:
                size = self._sizes.get(id(node))
                if size is None:
                    raise yaml.composer.ComposerError(
                        None, None, f"the alias *{event.anchor} refers to its own anchor (a cycle)", event.start_mark)
                self._aliases += 1
                self._expansion += size
                if self._aliases > MAX_ALIASES:
                    raise yaml.composer.ComposerError(
                        None, None, f"more than {MAX_ALIASES} aliases", event.start_mark)
                if self._expansion > MAX_ALIAS_EXPANSION:
                    raise yaml.composer.ComposerError(
                        None, None, f"aliases expand to more than {MAX_ALIAS_EXPANSION} values; "
                        "write the values out or use fewer aliases", event.start_mark)
            return super().compose_node(parent, index)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise yaml.composer.ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels", mark)
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        self._sizes[id(node)] = 1 + sum(self._sizes.get(id(child), 1) for child in _children(node))
        return node

    def construct_object(self, node, deep=False):
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError, TypeError) as e:  # e.g. 2020-13-45, an int of 5,000 digits
            raise yaml.constructor.ConstructorError(None, None, f"cannot read this value: {e}",
                                                    node.start_mark) from None


class _PlainTimesLoader(_BoundedLoader):
    """The same, but times stay text (for readers that parse them with their zones exact)."""


_PlainTimesLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}


def _children(node) -> list:
    if isinstance(node, yaml.SequenceNode):
        return node.value
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def parse_yaml(text: str, source: str, *, plain_times: bool = False) -> tuple[Any, yaml.Node | None]:
    """The data and the root node of one YAML document, or a ``TwinError`` naming ``source`` and the line.
    ``plain_times``: timestamps stay strings."""
    if len(text) > MAX_BYTES:
        raise TwinError(f"{source}: {len(text)} characters; the most a YAML input may hold is {MAX_BYTES}")
    try:
        loader = (_PlainTimesLoader if plain_times else _BoundedLoader)(text)
    except yaml.reader.ReaderError as e:
        raise TwinError(f"{source}:{_line_at(text, e.position)}: not valid YAML: {_reader_problem(e)}") from None
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.reader.ReaderError as e:
        raise TwinError(f"{source}:{_line_at(text, e.position)}: not valid YAML: {_reader_problem(e)}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        raise TwinError(f"{where}: not valid YAML: {getattr(e, 'problem', None) or str(e).splitlines()[0]}") from None
    except RecursionError:  # a last guard; MAX_DEPTH keeps the composer well inside the stack
        raise TwinError(f"{source}: not valid YAML: nested too deeply") from None
    finally:
        loader.dispose()
    return data, node


def _line_at(text: str, position: int) -> int:
    return text.count("\n", 0, max(position, 0)) + 1


def _reader_problem(e: yaml.reader.ReaderError) -> str:
    char = e.character if isinstance(e.character, int) else ord(e.character)
    return f"the character #x{char:04x} is not allowed in YAML"
