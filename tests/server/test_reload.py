"""Reload applies a new tier table live without resetting counters; an invalid one changes nothing."""

from __future__ import annotations

import signal
import threading
import time

import pytest
from ratelimitd_client import Client, InvalidTable

TABLE = """
[providers.api.endpoints]
"rest" = ["rest"]
[providers.api.tiers.basic]
rest = { rate = "%s" }
[keys.k]
provider = "api"
tier = "basic"
"""


@pytest.fixture
def daemon(start_daemon):
    return start_daemon(TABLE % "100/1m")


def test_reload_under_load_keeps_counters(daemon):
    reloaded = threading.Event()
    granted = []

    def load() -> None:
        with Client(socket=daemon.socket) as client:
            while True:
                if client.acquire("k", "rest").granted:
                    granted.append(1)
                elif reloaded.is_set():
                    return  # denied under the final table: the minute is used up

    workers = [threading.Thread(target=load) for _ in range(3)]
    for worker in workers:
        worker.start()
    with Client(socket=daemon.socket) as admin:
        while len(granted) < 40:
            time.sleep(0.001)
        for limit in (120, 130, 140):
            daemon.write_table(TABLE % f"{limit}/1m")
            assert admin.reload()["reloaded"] is True
        reloaded.set()
        for worker in workers:
            worker.join()
        # every grant of this minute is still counted against the last table's limit: a reload
        # that reset counters would have let the workers take 140 more after it
        show = admin.show("k")
        rate = show["buckets"][0]["rates"][0]
        assert rate["limit"] == 140
        assert rate["used"] == len(granted) == 140
        assert admin.acquire("k", "rest").granted is False


def test_invalid_reload_is_refused_precisely_and_changes_nothing(daemon):
    with Client(socket=daemon.socket) as client:
        for _ in range(30):
            assert client.acquire("k", "rest").granted
        daemon.write_table((TABLE % "100/1m").replace('"100/1m"', '"100/1x"'))
        with pytest.raises(InvalidTable) as refused:
            client.reload()
        message = str(refused.value)
        assert str(daemon.config) in message and "providers.api.tiers.basic.rest.rate" in message and "1x" in message
        status = client.status()
        assert status["reload_error"] and "providers.api.tiers.basic.rest.rate" in status["reload_error"]
        permit = client.acquire("k", "rest")
        assert permit.granted and permit.remaining == 69


def test_sighup_reloads_and_a_bad_table_on_sighup_keeps_the_old_one(daemon):
    with Client(socket=daemon.socket) as client:
        assert client.acquire("k", "rest", cost=10).granted
        daemon.write_table(TABLE % "12/1m")
        daemon.signal(signal.SIGHUP)
        _wait_for(lambda: client.show("k")["buckets"][0]["rates"][0]["limit"] == 12)
        assert client.acquire("k", "rest").remaining == 1
        daemon.write_table("this is not toml")
        daemon.signal(signal.SIGHUP)
        _wait_for(lambda: client.status()["reload_error"] is not None)
        assert client.acquire("k", "rest").remaining == 0


def _wait_for(condition, timeout: float = 10.0) -> None:
    """Poll ``condition`` until true: the daemon handles a signal asynchronously."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the daemon did not act on the signal"
        time.sleep(0.01)
