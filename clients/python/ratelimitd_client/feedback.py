"""What a provider said about its limits, read from an HTTP response: the one place that parses it.

``parse_response(status, headers, body, provider)`` returns a ``Feedback``: the
fields of a ``report`` (docs/protocol.md) and what kind of answer it was. It
reads, in any combination:

- ``Retry-After``: delta seconds (``12``) or an HTTP date
  (``Wed, 21 Oct 2015 07:28:00 GMT``), the latter turned into seconds from ``now``;
- ``X-RateLimit-Limit`` / ``-Remaining`` / ``-Reset`` and the IETF draft's
  ``RateLimit-Limit`` / ``-Remaining`` / ``-Reset``, names in any case. A reset
  value is read by its magnitude (``reset_at_from``): at least 10^12 is Unix
  time in milliseconds, at least 10^9 Unix time in seconds (SURCHI's
  ``1705329660``), anything smaller seconds from now — no window is 31 years
  long, and no Unix time this API will see is before 2001;
- the JSON bodies of the seed providers' refusals: SURCHI (``retry_after``),
  PolyNode (``scope``, ``reset_at``; the scope is mapped onto the bucket by
  ``SCOPE_BUCKETS``, ``v3_heavy`` → ``heavy``), Houdini in its REST and GraphQL
  forms (``retryAfter``, ``limit``, ``windowMs``, also inside ``extensions``
  and ``errors[]``), Struct (``success: false`` beside a ``Retry-After`` header).
  A GraphQL answer whose error carries code 429 counts as a 429 whatever the
  HTTP status;
- a 402 (PolyNode: the endpoint needs a paid plan) is the outcome
  ``not-available``, not a rate limit.

Anything else — no headers, a body that is not JSON or not one of these
shapes, values that do not parse — degrades to what is certain: the status.
No I/O; the clock is read only when ``now`` is not given.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timezone
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any

from .amounts import Amount, to_amount

__all__ = [
    "OK",
    "RATE_LIMITED",
    "NOT_AVAILABLE",
    "FAILED",
    "SCOPE_BUCKETS",
    "MAX_BODY",
    "MAX_RETRY_AFTER",
    "MAX_RESET_AT",
    "Feedback",
    "parse_response",
    "parse_retry_after",
    "reset_at_from",
    "report_fields",
]

# outcomes
OK = "ok"  # 1xx-3xx
RATE_LIMITED = "rate-limited"  # 429, or a body that says so
NOT_AVAILABLE = "not-available"  # 402: the plan does not include this (PolyNode)
FAILED = "failed"  # any other 4xx/5xx

# provider -> the scope its 429 body names -> the bucket of its preset that refused
SCOPE_BUCKETS: dict[str, dict[str, str]] = {
    "polynode": {"v3_heavy": "heavy"},  # seed 002: "When the heavy bucket is exceeded ... "scope": "v3_heavy""
}

# Bodies longer than this are not parsed: the refusals above are a few hundred
# bytes, and a client must not buffer a large download to look for them.
MAX_BODY = 64 * 1024

# What the daemon accepts in a report (docs/protocol.md): a retry_after over a day is sent as a
# day (the next call learns the rest), a reset_at past 1e10 (year 2286) is not a time and is left out.
MAX_RETRY_AFTER = 86400.0
MAX_RESET_AT = 1e10

# the magnitude rule of reset values (see the module docstring)
UNIX_MS_FROM = 10**12
UNIX_S_FROM = 10**9

_HEADER_PREFIXES = ("x-ratelimit-", "ratelimit-")


@dataclass(frozen=True, slots=True)
class Feedback:
    """What one response said: its outcome and the fields a ``report`` carries.

    - ``status``: the status to report — the HTTP status, or 429 for a GraphQL
      answer whose error says 429; ``http_status`` is the one on the wire.
    - ``outcome``: ``OK``, ``RATE_LIMITED``, ``NOT_AVAILABLE`` or ``FAILED``.
    - ``retry_after``: seconds to wait (``Retry-After``, or the body's), the
      larger when both say; ``reset_at``: Unix seconds when the window resets.
    - ``remaining``, ``limit``: exact amounts; ``window``: seconds.
    - ``scope``: the provider's own name for what refused; ``bucket``: the
      bucket it maps onto (``SCOPE_BUCKETS``), None when unknown.
    - ``message``: the provider's human message, if any.
    """

    status: int
    http_status: int
    outcome: str
    retry_after: float | None = None
    reset_at: float | None = None
    remaining: Amount | None = None
    limit: Amount | None = None
    window: float | None = None
    bucket: str | None = None
    scope: str | None = None
    message: str | None = None

    @property
    def limited(self) -> bool:
        """Report whether the provider refused for a rate limit."""
        return self.outcome == RATE_LIMITED

    @property
    def has_limits(self) -> bool:
        """Report whether the provider said anything about its limits beyond the status."""
        return any(value is not None for value in (self.retry_after, self.reset_at, self.remaining, self.limit, self.window))

    @property
    def worth_reporting(self) -> bool:
        """Report whether the daemon should hear of this response: a 429, a 402, or any rate-limit field."""
        return self.outcome in (RATE_LIMITED, NOT_AVAILABLE) or self.has_limits

    def retry_in(self, now: float) -> float | None:
        """Return the seconds the provider asked to wait from ``now`` (``retry_after``, else ``reset_at``), or None."""
        if self.retry_after is not None:
            return self.retry_after
        if self.reset_at is not None and self.outcome == RATE_LIMITED:
            return max(0.0, self.reset_at - now)
        return None

    def as_report_fields(self) -> dict[str, Any]:
        """Return the fields of a ``report`` request (without ``key``/``endpoint``): ``status`` and those known.

        A ``retry_after`` over ``MAX_RETRY_AFTER`` is sent as that; a ``reset_at``
        past ``MAX_RESET_AT`` is left out (the daemon would refuse the report).
        """
        fields: dict[str, Any] = {"status": self.status}
        for name in ("bucket", "retry_after", "reset_at", "remaining", "limit", "window"):
            value = getattr(self, name)
            if value is not None:
                fields[name] = value
        if "retry_after" in fields:
            fields["retry_after"] = min(fields["retry_after"], MAX_RETRY_AFTER)
        if fields.get("reset_at", 0) > MAX_RESET_AT:
            del fields["reset_at"]
        return fields


def parse_response(
    status: int,
    headers: Mapping[str, Any] | Iterable[tuple[Any, Any]] | None = None,
    body: bytes | str | Mapping[str, Any] | None = None,
    provider: str | None = None,
    *,
    now: float | None = None,
    scopes: Mapping[str, str] | None = None,
) -> Feedback:
    """Return what the response of ``status``, ``headers`` and ``body`` says about the provider's limits.

    ``headers`` is a mapping (any case) or ``(name, value)`` pairs, str or
    bytes. ``body`` is the raw body (bytes or str; not parsed beyond
    ``MAX_BODY``) or already-decoded JSON. ``provider`` (a preset name) picks
    the scope map of ``SCOPE_BUCKETS``; ``scopes`` adds to or overrides it.
    ``now`` (Unix seconds, default the wall clock) turns an HTTP date and a
    delta reset into the report's terms. Never raises for what the provider
    sent; raises ``TypeError`` for a status that is not an integer.
    """
    if isinstance(status, bool) or not isinstance(status, int):
        raise TypeError(f"status must be an HTTP status code (an integer), not {status!r}")
    if now is None:
        now = time.time()
    found = _read_headers(headers)
    header_retry = parse_retry_after(found.get("retry-after"), now)
    limit = _amount(_first_header(found, "limit"))
    remaining = _amount(_first_header(found, "remaining"))
    reset_value = _number(_first_header(found, "reset"))
    reset_at = None if reset_value is None else reset_at_from(reset_value, now)

    data = _json(body)
    said = _from_body(data, now) if data is not None else {}
    effective = status
    if said.get("limited") and 200 <= status < 300:
        effective = 429  # a GraphQL server answering 200 with a rate-limit error
    retry_after = _larger(header_retry, said.get("retry_after"))
    if said.get("reset_at") is not None:
        reset_at = said["reset_at"] if reset_at is None else max(reset_at, said["reset_at"])
    if limit is None:
        limit = said.get("limit")
    scope = said.get("scope")
    bucket = None
    if scope is not None:
        mapping = {**SCOPE_BUCKETS.get(provider or "", {}), **(scopes or {})}
        bucket = mapping.get(scope)
    return Feedback(
        status=effective,
        http_status=status,
        outcome=_outcome(effective),
        retry_after=retry_after,
        reset_at=reset_at,
        remaining=remaining,
        limit=limit,
        window=said.get("window"),
        bucket=bucket,
        scope=scope,
        message=said.get("message"),
    )


def parse_retry_after(value: Any, now: float) -> float | None:
    """Return the seconds a ``Retry-After`` value asks to wait from ``now``: delta seconds or an HTTP date.

    A date in the past is 0. None for a missing or unreadable value.
    """
    if value is None:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
    text = text.strip()
    seconds = _number(text)
    if seconds is not None:
        return seconds
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment is None:
        return None
    if moment.tzinfo is None:  # "-0000" or an obsolete zone: HTTP dates are always GMT
        moment = moment.replace(tzinfo=timezone.utc)
    return max(0.0, moment.timestamp() - now)


def reset_at_from(value: float, now: float) -> float:
    """Return the Unix seconds a reset ``value`` means: ms or s since the epoch, or seconds from ``now``, by magnitude."""
    if value >= UNIX_MS_FROM:
        return value / 1000.0
    if value >= UNIX_S_FROM:
        return float(value)
    return now + value


def report_fields(
    status: Any,
    bucket: Any = None,
    retry_after: Any = None,
    reset_at: Any = None,
    remaining: Any = None,
    limit: Any = None,
    window: Any = None,
    granted_at: Any = None,
) -> dict[str, Any]:
    """Return the checked fields of a ``report`` request (those given), amounts made exact.

    ``granted_at`` (Unix seconds) is when the reported call's permit was granted:
    the daemon subtracts what it granted since from ``remaining``, which the
    provider counted before those calls reached it.

    Raises ``TypeError``/``ValueError`` naming the field for a bad value: the
    status must be an integer 100-599, times finite and not negative.
    """
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise ValueError(f"status must be an HTTP status code 100-599, got {status!r}")
    fields: dict[str, Any] = {"status": status}
    if bucket is not None:
        if not isinstance(bucket, str) or not bucket:
            raise TypeError(f"bucket must be a non-empty bucket name, not {bucket!r}")
        fields["bucket"] = bucket
    for name, value in (("retry_after", retry_after), ("reset_at", reset_at), ("window", window), ("granted_at", granted_at)):
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
                raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__} {value!r}")
            number = float(value)
            if not math.isfinite(number) or number < 0:
                raise ValueError(f"{name} must be a finite, non-negative number of seconds, got {value!r}")
            fields[name] = number
    for name, value in (("remaining", remaining), ("limit", limit)):
        if value is not None:
            fields[name] = value if type(value) is int and value >= 0 else to_amount(value, name)
    return fields


# -- the pieces ---------------------------------------------------------------------------------


def _outcome(status: int) -> str:
    if status == 429:
        return RATE_LIMITED
    if status == 402:
        return NOT_AVAILABLE
    if status >= 400:
        return FAILED
    return OK


def _read_headers(headers: Mapping[str, Any] | Iterable[tuple[Any, Any]] | None) -> dict[str, str]:
    """Return the headers of interest by lower-case name (the first of repeated ones)."""
    found: dict[str, str] = {}
    if headers is None:
        return found
    items = headers.items() if isinstance(headers, Mapping) else headers
    for name, value in items:
        if isinstance(name, bytes):
            name = name.decode("latin-1")
        lower = name.lower()
        if lower == "retry-after" or lower.startswith(_HEADER_PREFIXES):
            if isinstance(value, bytes):
                value = value.decode("latin-1")
            found.setdefault(lower, str(value))
    return found


def _first_header(found: dict[str, str], suffix: str) -> str | None:
    for prefix in _HEADER_PREFIXES:
        value = found.get(prefix + suffix)
        if value is not None:
            # "300, 300;w=60" (a list, or the IETF draft's parameters): the first value is the one in force
            return value.split(",", 1)[0].split(";", 1)[0].strip()
    return None


def _number(value: Any) -> float | None:
    """Return a finite, non-negative number from an int, float or numeric string; None otherwise."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float, Decimal)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    if not math.isfinite(number) or number < 0:
        return None
    return number


def _amount(value: Any) -> Amount | None:
    """Return a non-negative exact amount from a header or JSON value; None when it is not one."""
    if value is None or isinstance(value, bool):
        return None
    try:
        amount = to_amount(value.strip() if isinstance(value, str) else value, "amount")
    except (TypeError, ValueError):
        return None
    return amount if amount >= 0 else None


def _larger(first: float | None, second: float | None) -> float | None:
    if first is None:
        return second
    if second is None:
        return first
    return max(first, second)


def _json(body: bytes | str | Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    if body is None:
        return None
    if isinstance(body, Mapping):
        return body
    if isinstance(body, (bytes, bytearray, memoryview)):
        if len(body) > MAX_BODY:
            return None
        try:
            body = bytes(body).decode("utf-8")
        except UnicodeDecodeError:
            return None
    if not isinstance(body, str) or len(body) > MAX_BODY or not body.lstrip().startswith("{"):
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _places(data: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Return the maps a refusal's fields may be in: the body, its ``extensions``, its ``errors[]`` and theirs."""
    places = [data]
    extensions = data.get("extensions")
    if isinstance(extensions, Mapping):
        places.append(extensions)
    errors = data.get("errors")
    if isinstance(errors, list):
        for error in errors:
            if isinstance(error, Mapping):
                places.append(error)
                inner = error.get("extensions")
                if isinstance(inner, Mapping):
                    places.append(inner)
    return places


def _from_body(data: Mapping[str, Any], now: float) -> dict[str, Any]:
    """Return what a JSON body says, by field: limited, retry_after, reset_at, limit, window, scope, message."""
    said: dict[str, Any] = {}
    for place in _places(data):
        code = place.get("code", place.get("status"))
        if code == 429 or code == "429" or place.get("type") == "RATE_LIMIT_EXCEEDED":
            said["limited"] = True
        retry = _number(place.get("retry_after", place.get("retryAfter")))
        if retry is not None:
            said["retry_after"] = _larger(said.get("retry_after"), retry)
        reset = _number(place.get("reset_at", place.get("resetAt")))
        if reset is not None:
            said.setdefault("reset_at", reset_at_from(reset, now))
        limit = _amount(place.get("limit"))
        if limit is not None and (place is not data or "windowMs" in place):
            # a bare "limit" at the top of a body is often a page size (PolyNode pagination): only
            # trusted beside a window or inside an error's extensions
            said.setdefault("limit", limit)
        window_ms = _number(place.get("windowMs"))
        if window_ms is not None:
            said.setdefault("window", window_ms / 1000.0)
        scope = place.get("scope")
        if isinstance(scope, str) and scope:
            said.setdefault("scope", scope)
        for name in ("error_description", "message"):
            message = place.get(name)
            if isinstance(message, str) and message:
                said.setdefault("message", message)
        error = place.get("error")
        if isinstance(error, str) and error:
            said.setdefault("message", error)
    return said
