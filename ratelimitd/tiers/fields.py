"""Checks of single values in a tier table: field names, strings, amounts, durations, rates, quotas.

Each check returns the value in the model's terms (ns, exact amounts) or raises
the ``ConfigError`` that ``Origins.error`` builds for the value's TOML path, with
a message that quotes the value and says what is accepted.
"""

from __future__ import annotations

import datetime
import difflib
import re
from typing import Any, Iterable

from ratelimitd_client.amounts import Amount, to_amount

from ..errors import ConfigError
from ..limits.calendar import ANCHORS, PERIODS, WEEKDAYS, time_zone as zone_of
from ..units import UNITS, parse_duration, parse_rate
from .merge import Origins
from .paths import quote

__all__ = [
    "RATE_FORMS",
    "DURATION_FORMS",
    "QUOTA_FORMS",
    "TIME_QUOTA_FORMS",
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
    "quota",
    "time_quota",
    "anchor",
    "time_zone",
    "scope_name",
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
QUOTA_FORMS = (
    'write "N/PERIOD": a positive number, "/", and a calendar period: day, week or month '
    '(e.g. "10000/month", "1,000/day", "0.5/week")'
)
TIME_QUOTA_FORMS = (
    'write "DURATION/PERIOD": an integer count with one of ms, s, m, h, d, "/", and a calendar period: '
    'day, week or month (e.g. "1h/day", "90m/week")'
)
ZONE_EXAMPLES = 'an IANA name such as "UTC", "Europe/Berlin" or "America/New_York"'

_QUOTA = re.compile(r"^\s*([^/]*?)\s*/\s*([^/]*?)\s*$")
_SCOPE_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


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


def _period(written: str, part: str, what: str, path: Path, origins: Origins) -> str:
    """Return the calendar period ``part`` of the quota ``written``, or raise saying what it is instead."""
    if part in PERIODS:
        return part
    if part in UNITS or re.match(r"^\d+\s*(ms|s|m|h|d)$", part):
        hint = f"; for a rolling window write rate = {quote(written)}" if what == "quota" else ""
        raise origins.error(
            f"{quote(written)} is not a {what}: {quote(part)} is a duration, not a calendar period "
            f"(day, week or month){hint}",
            path,
        )
    raise origins.error(
        f"{quote(written)} is not a {what}: {quote(part)} is not a calendar period{did_you_mean(part, PERIODS)}; "
        f"accepted: {one_of_names(PERIODS)}",
        path,
    )


def quota(value: Any, path: Path, origins: Origins) -> tuple[Amount, str]:
    """Return ``(limit, period)`` of a quota string such as ``"10000/month"`` (the limit may be a decimal)."""
    match = _QUOTA.match(value) if isinstance(value, str) else None
    if match is None:
        raise origins.error(f"{quote(value)} is not a quota: {QUOTA_FORMS}", path)
    number, part = match.groups()
    try:
        limit = to_amount(number.replace("_", "").replace(",", ""), "quota") if number else None
    except ValueError:
        limit = None
    if limit is None:
        raise origins.error(f"{quote(value)} is not a quota: {QUOTA_FORMS}", path)
    period = _period(value, part, "quota", path, origins)
    if not limit > 0:
        raise origins.error(f"{quote(value)} is not a quota: its limit must be positive", path)
    return limit, period


def time_quota(value: Any, path: Path, origins: Origins) -> tuple[int, str]:
    """Return ``(duration_ns, period)`` of a time quota string such as ``"1h/day"``."""
    match = _QUOTA.match(value) if isinstance(value, str) else None
    if match is None:
        raise origins.error(f"{quote(value)} is not a time quota: {TIME_QUOTA_FORMS}", path)
    written, part = match.groups()
    try:
        ns = parse_duration(written)
    except ValueError:
        raise origins.error(f"{quote(value)} is not a time quota: {TIME_QUOTA_FORMS}", path) from None
    period = _period(value, part, "time quota", path, origins)
    if ns == 0:
        raise origins.error(f"{quote(value)} is not a time quota: its duration must be longer than zero", path)
    return ns, period


def anchor(value: Any, period: str, path: Path, origins: Origins) -> int:
    """Return the ``anchor`` of a quota of ``period``: a billing day (month) or a weekday number (week)."""
    if period == "day":
        raise origins.error(
            "anchor does not apply to a daily quota: a day starts at midnight in its time zone; remove anchor", path
        )
    low, high = ANCHORS[period]
    if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
        return value
    if period == "month":
        raise origins.error(
            f"{quote(value)} is not a valid anchor of a monthly quota: write the billing day, an integer "
            f"from {low} to {high} (every month has it)",
            path,
        )
    raise origins.error(
        f"{quote(value)} is not a valid anchor of a weekly quota: write the weekday its weeks start on, "
        f"an integer from {low} ({WEEKDAYS[low]}) to {high} ({WEEKDAYS[high]})",
        path,
    )


def time_zone(value: Any, path: Path, origins: Origins) -> str:
    """Return ``value`` when it is a time zone this machine knows ("UTC" always is), else raise saying why."""
    if not isinstance(value, str):
        raise origins.error(f"{quote(value)} is not a time zone: write {ZONE_EXAMPLES}, as a string", path)
    try:
        zone_of(value)
    except ValueError as exc:
        raise origins.error(str(exc), path) from None
    return value


def scope_name(value: Any, reserved: tuple[str, ...], path: Path, origins: Origins) -> str:
    """Return ``value`` when it names a scope (letters, digits, "_", "-"); "key" and "group" are refused."""
    forms = (
        'write the name of a scope the request supplies (e.g. per = "wallet"), or one the daemon supplies: '
        + one_of_names(reserved)
    )
    if not isinstance(value, str) or not value:
        raise origins.error(f"{quote(value)} is not a valid per: {forms}", path)
    if value in ("key", "group"):
        raise origins.error(
            f'per = {quote(value)} is what scope says: leave per out for one count per key (or per group, '
            f'with scope = "group"), or {forms}',
            path,
        )
    if not _SCOPE_NAME.match(value):
        raise origins.error(
            f'{quote(value)} is not a valid per: a scope name is letters, digits, "_" and "-" (e.g. "wallet")', path
        )
    return value
