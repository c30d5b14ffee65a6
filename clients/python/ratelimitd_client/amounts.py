"""Exact amounts: costs and limits are ``int`` or ``Decimal``, never a float sum.

Providers bill fractional costs (Struct: 0.1 credit per webhook event); adding
0.1 ten thousand times in binary floating point drifts, so every amount the
daemon adds up is an ``int`` or a ``Decimal``. Floats are accepted at the edge
only, converted through their shortest decimal repr (``0.1`` becomes
``Decimal("0.1")``, which is what the user wrote).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Union

from .display import shown

__all__ = ["Amount", "to_amount", "normalize", "MAX_AMOUNT", "MAX_PLACES"]

Amount = Union[int, Decimal]

# Bounds on an amount from outside. No provider counts beyond 10**18 (credits, items, requests),
# nor bills finer than 10**-18; and an unbounded decimal such as 1E+1000000 would make the
# daemon build a million-digit integer: a request must not be able to cost that much CPU.
MAX_AMOUNT = 10**18
MAX_PLACES = 18


def normalize(value: Decimal) -> Amount:
    """Return ``value`` as an ``int`` when it is integral, else as the ``Decimal`` itself."""
    if value == value.to_integral_value():
        return int(value)
    return value


def to_amount(value: object, what: str = "amount") -> Amount:
    """Return ``value`` as an exact non-negative amount, or raise ``ValueError`` naming ``what``.

    Accepts ``int``, ``Decimal``, ``float`` (through its repr) and numeric strings.
    Rejects booleans, NaN, infinities and negative values.
    """
    if isinstance(value, bool):
        raise ValueError(f"{what} must be a number, not a boolean")
    if isinstance(value, int):
        result: Amount = value
    elif isinstance(value, (Decimal, float, str)):
        try:
            number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
        except InvalidOperation:
            raise ValueError(f"{what} {shown(value)} is not a number") from None
        if not number.is_finite():
            raise ValueError(f"{what} {shown(value)} is not a finite number")
        if number and (number.adjusted() > 18 or number.as_tuple().exponent < -MAX_PLACES):
            raise ValueError(f"{what} {shown(value)} is out of range: at most {MAX_AMOUNT} with {MAX_PLACES} decimal places")
        result = normalize(number)
    else:
        raise ValueError(f"{what} must be a number, not {type(value).__name__}")
    if result < 0:
        raise ValueError(f"{what} {shown(value)} is negative")
    if result > MAX_AMOUNT:
        raise ValueError(f"{what} {shown(value)} is out of range: at most {MAX_AMOUNT}")
    return result

