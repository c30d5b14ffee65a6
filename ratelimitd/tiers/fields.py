"""Checks of single values in a tier table: field names, strings, amounts, durations, rates.

Each check returns the value in the model's terms (ns, exact amounts) or raises
the ``ConfigError`` that ``Origins.error`` builds for the value's TOML path, with
a message that quotes the value and says what is accepted.
"""

from __future__ import annotations

import datetime
import difflib
from typing import Any, Iterable

from ratelimitd_client.amounts import Amount, to_amount

from ..errors import ConfigError
from ..units import parse_duration, parse_rate
from .merge import Origins
from .paths import quote

__all__ = [
    "RATE_FORMS",
    "DURATION_FORMS",
    "describe",
    "quote",
    "check_fields",
    "unknown_field",
    "table",
    "text",
    "amount",
    "count",
    "duration",
    "rate",
    "choice",
    "one_of_names",
    "did_you_mean",
    "unknown_name",
]

Path = tuple[Any, ...]

RATE_FORMS = (
    'write "N/DURATION": a positive number, "/", and an integer count with one of ms, s, m, h, d '
    '(e.g. "60/1m", "5/1s", "1,200/1m", "0.5/1s")'
)
DURATION_FORMS = 'write an integer count and one of ms, s, m, h, d (e.g. "100ms", "45m", "1d")'


def describe(value: Any) -> str:
    """Return what kind of TOML value ``value`` is, with an article ("a string", "an integer")."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, (datetime.date, datetime.time)):
        return "a date/time"
    return type(value).__name__


def one_of_names(names: Iterable[str]) -> str:
    """Return ``names`` quoted and comma-separated, or "none" when there are none."""
    listed = [quote(name) for name in names]
    return ", ".join(listed) if listed else "none"


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return " (did you mean "X"?)" for the choice closest to ``name``, or "" when none is close."""
    match = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {quote(match[0])}?)" if match else ""


def unknown_field(name: str, accepted: tuple[str, ...], what: str) -> str:
    """Return the message for a field ``name`` that ``what`` does not accept, with the closest accepted name."""
    return f"unknown field {quote(name)} in {what}{did_you_mean(name, accepted)}; accepted: {', '.join(accepted)}"


def check_fields(given: dict[str, Any], accepted: tuple[str, ...], path: Path, what: str, origins: Origins) -> None:
    """Raise for the first field of ``given`` not in ``accepted``, suggesting the closest accepted name."""
    for name in given:
        if name not in accepted:
            raise origins.error(unknown_field(name, accepted, what), path + (name,))


def choice(value: Any, choices: tuple[str, ...], path: Path, what: str, origins: Origins) -> str:
    """Return ``value`` when it is one of ``choices``, else raise listing them."""
    if isinstance(value, str) and value in choices:
        return value
    hint = did_you_mean(value, choices) if isinstance(value, str) else ""
    raise origins.error(f"{quote(value)} is not {what}{hint}; accepted: {one_of_names(choices)}", path)


def unknown_name(
    name: str, known: Iterable[str], what: str, where: str, path: Path, origins: Origins, *, hint: str = ""
) -> ConfigError:
    """Return the error for a reference to a ``what`` called ``name`` that ``where`` does not define."""
    known = list(known)
    return origins.error(
        f"unknown {what} {quote(name)}{did_you_mean(name, known)}; {where} defines {one_of_names(known)}{hint}", path
    )


def table(value: Any, path: Path, what: str, example: str, origins: Origins) -> dict[str, Any]:
    """Return ``value`` when it is a TOML table, else raise saying ``what`` should look like ``example``."""
    if isinstance(value, dict):
        return value
    raise origins.error(f"{what} must be a table such as {example}, not {describe(value)} ({quote(value)})", path)


def text(value: Any, path: Path, what: str, origins: Origins) -> str:
    """Return ``value`` when it is a non-empty string, else raise."""
    if isinstance(value, str) and value:
        return value
    if isinstance(value, str):
        raise origins.error(f"{what} must not be empty", path)
    raise origins.error(f"{what} must be a string, not {describe(value)} ({quote(value)})", path)


def amount(value: Any, path: Path, what: str, origins: Origins) -> Amount:
    """Return ``value`` as an exact positive amount (an integer, a decimal like 0.1, or such a string)."""
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
        try:
            result = to_amount(value.replace("_", "").replace(",", "") if isinstance(value, str) else value, what)
        except ValueError:
            result = None
        if result is not None and result > 0:
            return result
    raise origins.error(
        f"{quote(value)} is not a valid {what}: write a positive integer or decimal (e.g. 1, 100, 0.1)", path
    )


def count(value: Any, path: Path, what: str, origins: Origins) -> int:
    """Return ``value`` when it is a positive integer, else raise."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    raise origins.error(f"{quote(value)} is not a valid {what}: write a positive integer (e.g. 1, 10)", path)


def duration(value: Any, path: Path, what: str, origins: Origins, *, zero: bool = False) -> int:
    """Return ``value`` as ns (``"250ms"``); zero is accepted only when ``zero`` is true."""
    if not isinstance(value, str):
        raise origins.error(f"{quote(value)} is not a duration: {DURATION_FORMS}, as a string", path)
    try:
        ns = parse_duration(value)
    except ValueError:
        raise origins.error(f"{quote(value)} is not a duration: {DURATION_FORMS}", path) from None
    if ns == 0 and not zero:
        raise origins.error(f"{quote(value)} is not a valid {what}: it must be longer than zero", path)
    return ns


def rate(value: Any, path: Path, origins: Origins) -> tuple[Amount, int]:
    """Return ``(limit, window_ns)`` of a rate string such as ``"60/1m"``."""
    if not isinstance(value, str):
        raise origins.error(f"{quote(value)} is not a rate: {RATE_FORMS}", path)
    try:
        return parse_rate(value)
    except ValueError as exc:
        detail = str(exc)
        if "must be positive" in detail:
            reason = "its limit must be positive"
        elif "longer than zero" in detail:
            reason = "its window must be longer than zero"
        else:
            reason = RATE_FORMS
        raise origins.error(f"{quote(value)} is not a rate: {reason}", path) from None
