"""The requests adapter and session against a real daemon and a real local API.

The same promises as the httpx transports (``test_httpx.py``), through
``requests``: routed requests take a permit, others pass, a 429 holds every
client, a lower Remaining is believed, retries are opt-in and take a permit each.
"""

from __future__ import annotations

import random

import pytest
import requests

from ratelimitd_client import Client, RateLimited
from ratelimitd_client.integrations import RateLimitedAdapter, RateLimitedSession

from .test_httpx import Sleeps, buckets, used

KEY = {"X-Api-Key": "a"}


def test_a_session_meters_routed_requests_and_passes_the_rest(api, upstream):
    daemon, server = api(standard="3/1m"), upstream()
    with RateLimitedSession("k", socket=daemon.socket, wait=0) as session:
        session.headers.update(KEY)
        assert [session.get(f"{server.url}/v3/a").status_code for _ in range(3)] == [200, 200, 200]
        with pytest.raises(RateLimited) as caught:
            session.get(f"{server.url}/v3/a")
        assert caught.value.scope == "standard"
        assert session.get(f"{server.url}/unrouted").status_code == 200
    assert len(server.accepted) == 4
    assert used(daemon) == 3


def test_an_adapter_mounted_for_one_host_leaves_others_alone(api, upstream):
    daemon, server, elsewhere = api(standard="1/1m"), upstream(), upstream()
    session = requests.Session()
    session.mount(server.url + "/", RateLimitedAdapter("k", socket=daemon.socket, wait=0))
    with session:
        assert session.get(f"{server.url}/v3/heavy/x").status_code == 200
        assert session.get(f"{elsewhere.url}/v3/heavy/x").status_code == 200  # the default adapter
        assert session.get(f"{elsewhere.url}/v3/heavy/x").status_code == 200
    assert (used(daemon, "standard"), used(daemon, "heavy")) == (1, 1)


def test_a_429_holds_every_client_and_the_body_stays_readable(api, upstream):
    daemon, server = api(standard="100/30s"), upstream(limit=1, window=30, advertise=False)
    with RateLimitedSession("k", socket=daemon.socket, wait=0) as session:
        assert session.get(f"{server.url}/v3/a").status_code == 200
        refused = session.get(f"{server.url}/v3/a", stream=True)
        assert refused.status_code == 429 and refused.json()["retry_after"] == 30
        with pytest.raises(RateLimited):
            session.get(f"{server.url}/v3/a")
    with Client(daemon.socket) as other:
        assert not other.acquire("k", "rest").granted
    assert len(server.refused) == 1


def test_a_lower_remaining_is_believed(api, upstream):
    daemon, server = api(), upstream(limit=2, window=60)
    with RateLimitedSession("k", socket=daemon.socket, wait=0) as session:
        session.get(f"{server.url}/v3/a")
        session.get(f"{server.url}/v3/a")
        with pytest.raises(RateLimited):
            session.get(f"{server.url}/v3/a")
    assert server.refused == []
    assert buckets(daemon)["standard"]["feedback"]["corrections"] >= 1


def test_retries_are_opt_in_idempotent_and_take_a_permit_each(api, upstream):
    daemon, server = api(), upstream()
    sleeps = Sleeps()
    with RateLimitedSession("k", socket=daemon.socket, wait=0, retries=2, sleep=sleeps, rng=random.Random(3)) as session:
        assert session.get(f"{server.url}/flaky/2/a").status_code == 200
        assert session.post(f"{server.url}/flaky/1/b", data=b"x").status_code == 503
        assert session.put(f"{server.url}/flaky/1/c", data=(b"x" for _ in range(1))).status_code == 503  # a generator: not replayable
    assert len(sleeps) == 2 and sleeps[0] <= 0.5 and sleeps[1] <= 1.0
    assert used(daemon) == 3 + 1 + 1


def test_a_retry_waits_for_the_daemons_hold(api, upstream):
    daemon, server = api(standard="100/1s"), upstream(limit=1, window=1.0, advertise=False)
    sleeps = Sleeps()
    with RateLimitedSession("k", socket=daemon.socket, wait=5, retries=1, sleep=sleeps) as session:
        assert session.get(f"{server.url}/v3/a").status_code == 200
        assert session.get(f"{server.url}/v3/a").status_code == 200
    assert sleeps == [] and len(server.refused) <= 1 and len(server.accepted) == 2
