"""Fixtures of the feedback tests: a daemon whose provider has routes, and a local upstream API."""

from __future__ import annotations

from typing import Callable, Iterator

import pytest

from ..daemon import Daemon
from .upstream import Upstream

# A provider like PolyNode: "rest" takes from the standard bucket, "heavy" from standard and heavy;
# the free tier offers no heavy bucket (PolyNode's 402).
# margin: the 100 ms a one-minute window gets by default, also on these short test windows, so that
# arrival jitter on a loaded 2-core machine does not decide these feedback tests (docs/tier-tables.md)
TABLE = """
[providers.api]
margin = "100ms"
routes = [
  {{ path = "/v3/heavy/*", endpoint = "heavy" }},
  {{ path = "/scoped/*", endpoint = "heavy" }},
  {{ path = "/v3/*", endpoint = "rest" }},
  {{ path = "/flaky/*", endpoint = "rest" }},
  {{ path = "/paid/*", endpoint = "rest" }},
  {{ path = "/post/*", methods = ["POST"], endpoint = "rest" }},
]

[providers.api.endpoints]
"rest" = ["standard"]
"heavy" = ["standard", "heavy"]

[providers.api.tiers.basic]
standard = {{ rate = "{standard}" }}
heavy = {{ rate = "{heavy}" }}

[providers.api.tiers.free]
standard = {{ rate = "10/1m" }}

[keys.k]
provider = "api"
tier = "basic"

[keys.free]
provider = "api"
tier = "free"
"""


def table(standard: str = "100/1m", heavy: str = "50/1m") -> str:
    """Return the tier table with the given rates of the standard and heavy buckets."""
    return TABLE.format(standard=standard, heavy=heavy)


@pytest.fixture
def api(start_daemon: Callable[..., Daemon]) -> Callable[..., Daemon]:
    """Return a function starting a daemon on ``table(standard, heavy)``."""

    def start(standard: str = "100/1m", heavy: str = "50/1m") -> Daemon:
        return start_daemon(table(standard, heavy))

    return start


@pytest.fixture
def upstream() -> Iterator[Callable[..., Upstream]]:
    """Yield a function starting a local API with its own limit; all are stopped after the test."""
    started: list[Upstream] = []

    def start(limit: int = 1000, window: float = 60.0, advertise: bool = True) -> Upstream:
        server = Upstream(limit, window, advertise).__enter__()
        started.append(server)
        return server

    yield start
    for server in started:
        server.__exit__(None, None, None)
