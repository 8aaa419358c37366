"""Model-wide units and their conversions.

Meridian's engine runs in **seconds** (simulated time), sizes in **bytes** and rates in
**bit/s**. Scenario files may write durations with a unit suffix; they are converted once,
at the boundary, by :func:`parse_duration`. Names carry their unit everywhere else
(``rtt_ms``, ``bandwidth_gbps``, ``duration_h``).

Public: ``parse_duration``, ``format_duration``, ``SECOND``, ``MINUTE``, ``HOUR``, ``DAY``,
``MS``.
"""
from __future__ import annotations

import math
import re

__all__ = ["MS", "SECOND", "MINUTE", "HOUR", "DAY", "parse_duration", "format_duration"]

MS = 1e-3
SECOND = 1.0
MINUTE = 60.0
HOUR = 3600.0
DAY = 86400.0

_UNITS = {"ms": MS, "s": SECOND, "m": MINUTE, "h": HOUR, "d": DAY}
_DURATION_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(ms|s|m|h|d)\s*$")
DURATION_RULE = "must be a duration such as 500ms, 90s, 15m, 24h, 7d or a number of seconds"


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


def format_duration(seconds: float) -> str:
    """Render seconds with the largest unit that divides them exactly (``3600 -> '1h'``)."""
    for suffix in ("d", "h", "m", "s"):
        count = seconds / _UNITS[suffix]
        if count >= 1 and count == int(count):
            return f"{int(count)}{suffix}"
    return f"{seconds * 1000:g}ms"
