"""Untrusted values in messages: shown briefly, and never by a repr that can itself fail.

A request may carry anything CBOR can encode: an integer of 16,000 bits has no
``repr`` (Python refuses to convert integers over 4,300 digits), a string may be
megabytes. Every message that quotes a value from the wire goes through ``shown``.
"""

from __future__ import annotations

__all__ = ["shown"]


def shown(value: object, width: int = 60) -> str:
    """Return a short, safe rendering of ``value`` for an error message (at most about ``width`` characters)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"<an integer of {value.bit_length()} bits>"
    try:
        text = repr(value)
    except (ValueError, RecursionError, MemoryError) as exc:
        return f"<a {type(value).__name__} that cannot be shown: {exc.__class__.__name__}>"
    return text if len(text) <= width else text[: width - 1] + "…"
