"""Exact ratios for the window limits: amounts times nanoseconds, with rounding only where asked.

Amounts (``int`` or ``Decimal``) are summed as they come; a limit that must
multiply an amount by a duration, or divide one by the other, goes through
these helpers, which work on integer numerator/denominator pairs. Nothing here
uses a float, and every rounding names its direction.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from ratelimitd_client.amounts import Amount

__all__ = ["PLACES", "ratio", "ceil_div", "scale_up", "scale_down", "products_le", "amount_of"]

# decimal places of a reported amount that has no finite decimal expansion (1/3 of a unit);
# far below any cost a provider bills, and only reports are rounded, never decisions
PLACES = 12


def ratio(amount: Amount | Fraction) -> tuple[int, int]:
    """Return ``amount`` as an exact ``(numerator, denominator)`` pair, the denominator positive."""
    if type(amount) is int:
        return amount, 1
    return amount.as_integer_ratio()


def ceil_div(numerator: int, denominator: int) -> int:
    """Return ``numerator / denominator`` rounded up (``denominator`` positive)."""
    return -(-numerator // denominator)


def scale_up(amount: Amount, ns: int) -> int:
    """Return ``amount * ns`` rounded up to whole nanoseconds."""
    numerator, denominator = ratio(amount)
    return -(-(numerator * ns) // denominator)


def scale_down(amount: Amount, ns: int) -> int:
    """Return ``amount * ns`` rounded down to whole nanoseconds."""
    numerator, denominator = ratio(amount)
    return (numerator * ns) // denominator


def products_le(a: Amount, x: int, b: Amount, y: int) -> bool:
    """Report whether ``a * x <= b * y`` exactly (Decimal products can exceed the context's precision)."""
    an, ad = ratio(a)
    bn, bd = ratio(b)
    return an * x * bd <= bn * y * ad


def amount_of(value: Fraction | int, *, up: bool) -> Amount:
    """Return ``value`` as an amount: exact when it has at most ``PLACES`` decimals, else rounded up or down.

    Integral values come back as ``int``, others as a ``Decimal`` without
    trailing zeros (``Fraction(3, 10)`` -> ``Decimal("0.3")``).
    """
    if type(value) is int:
        return value
    numerator, denominator = value.numerator, value.denominator
    if denominator == 1:
        return numerator
    scaled, rest = divmod(numerator * 10**PLACES, denominator)
    if rest and up:
        scaled += 1
    places = PLACES
    while places and scaled % 10 == 0:
        scaled //= 10
        places -= 1
    return Decimal(f"{scaled}e-{places}") if places else scaled
