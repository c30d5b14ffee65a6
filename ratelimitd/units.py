"""Durations and rates as written in tier tables: ``"250ms"``, ``"1m"``, ``"60/1m"``.

Durations are integer nanoseconds everywhere inside the daemon, so that window
arithmetic is exact: a grant at ``t`` and one at ``t + window`` are exactly one
window apart, with no float rounding deciding which side of the edge they fall.
"""

from __future__ import annotations

import re
from decimal import Decimal

from ratelimitd_client.amounts import Amount, to_amount

__all__ = ["NS_PER_SECOND", "UNITS", "parse_duration", "format_duration", "parse_rate", "seconds", "to_ns"]

NS_PER_SECOND = 1_000_000_000

UNITS = {
    "ms": 1_000_000,
    "s": NS_PER_SECOND,
    "m": 60 * NS_PER_SECOND,
    "h": 3600 * NS_PER_SECOND,
    "d": 86400 * NS_PER_SECOND,
}

_DURATION = re.compile(r"^\s*(\d+)\s*(ms|s|m|h|d)\s*$")
_RATE = re.compile(r"^\s*([0-9][0-9_,]*(?:\.[0-9]+)?)\s*/\s*(.+)$")


def parse_duration(text: str) -> int:
    """Return the nanoseconds of ``text`` (an integer count and a unit: ms, s, m, h, d).

    Raises ``ValueError`` with the accepted forms when ``text`` is not one of them.
    """
    if not isinstance(text, str):
        raise ValueError(f"a duration must be a string like \"1m\" or \"250ms\", not {text!r}")
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration: use an integer and one of ms, s, m, h, d (\"1m\", \"250ms\")")
    return int(match.group(1)) * UNITS[match.group(2)]


def format_duration(ns: int) -> str:
    """Return the shortest exact tier-table spelling of ``ns`` (``60_000_000_000`` -> ``"1m"``)."""
    for unit in ("d", "h", "m", "s", "ms"):
        size = UNITS[unit]
        if ns and ns % size == 0:
            return f"{ns // size}{unit}"
    if ns == 0:
        return "0ms"
    return f"{ns}ns"


def parse_rate(text: str) -> tuple[Amount, int]:
    """Return ``(limit, window_ns)`` for ``"N/DURATION"`` (``"60/1m"``; ``"1/s"`` means ``"1/1s"``).

    ``N`` may use ``_`` or ``,`` as thousands separators and may be a decimal.
    Raises ``ValueError`` naming what is wrong.
    """
    if not isinstance(text, str):
        raise ValueError(f"a rate must be a string like \"60/1m\", not {text!r}")
    match = _RATE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a rate: write \"N/DURATION\", e.g. \"60/1m\" or \"5/1s\"")
    limit = to_amount(match.group(1).replace("_", "").replace(",", ""), "rate limit")
    if limit <= 0:
        raise ValueError(f"{text!r}: the limit must be positive")
    window_text = match.group(2).strip()
    if window_text in UNITS:
        window_text = "1" + window_text
    window = parse_duration(window_text)
    if window <= 0:
        raise ValueError(f"{text!r}: the window must be longer than zero")
    return limit, window


def seconds(ns: int) -> float:
    """Return ``ns`` as float seconds, for humans and the wire (never for sums)."""
    return ns / NS_PER_SECOND


def to_ns(value: float | int | Decimal) -> int:
    """Return float seconds from the wire as integer nanoseconds, rounded up.

    Rounding up keeps a deadline or a hold from ending a nanosecond early.
    """
    ns = value * NS_PER_SECOND
    whole = int(ns)
    return whole + 1 if whole < ns else whole
