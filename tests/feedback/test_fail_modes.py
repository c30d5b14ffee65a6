"""When the daemon cannot be reached: fail closed (the default) raises, fail open lets requests through.

The daemon is really stopped (SIGTERM) and really started again; a fail-open
client warns once while it is away and once when it answers again, and is
metered again from then on.
"""

from __future__ import annotations

import logging

import httpx
import pytest

from ratelimitd_client import DaemonUnavailable
from ratelimitd_client.integrations import AsyncRateLimitedTransport, RateLimitedSession, RateLimitedTransport

from .test_httpx import used

LOGGER = "ratelimitd_client.integrations"


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == LOGGER and record.levelno >= logging.WARNING]


def test_httpx_fails_closed_by_default(api, upstream):
    daemon, server = api(), upstream()
    transport = RateLimitedTransport(key="k", socket=daemon.socket, wait=0)
    with httpx.Client(base_url=server.url, transport=transport) as http:
        assert http.get("/v3/a").status_code == 200
        daemon.stop()
        with pytest.raises(DaemonUnavailable, match="cannot reach ratelimitd"):
            http.get("/v3/a")
        assert http.get("/unrouted").status_code == 200  # the routes it knows say: not metered
    assert len(server.accepted) == 2


def test_httpx_fails_closed_before_knowing_any_route(start_daemon, short_tmp, upstream):
    server = upstream()
    transport = RateLimitedTransport(key="k", socket=str(short_tmp / "nobody.sock"), wait=0)
    with httpx.Client(base_url=server.url, transport=transport) as http:
        with pytest.raises(DaemonUnavailable, match="no socket there"):
            http.get("/unrouted")  # without the routes, nothing can be said to be unrouted
    assert server.accepted == []


def test_httpx_fails_open_with_one_warning_and_meters_again_on_return(api, upstream, caplog):
    caplog.set_level(logging.WARNING, LOGGER)
    daemon, server = api(), upstream()
    transport = RateLimitedTransport(key="k", socket=daemon.socket, wait=0, fail_open=True)
    with httpx.Client(base_url=server.url, transport=transport) as http:
        assert http.get("/v3/a").status_code == 200
        daemon.stop()
        assert [http.get("/v3/a").status_code for _ in range(3)] == [200, 200, 200]
        assert len(warnings(caplog)) == 1
        assert "unreachable" in warnings(caplog)[0] and "fail_open=True" in warnings(caplog)[0]
        daemon.start()
        assert http.get("/v3/a").status_code == 200
        assert len(warnings(caplog)) == 2 and "answers again" in warnings(caplog)[1]
    assert len(server.accepted) == 5
    assert used(daemon) == 2  # before the stop and after the start (counters survive the restart)


def test_requests_fails_closed_and_open(api, upstream, caplog):
    caplog.set_level(logging.WARNING, LOGGER)
    daemon, server = api(), upstream()
    daemon.stop()
    with RateLimitedSession("k", socket=daemon.socket, wait=0) as closed:
        with pytest.raises(DaemonUnavailable):
            closed.get(f"{server.url}/v3/a")
    with RateLimitedSession("k", socket=daemon.socket, wait=0, fail_open=True) as open_:
        assert open_.get(f"{server.url}/v3/a").status_code == 200
        assert open_.get(f"{server.url}/v3/a").status_code == 200
    assert len(warnings(caplog)) == 1
    assert len(server.accepted) == 2


async def test_async_fails_closed_and_open_under_trio(api, upstream, caplog):
    caplog.set_level(logging.WARNING, LOGGER)
    daemon, server = api(), upstream()
    daemon.stop()
    closed = AsyncRateLimitedTransport(key="k", socket=daemon.socket, wait=0)
    async with httpx.AsyncClient(base_url=server.url, transport=closed) as http:
        with pytest.raises(DaemonUnavailable):
            await http.get("/v3/a")
    open_ = AsyncRateLimitedTransport(key="k", socket=daemon.socket, wait=0, fail_open=True)
    async with httpx.AsyncClient(base_url=server.url, transport=open_) as http:
        assert (await http.get("/v3/a")).status_code == 200
        assert (await http.get("/v3/a")).status_code == 200
    assert len(warnings(caplog)) == 1
    assert len(server.accepted) == 2
