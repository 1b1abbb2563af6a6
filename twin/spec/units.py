"""Parse quantities with units: byte sizes (``512MiB``) and durations (``250ms``).

Plain numbers pass through unchanged, so YAML like ``capacity_bytes: 1048576`` and
``capacity_bytes: 1MiB`` mean the same.
"""

from __future__ import annotations

import math
import re

_BYTE_UNITS = {
    "": 1, "b": 1,
    "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
    "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40,
}
_TIME_UNITS = {"": 1.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9, "min": 60.0, "h": 3600.0,
               "d": 86400.0}
_QUANTITY = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([a-zA-Zµ]*)\s*$")


def _split(text: str, units: dict, what: str) -> float:
    m = _QUANTITY.match(text)
    if not m or m.group(2).lower() not in units:
        names = ", ".join(u for u in units if u)
        raise ValueError(f"expected {what} (a number, or a number with one of the units {names}), got {text!r}")
    value = float(m.group(1)) * units[m.group(2).lower()]
    if not math.isfinite(value):
        raise ValueError(f"expected {what} of finite size, got {text!r}")
    return value


def parse_bytes(value):
    """``'512MiB'`` -> 536870912; numbers pass through. Raises ValueError on anything else."""
    if isinstance(value, bool):
        raise ValueError(f"expected a byte size, got {value!r}")
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        n = _split(value, _BYTE_UNITS, "a byte size")
        if not math.isfinite(n) or n != int(n):
            raise ValueError(f"expected a whole number of bytes, got {value!r}")
        return int(n)
    return value


def parse_seconds(value):
    """``'250ms'`` -> 0.25; numbers pass through. Raises ValueError on anything else."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration, got {value!r}")
    if isinstance(value, str):
        return _split(value, _TIME_UNITS, "a duration in seconds")
    return value


def format_bytes(n: float) -> str:
    """536870912 -> '512MiB' (exact binary units where they fit, else bytes)."""
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size and n % size == 0:
            return f"{int(n // size)}{unit}"
    return f"{int(n)}B" if n == int(n) else f"{n}B"
