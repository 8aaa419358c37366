"""Model-wide units and their conversions.

Meridian's engine runs in **seconds** (simulated time), sizes in **bytes** and rates in
**bit/s**. Scenario files may write durations with a unit suffix; they are converted once,
at the boundary, by :func:`parse_duration`. Names carry their unit everywhere else
(``rtt_ms``, ``bandwidth_gbps``, ``duration_h``).

Memory sizes on the command line (``--max-memory 8GB``) are read by :func:`parse_size`.

Public: ``parse_duration``, ``format_duration``, ``parse_size``, ``SECOND``, ``MINUTE``,
``HOUR``, ``DAY``, ``MS``.
"""
from __future__ import annotations

import math
import re

__all__ = ["MS", "SECOND", "MINUTE", "HOUR", "DAY", "parse_duration", "format_duration", "parse_size"]

MS = 1e-3
SECOND = 1.0
MINUTE = 60.0
HOUR = 3600.0
DAY = 86400.0

_UNITS = {"ms": MS, "s": SECOND, "m": MINUTE, "h": HOUR, "d": DAY}
_DURATION_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(ms|s|m|h|d)\s*$")
DURATION_RULE = "must be a duration such as 500ms, 90s, 15m, 24h, 7d or a number of seconds"
_SIZES = {"": 1, "b": 1, "k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9, "t": 1e12, "tb": 1e12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_SIZE_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([A-Za-z]*)\s*$")
SIZE_RULE = "must be a size such as 512MB, 8GB, 1.5GiB or a number of bytes"


def parse_duration(value: object) -> float:
    """Return ``value`` in seconds: a number (seconds) or a string like ``15m``.

    Raises ``ValueError`` with :data:`DURATION_RULE` for anything else, including booleans,
    negative numbers and non-finite values.
    """
    if isinstance(value, bool):
        raise ValueError(DURATION_RULE)
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        match = _DURATION_RE.match(value)
        if match is None:
            raise ValueError(DURATION_RULE)
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    else:
        raise ValueError(DURATION_RULE)
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(DURATION_RULE)
    return seconds


def parse_size(text: str) -> float:
    """Bytes in ``text``: ``8GB``, ``512 MB``, ``1.5GiB`` (powers of 1000, or of 1024 with
    ``i``) or a plain number of bytes; raise ``ValueError`` with :data:`SIZE_RULE` for
    anything else, zero included."""
    match = _SIZE_RE.match(text)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _SIZES:
        raise ValueError(SIZE_RULE)
    size = float(match.group(1)) * _SIZES[unit]
    if not 0 < size < math.inf:
        raise ValueError(SIZE_RULE)
    return size


def format_duration(seconds: float) -> str:
    """Render seconds with the largest unit that divides them exactly (``3600 -> '1h'``)."""
    for suffix in ("d", "h", "m", "s"):
        count = seconds / _UNITS[suffix]
        if count >= 1 and count == int(count):
            return f"{int(count)}{suffix}"
    return f"{seconds * 1000:g}ms"
