"""SIGTERM (``systemctl stop``) while clients wait: every waiter is told, the state is saved, exit 0.

A restart on the same state file then still counts the grants made before the
stop, so a service restart never hands out a window's quota twice.
"""

from __future__ import annotations

import threading
import time

import pytest
from ratelimitd_client import Client, ShuttingDown

TABLE = """
[providers.api.endpoints]
"rest" = ["rest"]
[providers.api.tiers.basic]
rest = { rate = "1/1h" }
[keys.k]
provider = "api"
tier = "basic"
"""


def wait_until(condition, timeout: float = 15.0) -> None:
    """Return once ``condition()`` holds; fail after ``timeout`` seconds (a readiness wait, not a timing check)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def test_sigterm_answers_waiters_keeps_the_state_and_exits_0(start_daemon):
    daemon = start_daemon(TABLE)
    outcome: dict[str, object] = {}

    def wait_for_rest() -> None:
        with Client(socket=daemon.socket, timeout=30) as client:
            try:
                outcome["permit"] = client.acquire("k", "rest", wait=7200)
            except ShuttingDown as exc:
                outcome["error"] = exc

    with Client(socket=daemon.socket, timeout=30) as admin:
        assert admin.acquire("k", "rest").granted  # the hour's only grant
        waiter = threading.Thread(target=wait_for_rest)
        waiter.start()
        wait_until(lambda: admin.status()["waiters"] == 1)
        assert daemon.stop() == 0, daemon.output()
        waiter.join(15)
    assert "permit" not in outcome
    assert isinstance(outcome.get("error"), ShuttingDown)
    assert "stopped cleanly" in daemon.output()

    restarted = start_daemon(TABLE)  # same directory, same state file
    with Client(socket=restarted.socket, timeout=30) as client:
        permit = client.acquire("k", "rest")
        assert not permit.granted and permit.retry_after > 3000  # the grant before the stop still counts
    assert restarted.stop() == 0
