"""``parse_response`` on the seed documents' own examples, and on what it must survive.

Each body below is copied verbatim from the seed document named beside it
(/work/shared/seeds/); headers the seeds name without a value get a plausible
one. ``NOW`` is a fixed Unix time, so that dates and delta resets are exact.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from ratelimitd_client.feedback import (
    FAILED,
    MAX_BODY,
    NOT_AVAILABLE,
    OK,
    RATE_LIMITED,
    Feedback,
    parse_response,
    parse_retry_after,
    report_fields,
    reset_at_from,
)

NOW = 1705329600.0  # 2024-01-15 14:40:00 UTC, a minute before SURCHI's example reset

# seed 001 (SURCHI), "Rate Limit Headers": "Example headers on a Sentinel-tier response"
SURCHI_HEADERS = {"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "247", "X-RateLimit-Reset": "1705329660"}

# seed 001 (SURCHI), "429 Response Body"
SURCHI_429 = """{
  "error": "rate_limit_exceeded",
  "error_description": "You have exceeded your request limit of 60 requests per minute. Upgrade to a Sentinel or Elite tier for higher limits.",
  "retry_after": 12,
  "status": 429
}"""

# seed 002 (PolyNode), "V3 REST data limits": "When the heavy bucket is exceeded, you'll receive a 429 response with"
POLYNODE_429 = """{
  "error": "rate limit exceeded",
  "scope": "v3_heavy",
  "reset_at": 1774108000
}"""

# seed 004 (Houdini), "Rate Limit Enforcement", the GraphQL tab
HOUDINI_GRAPHQL = """{
  "errors": [
    {
      "message": "Too many quote requests. Try again in 45 seconds.",
      "extensions": {
        "code": 429,
        "type": "RATE_LIMIT_EXCEEDED",
        "retryAfter": 45,
        "limit": 45,
        "windowMs": 60000
      }
    }
  ]
}"""

# seed 004 (Houdini), "Rate Limit Enforcement", the REST API tab
HOUDINI_REST = """{
  "code": 429,
  "type": "RATE_LIMIT_EXCEEDED",
  "message": "Too many quote requests. Try again in 45 seconds.",
  "extensions": {
    "retryAfter": 45,
    "limit": 45,
    "windowMs": 60000
  }
}"""

# seed 003 (Struct), "REST throughput": "429 Too Many Requests with a Retry-After header (seconds)"
STRUCT_429 = """{
  "success": false,
  "data": null,
  "message": "Rate limit exceeded"
}"""

HOUDINI_MESSAGE = "Too many quote requests. Try again in 45 seconds."

# (status, headers, body, provider) -> the report fields expected, and outcome/scope/message
CASES = {
    "surchi headers on a success": (
        (200, SURCHI_HEADERS, b'{"signals": []}', "surchi"),
        {"status": 200, "limit": 300, "remaining": 247, "reset_at": 1705329660.0},
        {"outcome": OK},
    ),
    "surchi 429: Retry-After header and the body's retry_after": (
        (429, {"Retry-After": "12", **SURCHI_HEADERS, "X-RateLimit-Remaining": "0"}, SURCHI_429.encode(), "surchi"),
        {"status": 429, "retry_after": 12.0, "limit": 300, "remaining": 0, "reset_at": 1705329660.0},
        {
            "outcome": RATE_LIMITED,
            "message": "You have exceeded your request limit of 60 requests per minute. Upgrade to a Sentinel or "
            "Elite tier for higher limits.",
        },
    ),
    "surchi 429 body alone": (
        (429, {}, SURCHI_429, None),
        {"status": 429, "retry_after": 12.0},
        {"outcome": RATE_LIMITED},
    ),
    "surchi: the larger of header and body wins": (
        (429, {"Retry-After": "5"}, SURCHI_429, None),
        {"status": 429, "retry_after": 12.0},
        {},
    ),
    "polynode heavy 429: scope mapped onto the heavy bucket": (
        (429, {}, POLYNODE_429.encode(), "polynode"),
        {"status": 429, "bucket": "heavy", "reset_at": 1774108000.0},
        {"outcome": RATE_LIMITED, "scope": "v3_heavy", "message": "rate limit exceeded"},
    ),
    "polynode scope without knowing the provider: kept, not mapped": (
        (429, {}, POLYNODE_429, None),
        {"status": 429, "reset_at": 1774108000.0},
        {"scope": "v3_heavy"},
    ),
    "polynode lower-case headers on a success": (
        (200, {"x-ratelimit-limit": "1000", "x-ratelimit-remaining": "998", "x-ratelimit-reset": "1774107960"}, None, "polynode"),
        {"status": 200, "limit": 1000, "remaining": 998, "reset_at": 1774107960.0},
        {"outcome": OK},
    ),
    "polynode 402 on a free key: not available, not rate limited": (
        (402, {}, b'{"error": "payment required"}', "polynode"),
        {"status": 402},
        {"outcome": NOT_AVAILABLE},
    ),
    "houdini graphql form": (
        (429, {}, HOUDINI_GRAPHQL.encode(), "houdini"),
        {"status": 429, "retry_after": 45.0, "limit": 45, "window": 60.0},
        {"outcome": RATE_LIMITED, "message": HOUDINI_MESSAGE},
    ),
    "houdini graphql error inside a 200: counts as a 429": (
        (200, {}, HOUDINI_GRAPHQL, "houdini"),
        {"status": 429, "retry_after": 45.0, "limit": 45, "window": 60.0},
        {"outcome": RATE_LIMITED},
    ),
    "houdini rest form": (
        (429, {}, HOUDINI_REST.encode(), "houdini"),
        {"status": 429, "retry_after": 45.0, "limit": 45, "window": 60.0},
        {"outcome": RATE_LIMITED, "message": HOUDINI_MESSAGE},
    ),
    "struct 429: Retry-After header, success:false body": (
        (429, {"Retry-After": "3"}, STRUCT_429.encode(), "struct"),
        {"status": 429, "retry_after": 3.0},
        {"outcome": RATE_LIMITED, "message": "Rate limit exceeded"},
    ),
    "struct 429 without Retry-After ('when applicable')": (
        (429, {}, STRUCT_429, "struct"),
        {"status": 429},
        {"outcome": RATE_LIMITED},
    ),
    "lasersell 429: nothing but the status": (
        (429, {"Content-Type": "text/plain"}, b"Too Many Requests", "lasersell"),
        {"status": 429},
        {"outcome": RATE_LIMITED, "message": None},
    ),
    # the header forms beyond the seeds
    "Retry-After as an HTTP date, 30 s after NOW": (
        (503, {"Retry-After": "Mon, 15 Jan 2024 14:40:30 GMT"}, None, None),
        {"status": 503, "retry_after": 30.0},
        {"outcome": FAILED},
    ),
    "X-RateLimit-Reset as delta seconds": (
        (200, {"X-RATELIMIT-REMAINING": "3", "X-RateLimit-Reset": "42"}, None, None),
        {"status": 200, "remaining": 3, "reset_at": NOW + 42},
        {},
    ),
    "X-RateLimit-Reset as Unix milliseconds": (
        (200, {"X-RateLimit-Reset": "1705329660500"}, None, None),
        {"status": 200, "reset_at": 1705329660.5},
        {},
    ),
    "IETF draft RateLimit-* headers, with parameters": (
        (200, {"RateLimit-Limit": "100, 100;w=60", "RateLimit-Remaining": "7", "RateLimit-Reset": "30"}, None, None),
        {"status": 200, "limit": 100, "remaining": 7, "reset_at": NOW + 30},
        {},
    ),
    "header pairs as bytes (a raw header list)": (
        (429, [(b"retry-after", b"7"), (b"x-ratelimit-remaining", b"0")], None, None),
        {"status": 429, "retry_after": 7.0, "remaining": 0},
        {},
    ),
    "a fractional remaining stays exact": (
        (200, {"X-RateLimit-Remaining": "0.1"}, None, None),
        {"status": 200, "remaining": Decimal("0.1")},
        {},
    ),
    # what must degrade to the status
    "unreadable values are dropped": (
        (429, {"Retry-After": "soon", "X-RateLimit-Remaining": "-3", "X-RateLimit-Reset": "NaN"}, None, None),
        {"status": 429},
        {},
    ),
    "an HTML error page": (
        (429, {"Content-Type": "text/html"}, b"<html><body>slow down</body></html>", None),
        {"status": 429},
        {},
    ),
    "JSON that is not a map": (
        (429, {}, b"[1, 2, 3]", None),
        {"status": 429},
        {},
    ),
    "broken JSON": (
        (429, {}, b'{"retry_after": ', None),
        {"status": 429},
        {},
    ),
    "not UTF-8": (
        (429, {}, b"{\xff\xfe}", None),
        {"status": 429},
        {},
    ),
    "a body over MAX_BODY is not parsed": (
        (429, {}, b'{"retry_after": 9, "pad": "' + b"x" * MAX_BODY + b'"}', None),
        {"status": 429},
        {},
    ),
    "a page size called limit is not a rate limit": (
        (200, {}, b'{"limit": 100, "offset": 0, "rows_returned": 100, "has_more": true}', "polynode"),
        {"status": 200},
        {},
    ),
    "a retry_after over a day is sent as a day (Houdini's day window)": (
        (429, {}, '{"code": 429, "extensions": {"retryAfter": 200000}}', "houdini"),
        {"status": 429, "retry_after": 86400.0},
        {"retry_after": 200000.0},
    ),
    "a reset that is no time is left out of the report": (
        (200, {"X-RateLimit-Reset": "99999999999", "X-RateLimit-Remaining": "1"}, None, None),
        {"status": 200, "remaining": 1},
        {"reset_at": 99999999999.0},
    ),
    "a plain 500": (
        (500, {}, None, None),
        {"status": 500},
        {"outcome": FAILED},
    ),
}


@pytest.mark.parametrize("given, fields, extra", CASES.values(), ids=CASES.keys())
def test_parse_response(given, fields, extra):
    status, headers, body, provider = given
    feedback = parse_response(status, headers, body, provider, now=NOW)
    assert feedback.as_report_fields() == fields
    for name, value in extra.items():
        assert getattr(feedback, name) == value, name


def test_fields_keep_their_types():
    feedback = parse_response(429, {"Retry-After": "12", **SURCHI_HEADERS}, None, now=NOW)
    fields = feedback.as_report_fields()
    assert type(fields["limit"]) is int and type(fields["remaining"]) is int
    assert type(fields["retry_after"]) is float and type(fields["reset_at"]) is float


def test_feedback_is_a_frozen_value():
    feedback = parse_response(429, {}, SURCHI_429, now=NOW)
    with pytest.raises(AttributeError):
        feedback.status = 200  # type: ignore[misc]
    assert feedback == parse_response(429, {}, SURCHI_429, now=NOW)
    assert isinstance(feedback, Feedback)


WORTH = {
    "a 429 with nothing else": (429, {}, True),
    "a 402": (402, {}, True),
    "a success with headers": (200, SURCHI_HEADERS, True),
    "a success without": (200, {"Content-Type": "application/json"}, False),
    "a 500 without": (500, {}, False),
    "a 503 with Retry-After": (503, {"Retry-After": "1"}, True),
}


@pytest.mark.parametrize("status, headers, worth", WORTH.values(), ids=WORTH.keys())
def test_worth_reporting(status, headers, worth):
    assert parse_response(status, headers, None, now=NOW).worth_reporting is worth


RETRY_IN = {
    "retry_after wins": ({"Retry-After": "12", "X-RateLimit-Reset": "1705329660"}, 429, 12.0),
    "a 429's reset when no Retry-After": ({"X-RateLimit-Reset": "1705329660"}, 429, 60.0),
    "a reset in the past is 0": ({"X-RateLimit-Reset": "1705329000"}, 429, 0.0),
    "a success's reset is no wait": ({"X-RateLimit-Reset": "1705329660"}, 200, None),
    "nothing said": ({}, 429, None),
}


@pytest.mark.parametrize("headers, status, expected", RETRY_IN.values(), ids=RETRY_IN.keys())
def test_retry_in(headers, status, expected):
    assert parse_response(status, headers, None, now=NOW).retry_in(NOW) == expected


RETRY_AFTER = {
    "seconds": ("120", 120.0),
    "seconds with spaces": (" 3 ", 3.0),
    "zero": ("0", 0.0),
    "fractional": ("1.5", 1.5),
    "IMF-fixdate (RFC 9110's example)": ("Fri, 31 Dec 1999 23:59:59 GMT", 30.0),
    "obsolete RFC 850 date": ("Friday, 31-Dec-99 23:59:59 GMT", 30.0),
    "obsolete asctime date": ("Fri Dec 31 23:59:59 1999", 30.0),
    "a date in the past": ("Fri, 31 Dec 1999 23:58:00 GMT", 0.0),
    "bytes": (b"7", 7.0),
    "negative": ("-1", None),
    "words": ("in a minute", None),
    "empty": ("", None),
    "missing": (None, None),
}


@pytest.mark.parametrize("value, expected", RETRY_AFTER.values(), ids=RETRY_AFTER.keys())
def test_parse_retry_after(value, expected):
    assert parse_retry_after(value, 946684769.0) == expected  # 1999-12-31T23:59:29Z, 30 s before RFC 9110's example date


RESETS = {
    "delta seconds": (60, 1000.0 + 60),
    "zero delta": (0, 1000.0),
    "just under the timestamp threshold: still a delta": (999_999_999, 1000.0 + 999_999_999),
    "unix seconds (SURCHI)": (1705329660, 1705329660.0),
    "unix milliseconds": (1705329660123, 1705329660.123),
}


@pytest.mark.parametrize("value, expected", RESETS.values(), ids=RESETS.keys())
def test_reset_magnitude_rule(value, expected):
    assert reset_at_from(value, 1000.0) == pytest.approx(expected, abs=1e-6)


def test_custom_scope_map_adds_to_the_provider_map():
    body = '{"error": "rate limit exceeded", "scope": "v3_standard", "reset_at": 1774108000}'
    assert parse_response(429, {}, body, "polynode", now=NOW, scopes={"v3_standard": "standard"}).bucket == "standard"
    assert parse_response(429, {}, POLYNODE_429, "polynode", now=NOW, scopes={"v3_standard": "standard"}).bucket == "heavy"


def test_decoded_json_is_accepted():
    import json

    assert parse_response(429, {}, json.loads(HOUDINI_REST), now=NOW).retry_after == 45.0


def test_a_status_that_is_not_an_integer_is_misuse():
    with pytest.raises(TypeError):
        parse_response("429", {}, None, now=NOW)  # type: ignore[arg-type]


REPORT_FIELDS_BAD = {
    "status out of range": (dict(status=99), ValueError, "status must be an HTTP status code 100-599, got 99"),
    "status a string": (dict(status="429"), ValueError, "status must be an HTTP status code 100-599, got '429'"),
    "negative retry_after": (dict(status=429, retry_after=-1), ValueError, "retry_after must be a finite, non-negative"),
    "infinite window": (dict(status=429, window=float("inf")), ValueError, "window must be a finite"),
    "retry_after a string": (dict(status=429, retry_after="12"), TypeError, "retry_after must be a number of seconds, not str"),
    "empty bucket": (dict(status=429, bucket=""), TypeError, "bucket must be a non-empty bucket name"),
    "negative remaining": (dict(status=200, remaining=-1), ValueError, "remaining"),
}


@pytest.mark.parametrize("given, error, message", REPORT_FIELDS_BAD.values(), ids=REPORT_FIELDS_BAD.keys())
def test_report_fields_refuse_bad_values(given, error, message):
    with pytest.raises(error, match=message.replace("(", r"\(")):
        report_fields(**given)


def test_report_fields_make_amounts_exact():
    assert report_fields(200, remaining=0.1, limit=300, retry_after=12) == {
        "status": 200,
        "remaining": Decimal("0.1"),
        "limit": 300,
        "retry_after": 12.0,
    }


# -- whatever a server sends, the parser does not raise ----------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_names = st.sampled_from(["Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "RateLimit-Reset", "X-Other"])
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["retry_after", "retryAfter", "reset_at", "limit", "windowMs", "scope", "code", "type", "errors", "extensions", "message", "x"]),
        inner,
        max_size=5,
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(
    status=st.integers(100, 599),
    headers=st.lists(st.tuples(_names, st.text(max_size=30)), max_size=6),
    body=st.one_of(st.none(), st.binary(max_size=200), _json.map(lambda value: __import__("json").dumps(value))),
)
def test_anything_a_server_sends_degrades_without_raising(status, headers, body):
    feedback = parse_response(status, headers, body, "polynode", now=NOW)
    fields = feedback.as_report_fields()
    report_fields(**fields)  # and what it produced is a valid report, within the daemon's bounds
    assert fields.get("retry_after", 0) <= 86400 and fields.get("reset_at", 0) <= 1e10
    assert feedback.status in (status, 429)
