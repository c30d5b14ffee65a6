"""The choices an HTTP integration makes for one key, and the retry rule: pure values, no I/O.

``Policy`` holds what the user chose per client instance (the key alias, how
long an acquire may wait, fail-open or closed, retries); ``retry_delay`` says
whether and after how long a failed attempt is tried again.

Retries are opt-in (``retries=0`` by default) and only for methods that are
safe to repeat (``IDEMPOTENT``, unless ``retry_methods`` says otherwise) with a
body that can be sent again. A 429 that the daemon now holds for (the report
was applied) is retried with no local delay: the next acquire waits in the
daemon until the provider's retry time, together with every other process. A
5xx, a network error, or a 429 the daemon could not hold for is retried after
an exponential backoff with full jitter (``uniform(0, min(cap, base * 2**n))``,
cap 30 s, Struct's advice), and never sooner than the provider's
``Retry-After``.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..amounts import Amount
from ..feedback import RATE_LIMITED, Feedback
from ..routing import RouteTable, UrlRoute

__all__ = [
    "IDEMPOTENT",
    "RETRY_STATUSES",
    "BODY_STATUSES",
    "BACKOFF_BASE",
    "BACKOFF_CAP",
    "DEFAULT_WAIT",
    "Target",
    "Policy",
    "make_policy",
]

# RFC 9110 9.2.2: methods whose repetition has the effect of one request
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})

# statuses worth trying again: rate limited, and the server's passing failures
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

# the only responses whose body is read (small refusals that carry the provider's word)
BODY_STATUSES = frozenset({402, 429})

BACKOFF_BASE = 0.5  # seconds: the first retry waits up to this, the next up to twice as long…
BACKOFF_CAP = 30.0  # …but never more than 30 s (Struct: "Cap the backoff at 30 seconds")

# Seconds an acquire may wait in the daemon's queue before the request is
# refused with RateLimited: long enough for a window of a minute to free a
# slot, short enough that a stuck key surfaces as an error.
DEFAULT_WAIT = 60.0


@dataclass(frozen=True, slots=True)
class Target:
    """What a routed request is: the endpoint to acquire for, and the cost (None: the endpoint's own)."""

    endpoint: str
    cost: Amount | None = None


@dataclass(frozen=True, slots=True)
class Policy:
    """What one integration instance does; see ``make_policy`` for the meaning of each field."""

    key: str
    wait: float = DEFAULT_WAIT
    fail_open: bool = False
    retries: int = 0
    retry_methods: frozenset[str] = IDEMPOTENT
    retry_statuses: frozenset[int] = RETRY_STATUSES
    backoff: float = BACKOFF_BASE
    backoff_cap: float = BACKOFF_CAP
    endpoint: str | None = None
    routes: RouteTable = field(default_factory=lambda: RouteTable(None))
    provider: str | None = None
    scopes: Mapping[str, str] | None = None
    routes_ttl: float = 60.0

    def target(self, table: RouteTable | None, method: str, url: str) -> Target | None:
        """Return the target of a request: the local routes first, then ``table``'s, then ``endpoint``; or None."""
        route = self.routes.match(method, url)
        if route is None and table is not None:
            route = table.match(method, url)
        if route is not None:
            return Target(route.endpoint, route.cost)
        if self.endpoint is not None:
            return Target(self.endpoint)
        return None

    def backoff_delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Return the jittered delay before retry number ``attempt + 1``: uniform in [0, min(cap, base·2^attempt)]."""
        ceiling = min(self.backoff_cap, self.backoff * (2 ** min(attempt, 62)))
        return (rng or random).uniform(0.0, ceiling)

    def may_retry(self, method: str, attempt: int, replayable: bool) -> bool:
        """Report whether attempt number ``attempt + 1`` (0-based ``attempt`` done) may be retried at all."""
        return attempt < self.retries and replayable and method.upper() in self.retry_methods

    def retry_delay(
        self,
        method: str,
        attempt: int,
        replayable: bool,
        feedback: Feedback | None,
        held: bool,
        now: float,
        rng: random.Random | None = None,
    ) -> float | None:
        """Return the seconds to wait before trying again after ``attempt`` failed, or None: do not retry.

        ``feedback`` is None for a network error. ``held`` says the daemon
        applied the report (a hold or restriction): a 429 is then retried at
        once, its wait done by the next acquire. Otherwise the delay is the
        jittered backoff, at least the provider's ``Retry-After`` (or reset).
        """
        if not self.may_retry(method, attempt, replayable):
            return None
        if feedback is None:
            return self.backoff_delay(attempt, rng)
        if feedback.status not in self.retry_statuses:
            return None
        if held and feedback.outcome == RATE_LIMITED:
            return 0.0
        asked = feedback.retry_in(now) or 0.0
        return max(self.backoff_delay(attempt, rng), asked)


def make_policy(
    key: str,
    *,
    wait: float = DEFAULT_WAIT,
    fail_open: bool = False,
    retries: int = 0,
    retry_methods: Iterable[str] | None = None,
    retry_statuses: Iterable[int] | None = None,
    backoff: float = BACKOFF_BASE,
    backoff_cap: float = BACKOFF_CAP,
    endpoint: str | None = None,
    routes: Iterable[UrlRoute | Mapping[str, Any]] = (),
    provider: str | None = None,
    scopes: Mapping[str, str] | None = None,
    routes_ttl: float = 60.0,
) -> Policy:
    """Return a checked ``Policy``; raise ``ValueError``/``TypeError`` naming a bad argument.

    - ``key``: the key alias from the tier table this instance's requests use.
    - ``wait``: seconds an acquire may wait for a permit; not granted by then
      raises ``RateLimited`` (a retry not granted in time returns the last response).
    - ``fail_open``: when the daemon cannot be reached, let requests through
      (a warning is logged once) instead of raising ``DaemonUnavailable``.
    - ``retries``: how many times a failed attempt is tried again (0: never);
      ``retry_methods`` (default ``IDEMPOTENT``), ``retry_statuses`` (default
      ``RETRY_STATUSES``), ``backoff``/``backoff_cap``: the backoff's base and cap.
    - ``endpoint``: the endpoint of requests that match no route; None lets
      them pass untouched.
    - ``routes``: local routes tried before the daemon's (``UrlRoute`` or maps
      with ``path``, ``endpoint``, ``host``, ``methods``, ``cost``).
    - ``provider``: the provider whose feedback formats apply (default: the one
      the daemon names for the key); ``scopes``: extra scope → bucket names.
    - ``routes_ttl``: seconds the daemon's routes are kept before asking again
      (they are also asked again after every reconnection).
    """
    if not isinstance(key, str) or not key:
        raise TypeError(f"key must be a key alias of the tier table, not {key!r}")
    if not wait >= 0:
        raise ValueError(f"wait must be a number of seconds >= 0, got {wait!r}")
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError(f"retries must be an integer >= 0, got {retries!r}")
    if not backoff > 0 or not backoff_cap > 0:
        raise ValueError(f"backoff and backoff_cap must be positive seconds, got {backoff!r} and {backoff_cap!r}")
    if not routes_ttl > 0:
        raise ValueError(f"routes_ttl must be positive seconds, got {routes_ttl!r}")
    methods = IDEMPOTENT if retry_methods is None else frozenset(method.upper() for method in retry_methods)
    statuses = RETRY_STATUSES if retry_statuses is None else frozenset(int(status) for status in retry_statuses)
    return Policy(
        key=key,
        wait=float(wait),
        fail_open=bool(fail_open),
        retries=retries,
        retry_methods=methods,
        retry_statuses=statuses,
        backoff=float(backoff),
        backoff_cap=float(backoff_cap),
        endpoint=endpoint,
        routes=RouteTable.from_routes(provider, routes),
        provider=provider,
        scopes=scopes,
        routes_ttl=float(routes_ttl),
    )
