"""The retry rule and the routing of one request, as pure values: tables on a fixed clock, seeded dice.

``Policy.retry_delay`` decides whether a failed attempt is tried again and
after how long; ``Policy.target`` what endpoint a request is. No daemon, no
socket: these are the decisions the integrations' loops only carry out.
"""

from __future__ import annotations

import random

import pytest

from ratelimitd_client.feedback import parse_response
from ratelimitd_client.integrations import IDEMPOTENT, Target, make_policy
from ratelimitd_client.routing import RouteTable

NOW = 1_000_000_000.0
NETWORK = None  # a network error: no feedback


def feedback(status: int, **headers: str):
    return parse_response(status, {name.replace("_", "-"): value for name, value in headers.items()}, None, now=NOW)


# (policy options, method, attempt, replayable, feedback, held) -> None (no retry) or (low, high) bounds
CASES = {
    "retries off by default": ({}, "GET", 0, True, feedback(503), False, None),
    "a 503 is retried after a jittered backoff": ({"retries": 2}, "GET", 0, True, feedback(503), False, (0.0, 0.5)),
    "the second retry waits up to twice as long": ({"retries": 2}, "GET", 1, True, feedback(503), False, (0.0, 1.0)),
    "no retry left": ({"retries": 2}, "GET", 2, True, feedback(503), False, None),
    "a network error is retried": ({"retries": 1}, "GET", 0, True, NETWORK, False, (0.0, 0.5)),
    "POST is not idempotent": ({"retries": 3}, "POST", 0, True, feedback(503), False, None),
    "POST when the user says so": ({"retries": 3, "retry_methods": ["post"]}, "POST", 0, True, feedback(503), False, (0.0, 0.5)),
    "a body that cannot be sent again": ({"retries": 3}, "PUT", 0, False, feedback(503), False, None),
    "a 404 is not retried": ({"retries": 3}, "GET", 0, True, feedback(404), False, None),
    "a 200 is not retried": ({"retries": 3}, "GET", 0, True, feedback(200), False, None),
    "a 429 the daemon holds for: at once": ({"retries": 1}, "GET", 0, True, feedback(429, Retry_After="12"), True, (0.0, 0.0)),
    "a 429 not held: never before Retry-After": ({"retries": 1}, "GET", 0, True, feedback(429, Retry_After="12"), False, (12.0, 12.0)),
    "a 429 not held: its reset when no Retry-After": (
        {"retries": 1}, "GET", 0, True, feedback(429, X_RateLimit_Reset=str(int(NOW) + 20)), False, (20.0, 20.0),
    ),
    "a 503 with Retry-After": ({"retries": 1}, "GET", 0, True, feedback(503, Retry_After="5"), False, (5.0, 5.0)),
    "the backoff is capped at 30 s": ({"retries": 50}, "GET", 40, True, feedback(503), False, (0.0, 30.0)),
    "a Retry-After over the cap is still respected": ({"retries": 1}, "GET", 0, True, feedback(503, Retry_After="90"), False, (90.0, 90.0)),
    "a custom status list": ({"retries": 1, "retry_statuses": [409]}, "GET", 0, True, feedback(409), False, (0.0, 0.5)),
}


@pytest.mark.parametrize("options, method, attempt, replayable, said, held, bounds", CASES.values(), ids=CASES.keys())
def test_retry_delay(options, method, attempt, replayable, said, held, bounds):
    policy = make_policy("k", **options)
    delays = [policy.retry_delay(method, attempt, replayable, said, held, NOW, random.Random(seed)) for seed in range(50)]
    if bounds is None:
        assert delays == [None] * 50
    else:
        low, high = bounds
        assert all(low <= delay <= high for delay in delays), delays


def test_full_jitter_spreads_over_the_whole_range():
    policy = make_policy("k", retries=5)
    rng = random.Random(11)
    delays = [policy.backoff_delay(3, rng) for _ in range(2000)]  # uniform on [0, 4]
    assert 0 <= min(delays) < 0.1 and 3.9 < max(delays) <= 4.0
    assert 1.8 < sum(delays) / len(delays) < 2.2


def test_idempotent_methods_are_rfc_9110s():
    assert IDEMPOTENT == {"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"}


TARGETS = {
    "the daemon's route": ({}, "GET", "https://h/v3/trades", Target("heavy")),
    "a local route wins": ({"routes": [{"path": "/v3/trades", "endpoint": "rest", "cost": 3}]}, "GET", "https://h/v3/trades", Target("rest", 3)),
    "no route: untouched": ({}, "GET", "https://h/v2/x", None),
    "no route, endpoint= given": ({"endpoint": "rest"}, "GET", "https://h/v2/x", Target("rest")),
}


@pytest.mark.parametrize("options, method, url, expected", TARGETS.values(), ids=TARGETS.keys())
def test_target(options, method, url, expected):
    table = RouteTable.from_routes("p", [{"path": "/v3/trades", "endpoint": "heavy"}])
    assert make_policy("k", **options).target(table, method, url) == expected


def test_no_routes_known_yet():
    assert make_policy("k").target(None, "GET", "https://h/v3/trades") is None
    assert make_policy("k", endpoint="rest").target(None, "GET", "https://h/v3/trades") == Target("rest")


BAD = {
    "no key": ({"key": ""}, TypeError),
    "negative wait": ({"key": "k", "wait": -1}, ValueError),
    "negative retries": ({"key": "k", "retries": -1}, ValueError),
    "retries a bool": ({"key": "k", "retries": True}, ValueError),
    "zero backoff": ({"key": "k", "backoff": 0}, ValueError),
    "a bad local route": ({"key": "k", "routes": [{"path": "x", "endpoint": "e"}]}, ValueError),
}


@pytest.mark.parametrize("options, error", BAD.values(), ids=BAD.keys())
def test_bad_options(options, error):
    with pytest.raises(error):
        make_policy(**options)
