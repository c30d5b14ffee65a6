"""Helpers of the seed tests: tables that include a preset, and reading a bucket out of `hello` / `show`.

Every seed module starts a real ``ratelimitd`` (``start_daemon``) and talks to it
through the real ``Client``; these helpers only build tier-table text and pick
values out of replies, so that each test reads as the seed's rule.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable

from ratelimitd_client import Client, Lease

from ..daemon import Daemon

__all__ = [
    "PUSH_WITHIN",
    "module_daemon",
    "keys_table",
    "bucket",
    "rate_numbers",
    "rate_usage",
    "balance",
    "ended_by_daemon",
    "wait_for",
]

# Bound on waiting for a push that must come: ``poll`` returns as soon as it does,
# so this is a ceiling for a loaded machine, never a sleep.
PUSH_WITHIN = 5.0


@contextmanager
def module_daemon(table: str, *extra: str) -> Iterator[Daemon]:
    """Run one real daemon with ``table`` for a whole module (each test uses keys of its own); stop it at the end.

    Starting a daemon costs about half a second on a loaded machine, so the tests of
    one seed share one, each on keys no other test touches.
    """
    with tempfile.TemporaryDirectory(prefix="rl-seed-") as directory:
        daemon = Daemon(Path(directory), table, *extra)
        daemon.start()
        try:
            yield daemon
        finally:
            try:
                daemon.stop(timeout=10)
            except Exception:
                daemon.kill()


def keys_table(include: str, keys: dict[str, dict[str, Any]], extra: str = "") -> str:
    """Return a tier table including preset ``include`` with ``keys`` (alias -> fields) and ``extra`` text after.

    Fields are strings (``provider``, ``tier``, ``group``), except ``overrides``, which is TOML text
    (an inline table such as ``'{ quote = { rate = "1000/1m" } }'``).
    """
    lines = [f'include = ["{include}"]', extra]
    for alias, fields in keys.items():
        lines.append(f"[keys.{alias}]")
        for name, value in fields.items():
            lines.append(f"{name} = {value}" if name == "overrides" else f'{name} = "{value}"')
    return "\n".join(lines) + "\n"


def bucket(reply: dict[str, Any], name: str) -> dict[str, Any]:
    """Return the bucket ``name`` of a ``show`` reply or of a ``hello`` reply's ``limits``."""
    buckets = reply["limits"]["buckets"] if "limits" in reply else reply["buckets"]
    found = [one for one in buckets if one["name"] == name]
    assert len(found) == 1, f"bucket {name!r} not in {[one['name'] for one in buckets]}"
    return found[0]


def rate_numbers(reply: dict[str, Any], name: str) -> list[tuple[Any, str]]:
    """Return bucket ``name``'s rates as ``(limit, window)`` pairs, the window spelled as in a table ("1m")."""
    return [(rate["limit"], rate["window_text"]) for rate in bucket(reply, name)["rates"]]


def rate_usage(reply: dict[str, Any], name: str) -> list[tuple[Any, Any]]:
    """Return bucket ``name``'s rates of a ``show`` reply as ``(used, remaining)`` pairs, window by window."""
    return [(rate["used"], rate["remaining"]) for rate in bucket(reply, name)["rates"]]


def balance(client: Client, key: str, name: str) -> dict[str, Any]:
    """Return the ``balance`` (used, remaining, overage, billed, period_end) of quota bucket ``name`` of ``key``."""
    return bucket(client.show(key), name)["balance"]


def ended_by_daemon(client: Client, lease: Lease, within: float = PUSH_WITHIN) -> str | None:
    """Read pushes until ``lease`` has ended or ``within`` seconds pass; return its end reason (None: still held).

    ``poll`` returns as soon as a push arrives, so this waits only as long as the daemon takes.
    """
    deadline = time.monotonic() + within
    while lease.end_reason is None:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        client.poll(timeout=min(left, 0.5))
    return lease.end_reason


def wait_for(condition: Callable[[], bool], within: float = 5.0) -> None:
    """Return once ``condition()`` is true; fail after ``within`` s (readiness, not a timing assertion)."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "the condition did not become true in time"
        time.sleep(0.005)
