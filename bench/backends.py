"""The backends of the main table: how to start each one and what its client processes run.

A ``Backend`` pairs a server starter (returns a ``servers.Server`` or raises
``Unavailable``) with the worker config its clients run. Groups:
``one`` (one check at a time, 4 clients), ``pipelined`` (16 requests in flight
per client) and ``unloaded`` (1 client, for latency without contention).
The reference row of each group, to which the table's ratios are taken, is
``REFERENCE[group]``.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from typing import Callable

from servers import (
    HUGE_RATE,
    Server,
    Unavailable,
    client_available,
    probe,
    ratelimitd_help,
    start_floor,
    start_ratelimitd,
    start_redis,
    tier_table,
)

__all__ = ["Backend", "BACKENDS", "REFERENCE", "PIPELINE_DEPTH", "stop_backend"]

PIPELINE_DEPTH = 16
_HUGE_LIMIT = int(HUGE_RATE.split("/")[0])


@dataclass(frozen=True)
class Backend:
    """One row of the main table."""

    id: str
    label: str
    group: str
    start: Callable[[str], Server]
    worker: Callable[[Server], dict]
    clients: int = 4
    server_what: str = ""  # what the server CPU column measures, when not the obvious process


def _durability_memory() -> str | None:
    """Return "memory" when the daemon knows ``--durability`` (so the base rows say so), else None."""
    return "memory" if "--durability" in ratelimitd_help() else None


def _ratelimitd(key: str, durability: str | None = "default") -> Callable[[str], Server]:
    """Return a starter of the daemon on the bench tier table with ``durability`` ("default": memory if known).

    The started daemon has answered one ``acquire`` of ``key`` without an error.
    """

    def start(tmp: str) -> Server:
        mode = _durability_memory() if durability == "default" else durability
        server = start_ratelimitd(tmp, tier_table(), durability=mode)
        probe(server, key)
        return server

    return start


def _with_client(start: Callable[[str], Server]) -> Callable[[str], Server]:
    """Wrap a daemon starter so that the row is skipped while ``ratelimitd_client.Client`` is missing."""

    def checked(tmp: str) -> Server:
        missing = client_available()
        if missing:
            raise Unavailable(missing)
        return start(tmp)

    return checked


def _sqlite(tmp: str) -> Server:
    """Return the "server" of the embedded SQLite backend: only the database path, no process."""
    return Server("pyrate-sqlite", os.path.join(tmp, "pyrate.sqlite"))


def stop_backend(server: Server) -> None:
    """Remove what an embedded backend left (its database files); servers are stopped by ``stop_server``."""
    if server.proc is None:
        for path in glob.glob(server.socket + "*"):
            os.unlink(path)


def _client(key: str) -> Callable[[Server], dict]:
    return lambda s: {"kind": "rl-client", "socket": s.socket, "key": key, "endpoint": "rest"}


def _raw(key: str) -> Callable[[Server], dict]:
    return lambda s: {"kind": "raw", "socket": s.socket, "key": key, "endpoint": "rest"}


def _pipe(key: str) -> Callable[[Server], dict]:
    return lambda s: {"mode": "pipelined", "socket": s.socket, "key": key, "endpoint": "rest", "depth": PIPELINE_DEPTH}


def _async(key: str) -> Callable[[Server], dict]:
    return lambda s: {"mode": "async", "socket": s.socket, "key": key, "endpoint": "rest", "depth": PIPELINE_DEPTH}


def _limits(kind: str) -> Callable[[Server], dict]:
    return lambda s: {"kind": kind, "socket": s.socket, "key": "bench", "rate": "1000000/minute"}


def _pyrate(kind: str) -> Callable[[Server], dict]:
    return lambda s: {"kind": kind, "socket": s.socket, "key": "bench", "limit": _HUGE_LIMIT}


def _floor(kind: str) -> Callable[[str], Server]:
    return lambda tmp: start_floor(kind, tmp)


BACKENDS: list[Backend] = [
    Backend("rl-log", "ratelimitd, sliding log, `Client`", "one", _with_client(_ratelimitd("bench-log")), _client("bench-log")),
    Backend("rl-gcra", "ratelimitd, GCRA, `Client`", "one", _with_client(_ratelimitd("bench-gcra")), _client("bench-gcra")),
    Backend("rl-log-raw", "ratelimitd, sliding log, thin raw client", "one", _ratelimitd("bench-log"), _raw("bench-log")),
    Backend("rl-log-batched", "ratelimitd, sliding log, `--durability batched`", "one",
            _with_client(_ratelimitd("bench-log", "batched")), _client("bench-log")),
    Backend("rl-log-strict", "ratelimitd, sliding log, `--durability strict`", "one",
            _with_client(_ratelimitd("bench-log", "strict")), _client("bench-log")),
    Backend("floor-trio-stream", "floor: Trio `SocketStream`", "one", _floor("trio-stream"), _raw("bench")),
    Backend("floor-trio-socket", "floor: raw `trio.socket`", "one", _floor("trio-socket"), _raw("bench")),
    Backend("floor-asyncio", "floor: asyncio streams", "one", _floor("asyncio"), _raw("bench")),
    Backend("floor-trio-lowlevel", "floor: Trio `wait_readable` + stdlib non-blocking socket", "one",
            _floor("trio-lowlevel"), _raw("bench")),
    Backend("limits-moving", "limits moving window, Redis + hiredis", "one", start_redis, _limits("limits-moving"),
            server_what="redis"),
    Backend("limits-fixed", "limits fixed window, Redis + hiredis", "one", start_redis, _limits("limits-fixed"),
            server_what="redis"),
    Backend("limits-sliding", "limits sliding-window counter, Redis + hiredis", "one", start_redis,
            _limits("limits-sliding"), server_what="redis"),
    Backend("pyrate-redis", "PyrateLimiter v4 Redis bucket + hiredis", "one", start_redis, _pyrate("pyrate-redis"),
            server_what="redis"),
    Backend("pyrate-sqlite", "PyrateLimiter v4 SQLite bucket + file lock", "one", _sqlite, _pyrate("pyrate-sqlite"),
            server_what="none (embedded)"),
    Backend("floor-trio-stream-pipe", f"floor: Trio `SocketStream`, {PIPELINE_DEPTH} in flight", "pipelined",
            _floor("trio-stream"), _pipe("bench")),
    Backend("rl-log-pipe", f"ratelimitd, sliding log, {PIPELINE_DEPTH} in flight (raw frames)", "pipelined",
            _ratelimitd("bench-log"), _pipe("bench-log")),
    Backend("rl-log-async", f"ratelimitd, sliding log, `AsyncClient` (asyncio), {PIPELINE_DEPTH} tasks", "pipelined",
            _with_client(_ratelimitd("bench-log")), _async("bench-log")),
    Backend("rl-log-unloaded", "ratelimitd, sliding log, `Client`, 1 client", "unloaded",
            _with_client(_ratelimitd("bench-log")), _client("bench-log"), clients=1),
    Backend("floor-trio-stream-unloaded", "floor: Trio `SocketStream`, 1 client", "unloaded",
            _floor("trio-stream"), _raw("bench"), clients=1),
]  # fmt: skip

# the row each group's ratios are taken to, and the one used when that is unavailable
REFERENCE = {
    "one": ("rl-log", "rl-log-raw"),
    "pipelined": ("rl-log-pipe",),
    "unloaded": ("rl-log-unloaded",),
}
