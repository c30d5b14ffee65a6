"""Validation of request fields at the edge: types and ranges, with messages that carry the values.

Everything past this module may trust what it gets: a key is a non-empty
string, a cost an exact non-negative amount, a wait a finite number of seconds
within bounds. Each check raises ``BadRequest`` naming the field and the value.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from ratelimitd_client.amounts import MAX_AMOUNT, Amount, to_amount
from ratelimitd_client.display import shown

from ..errors import BadRequest

__all__ = ["MAX_NAME", "MAX_WAIT", "text", "optional_text", "amount", "optional_amount", "seconds_field", "integer"]

# Key, endpoint and bucket names are short identifiers; a longer one is a mistake or an attack.
MAX_NAME = 256
# A day: longer waits are almost surely a unit mistake (ms passed as s), and a waiter pins memory.
MAX_WAIT = 86400.0


def text(message: dict[str, Any], field: str) -> str:
    """Return the required string ``field`` of ``message``."""
    value = message.get(field)
    if type(value) is str and 0 < len(value) <= MAX_NAME:
        return value
    if value is None:
        raise BadRequest(f"field {field!r} is required")
    if isinstance(value, str):
        raise BadRequest(f"field {field!r} must be 1 to {MAX_NAME} characters, got {len(value)}")
    raise BadRequest(f"field {field!r} must be a string, not {type(value).__name__} {shown(value)}")


def optional_text(message: dict[str, Any], field: str) -> str | None:
    """Return the string ``field`` of ``message``, or None when it is absent or null."""
    if message.get(field) is None:
        return None
    return text(message, field)


def amount(value: Any, field: str) -> Amount:
    """Return ``value`` as an exact non-negative amount (int, Decimal, float via its repr)."""
    if type(value) is int and 0 <= value <= MAX_AMOUNT:
        return value
    try:
        return to_amount(value, f"field {field!r}")
    except ValueError as exc:
        raise BadRequest(str(exc)) from None


def optional_amount(message: dict[str, Any], field: str) -> Amount | None:
    """Return the amount ``field`` of ``message``, or None when it is absent or null."""
    value = message.get(field)
    if value is None:
        return None
    return amount(value, field)


def seconds_field(message: dict[str, Any], field: str, maximum: float = MAX_WAIT) -> float | None:
    """Return the duration ``field`` (seconds, 0 to ``maximum``) of ``message``, or None when absent."""
    value = message.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise BadRequest(f"field {field!r} must be a number of seconds, not {type(value).__name__} {shown(value)}")
    try:
        number = float(value)
    except OverflowError:  # an integer or decimal beyond any float: surely out of range
        number = math.inf
    if math.isnan(number) or number < 0 or number > maximum:
        raise BadRequest(f"field {field!r} must be between 0 and {maximum:g} seconds, got {shown(value)}")
    return number


def integer(message: dict[str, Any], field: str, default: int, low: int, high: int) -> int:
    """Return the integer ``field`` of ``message`` within ``low``..``high``, or ``default`` when absent."""
    value = message.get(field)
    if value is None:
        return default
    if type(value) is not int:
        raise BadRequest(f"field {field!r} must be an integer, not {type(value).__name__} {shown(value)}")
    if not low <= value <= high:
        raise BadRequest(f"field {field!r} must be between {low} and {high}, got {shown(value)}")
    return value
