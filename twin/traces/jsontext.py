"""JSON text to data, where nesting too deep for the parser is a plain decoding error."""

from __future__ import annotations

import json


def loads(text: str):
    """``json.loads``, but ``[[[[...`` nested past the interpreter's stack raises ``json.JSONDecodeError``
    (a ``ValueError``, as for any other bad JSON) instead of ``RecursionError``."""
    try:
        return json.loads(text)
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply", text, 0) from None
