"""The httpx transports against a real daemon and a real local API: permits, reports, holds, retries.

Sync, asyncio and Trio. The upstream (``upstream.py``) enforces its own limit
and says so the way the seed providers do; what it saw is the truth the tests
assert on. Backoff sleeps are recorded by an injected ``sleep`` with a seeded
``rng``, never slept; the only real waits are the daemon's own (a hold of
about one second, in one test).
"""

from __future__ import annotations

import asyncio
import random
import socket
from typing import Any

import httpx
import pytest
import trio

from ratelimitd_client import AsyncClient, Client, NotAvailable, RateLimited
from ratelimitd_client.integrations import AsyncRateLimitedTransport, RateLimitedTransport

KEY = {"X-Api-Key": "a"}


def buckets(daemon: Any) -> dict[str, dict[str, Any]]:
    """Return the key's buckets from ``show``, by name."""
    with Client(daemon.socket) as client:
        return {bucket["name"]: bucket for bucket in client.show("k")["buckets"]}


def used(daemon: Any, bucket: str = "standard") -> int:
    """Return how much of ``bucket``'s first rate is used now."""
    return buckets(daemon)[bucket]["rates"][0]["used"]


def http_client(daemon: Any, server: Any, **options: Any) -> httpx.Client:
    transport = RateLimitedTransport(key="k", socket=daemon.socket, **options)
    return httpx.Client(base_url=server.url, transport=transport, headers=KEY)


class Sleeps(list):
    """An injected ``sleep`` that records the delays instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def test_routed_requests_take_a_permit_and_others_pass_untouched(api, upstream):
    daemon, server = api(standard="3/1m"), upstream()
    with http_client(daemon, server, wait=0) as http:
        assert [http.get("/v3/markets").status_code for _ in range(3)] == [200, 200, 200]
        with pytest.raises(RateLimited) as caught:
            http.get("/v3/markets")
        assert caught.value.scope == "standard"
        assert 55 < caught.value.retry_after <= 60.1
        assert caught.value.key == "k" and caught.value.endpoint == "rest"
        assert http.get("/unrouted").status_code == 200  # no route: not metered, not refused
        assert http.get("/post/x").status_code == 200  # the route is for POST only
    assert len(server.accepted) == 5
    assert used(daemon) == 3


def test_a_heavy_path_takes_from_both_buckets(api, upstream):
    daemon, server = api(), upstream()
    with http_client(daemon, server, wait=0) as http:
        http.get("/v3/heavy/trades")
        http.post("/post/x")
    assert (used(daemon, "standard"), used(daemon, "heavy")) == (2, 1)


def test_a_429_holds_the_bucket_for_every_client(api, upstream):
    daemon, server = api(standard="100/30s"), upstream(limit=2, window=30, advertise=False)
    with http_client(daemon, server, wait=0) as http:
        assert [http.get("/v3/a").status_code for _ in range(3)] == [200, 200, 429]
        with pytest.raises(RateLimited) as caught:
            http.get("/v3/a")  # refused by the daemon: never reaches the upstream
        assert 25 < caught.value.retry_after <= 30.1
    with Client(daemon.socket) as other:
        permit = other.acquire("k", "rest")
    assert not permit.granted and permit.scope == "standard" and permit.retry_after > 25
    assert len(server.refused) == 1
    assert buckets(daemon)["standard"]["feedback"]["limited"] == 1


def test_a_scoped_429_holds_only_the_bucket_it_names(api, upstream):
    daemon, server = api(), upstream()
    with http_client(daemon, server, wait=0, scopes={"v3_heavy": "heavy"}) as http:
        assert http.get("/scoped/trades").status_code == 429
        with pytest.raises(RateLimited) as caught:
            http.get("/v3/heavy/trades")
        assert caught.value.scope == "heavy" and caught.value.retry_after > 25
        assert http.get("/v3/markets").status_code == 200  # the standard bucket is not held
    assert buckets(daemon)["standard"]["held_until"] is None


def test_a_lower_remaining_is_adopted_so_the_upstream_never_refuses(api, upstream):
    daemon, server = api(standard="100/1m"), upstream(limit=3, window=60)
    with http_client(daemon, server, wait=0) as http:
        assert [http.get("/v3/a").status_code for _ in range(3)] == [200, 200, 200]
        with pytest.raises(RateLimited):
            http.get("/v3/a")  # the upstream said Remaining: 0; the daemon believes it
    assert server.refused == []
    assert buckets(daemon)["standard"]["feedback"]["corrections"] >= 1


def test_a_402_is_returned_and_reported_without_a_hold(api, upstream):
    daemon, server = api(), upstream(advertise=False)
    with http_client(daemon, server, wait=0) as http:
        assert http.get("/paid/data").status_code == 402
        assert http.get("/v3/a").status_code == 200
    standard = buckets(daemon)["standard"]
    assert standard["feedback"]["reports"] == 1 and standard["held_until"] is None


def test_5xx_retries_are_opt_in_with_jittered_backoff_and_a_permit_each(api, upstream):
    daemon, server = api(), upstream()
    with http_client(daemon, server, wait=0) as http:
        assert http.get("/flaky/1/a").status_code == 503  # retries=0: the default
    sleeps = Sleeps()
    with http_client(daemon, server, wait=0, retries=3, sleep=sleeps, rng=random.Random(7)) as http:
        assert http.get("/flaky/2/b").status_code == 200
        assert http.post("/flaky/1/c").status_code == 503  # POST is not idempotent: not retried
    assert len(sleeps) == 2
    assert 0 <= sleeps[0] <= 0.5 and 0 <= sleeps[1] <= 1.0
    assert used(daemon) == 1 + 3 + 1  # every attempt is a call the provider counts


def test_post_is_retried_when_the_user_says_so(api, upstream):
    daemon, server = api(), upstream()
    sleeps = Sleeps()
    with http_client(daemon, server, wait=0, retries=1, retry_methods=["POST"], sleep=sleeps) as http:
        assert http.post("/flaky/1/c", json={"a": 1}).status_code == 200
    assert len(sleeps) == 1


def test_the_backoff_is_capped_at_30_seconds(api, upstream):
    daemon, server = api(), upstream()
    sleeps = Sleeps()
    with http_client(daemon, server, wait=0, retries=9, sleep=sleeps, rng=random.Random(1)) as http:
        assert http.get("/flaky/9/a").status_code == 200
    assert len(sleeps) == 9 and max(sleeps) <= 30.0 and max(sleeps) > 8  # 0.5·2^8 = 128, capped


def test_a_retried_429_waits_in_the_daemon_not_in_a_local_sleep(api, upstream):
    daemon, server = api(standard="100/1s"), upstream(limit=1, window=1.0, advertise=False)
    sleeps = Sleeps()
    with http_client(daemon, server, wait=5, retries=2, sleep=sleeps) as http:
        assert http.get("/v3/a").status_code == 200
        assert http.get("/v3/a").status_code == 200  # a 429 (Retry-After: 1), held, then granted
    assert sleeps == []
    assert len(server.refused) <= 1 and len(server.accepted) == 2
    assert server.accepted[1] - server.refused[0] >= 0.9 if server.refused else True


def test_a_retry_without_a_permit_in_time_returns_the_providers_answer(api, upstream):
    daemon, server = api(standard="100/30s"), upstream(limit=1, window=30, advertise=False)
    with http_client(daemon, server, wait=0.2, retries=2) as http:
        assert http.get("/v3/a").status_code == 200
        response = http.get("/v3/a")
    assert response.status_code == 429 and response.headers["Retry-After"] == "30"
    assert response.json()["retry_after"] == 30  # the body is still there for the caller
    assert len(server.refused) == 1


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_network_errors_are_retried_then_raised(api):
    daemon = api()
    sleeps = Sleeps()
    transport = RateLimitedTransport(key="k", socket=daemon.socket, wait=0, retries=2, sleep=sleeps)
    with httpx.Client(transport=transport) as http:
        with pytest.raises(httpx.ConnectError):
            http.get(f"http://127.0.0.1:{closed_port()}/v3/a")
    assert len(sleeps) == 2
    assert used(daemon) == 3


def test_local_routes_come_first_and_endpoint_catches_the_rest(api, upstream):
    daemon, server = api(), upstream()
    routes = [{"path": "/custom/*", "endpoint": "heavy", "cost": 2}]
    with http_client(daemon, server, wait=0, routes=routes, endpoint="rest") as http:
        http.get("/custom/x")
        http.get("/elsewhere")
    assert (used(daemon, "standard"), used(daemon, "heavy")) == (3, 2)


def test_a_key_without_the_bucket_is_not_available(api, upstream):
    daemon, server = api(), upstream()
    transport = RateLimitedTransport(key="free", socket=daemon.socket, wait=0)
    with httpx.Client(base_url=server.url, transport=transport) as http:
        with pytest.raises(NotAvailable):
            http.get("/v3/heavy/trades")
        assert http.get("/v3/markets").status_code == 200
    assert len(server.accepted) == 1


def test_routes_are_fetched_again_after_a_daemon_restart(api, upstream):
    daemon, server = api(), upstream()
    with http_client(daemon, server, wait=0) as http:
        http.get("/v3/a")
        daemon.stop()
        daemon.write_table(daemon.config.read_text().replace('path = "/v3/*", endpoint = "rest"', 'path = "/v3/*", endpoint = "heavy"'))
        daemon.start()
        http.get("/v3/a")  # reconnects: still the routes it had
        http.get("/v3/a")  # the new connection's routes: heavy
    assert used(daemon, "heavy") == 1


# -- async: asyncio and Trio run the same scenario -------------------------------------------------


async def scenario(daemon: Any, server: Any, gather: Any) -> None:
    """Two tasks call at once through one transport; the upstream refuses one; everyone is then held."""
    transport = AsyncRateLimitedTransport(key="k", socket=daemon.socket, wait=0)
    async with httpx.AsyncClient(base_url=server.url, transport=transport, headers=KEY) as http:
        assert (await http.get("/v3/a")).status_code == 200
        assert (await http.get("/unrouted", headers={"X-Api-Key": "b"})).status_code == 200
        statuses = []

        async def call() -> None:
            statuses.append((await http.get("/v3/a")).status_code)

        await gather(call, call)
        assert sorted(statuses) == [200, 429]
        with pytest.raises(RateLimited):
            await http.get("/v3/a")
    other = AsyncClient(daemon.socket)
    try:
        assert not (await other.acquire("k", "rest")).granted
    finally:
        await other.close()


async def asyncio_gather(*functions: Any) -> None:
    await asyncio.gather(*(function() for function in functions))


async def trio_gather(*functions: Any) -> None:
    async with trio.open_nursery() as nursery:
        for function in functions:
            nursery.start_soon(function)


def test_async_transport_under_asyncio(api, upstream):
    daemon, server = api(standard="100/30s"), upstream(limit=2, window=30, advertise=False)
    asyncio.run(scenario(daemon, server, asyncio_gather))
    assert len(server.refused) == 1 and len(server.accepted) == 3


async def test_async_transport_under_trio(api, upstream):
    daemon, server = api(standard="100/30s"), upstream(limit=2, window=30, advertise=False)
    await scenario(daemon, server, trio_gather)
    assert len(server.refused) == 1 and len(server.accepted) == 3


async def test_async_retries_sleep_through_the_injected_sleep_under_trio(api, upstream):
    daemon, server = api(), upstream()
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        await trio.lowlevel.checkpoint()

    transport = AsyncRateLimitedTransport(key="k", socket=daemon.socket, wait=0, retries=2, sleep=sleep)
    async with httpx.AsyncClient(base_url=server.url, transport=transport) as http:
        assert (await http.get("/flaky/2/a")).status_code == 200
    assert len(sleeps) == 2


async def test_async_default_sleep_works_under_trio(api, upstream):
    daemon, server = api(), upstream()
    transport = AsyncRateLimitedTransport(key="k", socket=daemon.socket, wait=0, retries=1, backoff=0.001)
    async with httpx.AsyncClient(base_url=server.url, transport=transport) as http:
        assert (await http.get("/flaky/1/a")).status_code == 200


def test_async_default_sleep_works_under_asyncio(api, upstream):
    daemon, server = api(), upstream()

    async def main() -> int:
        transport = AsyncRateLimitedTransport(key="k", socket=daemon.socket, wait=0, retries=1, backoff=0.001)
        async with httpx.AsyncClient(base_url=server.url, transport=transport) as http:
            return (await http.get("/flaky/1/a")).status_code

    assert asyncio.run(main()) == 200
