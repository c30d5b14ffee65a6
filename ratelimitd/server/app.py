"""The running daemon: accept connections, dispatch requests, serve waiters, reload, stop.

``Server.serve`` is a "run until cancelled" Trio function in the style of
Trio's own servers: it takes an already-listening socket (bound by
``listener.bind_unix`` or inherited from systemd), calls ``task_status.started()``
once it accepts, and returns after ``stop()`` (SIGTERM/SIGINT) when every
waiter has been answered. Every task lives in one of its nurseries.
"""

from __future__ import annotations

import errno
import logging
import os
import signal
import socket as stdlib_socket
import secrets
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

import trio
from ratelimitd_client.display import shown
from ratelimitd_client.protocol import PROTOCOL_VERSION
from ratelimitd_client.wire import DEFAULT_MAX_FRAME, encode

from .. import __version__
from ..engine import Answer, Decision, Engine
from ..errors import ConfigError, RequestError, ResourceLimit, ShuttingDown, UnknownOp
from ..tiers import load_file
from ..tiers.model import TierTable
from .clock import Clock
from .connection import Connection
from .ops import OPS, acquire, decision_reply, error_reply
from .access import restricted_keys
from .peers import Peer, peer_of
from .persistence import Persister
from .timer import Alarm

__all__ = ["Settings", "Server"]

log = logging.getLogger("ratelimitd")



@dataclass
class Settings:
    """Where the daemon listens, what it loads, and its limits."""

    config: str
    socket: str
    state: str | None = None
    max_frame: int = DEFAULT_MAX_FRAME
    durability: str = "batched"
    # Per-client limits (docs/security.md): each bounds what one misbehaving client can take.
    max_connections: int = 4096  # all clients; each costs a file descriptor and a few KiB
    max_connections_per_uid: int = 1024  # so one user cannot take them all
    max_waiters_per_connection: int = 1024  # queued acquires of one connection
    max_waiters_per_uid: int = 8192
    max_unread: int = 4 << 20  # bytes of replies a client may leave unread before it is dropped
    first_frame_timeout: float = 10.0  # a connection that sends nothing this long is closed
    idle_timeout: float = 900.0  # one with no request, waiter or lease this long is closed (clients reconnect)


def _load(path: str) -> TierTable:
    """Load the tier table at ``path``; a file that cannot be read is a ``ConfigError`` too."""
    try:
        return load_file(path)
    except (OSError, ValueError) as exc:  # missing, unreadable, a path with a NUL byte
        raise ConfigError(f"cannot read the tier table: {exc}", file=shown(path, 200)) from exc


class Server:
    """The daemon's state outside the engine: connections, counters, the scheduler, the table's origin."""

    def __init__(self, settings: Settings, table: TierTable) -> None:
        self.settings = settings
        self.engine = Engine(table, strict_default=settings.durability == "strict", run_tag=secrets.token_hex(3))
        self.restricted = restricted_keys(table)  # keys with an allow list
        self.clock: Clock  # set by serve(), inside Trio
        self.persister: Persister | None = None  # set by the CLI unless --durability memory
        self.connections: set[Connection] = set()
        self.started = time.time()
        self.loaded = time.time()
        self.reload_error: str | None = None
        self.errors = 0
        self._connection_count = 0
        self._per_uid: Counter[int] = Counter()
        self._wakeup = trio.Event()
        self._stop = trio.Event()
        self._nursery: trio.Nursery | None = None
        # systemd notifications (server/systemd.py Notifier), set by the CLI; fields as keywords
        self.notify: Callable[..., object] = lambda **fields: None

    # -- requests ---------------------------------------------------------------------------

    def handle(self, message: Any, conn: Connection) -> bytes | None:
        """Answer one decoded frame; return the encoded reply, or None if it is answered later."""
        if type(message) is not dict:
            self.errors += 1
            reason = getattr(message, "reason", None) or f"a request must be a CBOR map, not {type(message).__name__}"
            return encode({"error": "bad-request", "message": reason})
        rid = message.get("id")
        if rid is not None and type(rid) not in (int, str):
            self.errors += 1
            return encode({"error": "bad-request", "message": f"field 'id' must be an integer or a string, not {type(rid).__name__}"})
        op = message.get("op")
        try:
            if op == "acquire":
                return acquire(self, message, conn)
            handler = OPS.get(op) if type(op) is str else None
            if handler is None:
                raise UnknownOp(f"unknown op {shown(op)}; this daemon knows {sorted(('acquire', *OPS))}")
            reply = handler(self, message, conn)
            if reply is None:
                return None
            reply["id"] = rid
            return encode(reply)
        except RequestError as exc:
            self.errors += 1
            return encode(error_reply(rid, exc))
        except Exception:  # one bad request must never take the daemon down
            self.errors += 1
            log.exception("internal error handling op %s", shown(op))
            return encode({"id": rid, "error": "internal", "message": f"internal error handling op {shown(op)}; see the daemon's log"})

    def wake_scheduler(self) -> None:
        """Make the scheduler look at the waiters again (something changed)."""
        self._wakeup.set()

    def spawn(self, function: Callable[[], Awaitable[None]]) -> None:
        """Run ``function`` as a task of the daemon (for ops that must do I/O)."""
        assert self._nursery is not None
        self._nursery.start_soon(function)

    def adopt_lease(self, conn: Connection, decision: Decision) -> None:
        """Remember that ``conn`` holds the lease ``decision`` granted (released when it closes)."""
        lease_id = decision.extra.get("lease") if decision.extra else None
        if lease_id is not None:
            conn.leases.add(lease_id)
            self.wake_scheduler()  # its TTL, idle timeout or time quota may be the next thing to happen
            lease = self.engine.leases.by_id.get(lease_id)
            if lease is not None and lease.holder is None:
                lease.holder = conn.peer

    def push_notices(self) -> None:
        """Push every lease-ended notice the engine queued to the holder's connection."""
        notices, self.engine.leases.notices = self.engine.leases.notices, []
        for token, message in notices:
            conn = token[0]
            conn.leases.discard(message["lease"])
            conn.push(encode(message))
        self.wake_scheduler()  # slots were freed

    def answer(self, answers: list[Answer]) -> None:
        """Send each waiter its decision or error."""
        for waiter, result in answers:
            conn, rid = waiter.token
            conn.waiters.discard(waiter)
            if type(result) is Decision:
                if result.extra:
                    self.adopt_lease(conn, result)
                if result.strict and self.persister is not None:
                    self.persister.hold_reply(conn, encode(decision_reply(rid, result)), rid)
                else:
                    conn.push(encode(decision_reply(rid, result)))
            else:
                conn.push(encode(error_reply(rid, result)))

    # -- administration ---------------------------------------------------------------------

    async def reload(self, path: str | None = None) -> dict[str, Any]:
        """Load the tier table again (from ``path`` if given) and apply it, keeping counters.

        Raises ``ConfigError`` (and keeps the current table) when the file is invalid.
        """
        path = path or self.settings.config
        self.notify(RELOADING=1)
        try:
            table = await trio.to_thread.run_sync(_load, path)
        except ConfigError as exc:
            self.reload_error = str(exc)
            log.error("reload refused, keeping the current tier table: %s", exc)
            self.notify(READY=1, STATUS=f"reload refused, previous table kept: {exc}")
            raise
        self.answer(self.engine.reload(table, self.clock.now()))
        self.restricted = restricted_keys(table)
        self.settings.config = path
        self.loaded = time.time()
        self.reload_error = None
        self.wake_scheduler()
        log.info("reloaded tier table %s: %d keys", path, len(table.keys))
        self.notify(READY=1, STATUS=f"reloaded {path}: {len(table.keys)} keys")
        return {"reloaded": True, "config": path, "keys": len(table.keys)}

    def status(self) -> dict[str, Any]:
        """Return what ``status`` reports."""
        engine = self.engine
        return {
            "version": __version__,
            "protocol": PROTOCOL_VERSION,
            "pid": os.getpid(),
            "started": self.started,
            "uptime": time.time() - self.started,
            "config": self.settings.config,
            "loaded": self.loaded,
            "socket": self.settings.socket,
            "state": self.settings.state,
            "durability": self.settings.durability,
            "keys": len(engine.table.keys),
            "buckets": sum(1 for _ in engine.buckets()),
            "connections": len(self.connections),
            "waiters": engine.waiters,
            "leases": len(engine.leases.by_id),
            "grants": engine.grants,
            "denials": engine.denials,
            "errors": self.errors,
            "reload_error": self.reload_error,
            "persistence": self.persister.status() if self.persister else {"durability": "memory"},
            "clients": [
                {
                    "pid": conn.peer.pid if conn.peer else None,
                    "uid": conn.peer.uid if conn.peer else None,
                    "waiters": len(conn.waiters),
                    "leases": len(conn.leases),
                    "queued_bytes": conn.queued_bytes,
                }
                for conn in self.connections
            ],
        }

    def stop(self) -> None:
        """Begin a clean stop: no new connections, waiters answered, then ``serve`` returns."""
        if not self._stop.is_set():
            self.notify(STOPPING=1)
        self._stop.set()

    # -- tasks ------------------------------------------------------------------------------

    async def serve(
        self, listening: stdlib_socket.socket, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Serve clients on ``listening`` until ``stop()``; see the module docstring."""
        self.clock = Clock()
        listener = trio.socket.from_stdlib_socket(listening)
        if self.persister is not None:
            await self.persister.restore(self.engine, self.clock)
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            writer = trio.CancelScope()
            writer_done = trio.Event()
            if self.persister is not None:
                nursery.start_soon(self._write_state, writer, writer_done)
            nursery.start_soon(self._scheduler)
            nursery.start_soon(self._sweep)
            await nursery.start(self._signals)  # handled before READY=1: systemd may stop us at once
            async with trio.open_nursery() as handlers:
                handlers.start_soon(self._accept, listener, handlers)
                log.info("listening on %s with %d keys from %s", self.settings.socket, len(self.engine.table.keys), self.settings.config)
                task_status.started()
                self.notify(READY=1)
                await self._stop.wait()
                log.info("stopping: answering %d waiters and closing %d connections", self.engine.waiters, len(self.connections))
                listener.close()
                self._cancel_waiters()
                await self._drain()
                handlers.cancel_scope.cancel()
            if self.persister is not None:
                writer.cancel()  # a flush in progress finishes first: to_thread is not abandoned
                await writer_done.wait()
                await self.persister.close(self.engine, self.clock)
            nursery.cancel_scope.cancel()

    async def _write_state(self, scope: trio.CancelScope, done: trio.Event) -> None:
        """Run the persister's writer in ``scope``, so that stopping can end it before the final flush."""
        assert self.persister is not None
        try:
            with scope:
                await self.persister.run(self.engine, self.clock)
        finally:
            done.set()

    async def _accept(self, listener: trio.socket.SocketType, handlers: trio.Nursery) -> None:
        while True:
            try:
                sock, _ = await listener.accept()
            except trio.ClosedResourceError:
                return  # stop() closed the listener
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    log.error("cannot accept a connection: %s; retrying", exc.strerror)
                    await trio.sleep(0.1)
                    continue
                raise
            handlers.start_soon(self._serve_connection, sock)

    async def _serve_connection(self, sock: trio.socket.SocketType) -> None:
        self._connection_count += 1
        peer = peer_of(sock)
        refusal = self._too_many(peer)
        if refusal is not None:
            log.warning("refusing a connection from %s: %s", peer.describe() if peer else "?", refusal)
            with trio.move_on_after(1):
                try:
                    await sock.send(encode({"error": "resource-limit", "message": refusal}))
                except OSError:
                    pass
            sock.close()
            return
        raw = stdlib_socket.socket(fileno=sock.detach())  # the hot path drives the plain socket itself
        raw.setblocking(False)
        sock = raw
        conn = Connection(raw, self._connection_count, peer, self.settings.max_unread)
        self.connections.add(conn)
        if peer is not None:
            self._per_uid[peer.uid] += 1
        try:
            await conn.run(self.handle, self.settings.max_frame)
        except Exception:  # one connection's failure ends that connection, never the daemon
            log.exception("internal error on the connection of %s; closing it", peer.describe() if peer else "?")
        finally:
            self.connections.discard(conn)
            if peer is not None:
                self._per_uid[peer.uid] -= 1
            for waiter in conn.waiters:
                self.engine.cancel(waiter)
            if conn.leases and not self._stop.is_set():
                self.engine.release_all(conn.leases, self.clock.now())  # a crashed script gives its slots back
            conn.leases.clear()  # when stopping, leases are kept: saved, their clients reattach after the restart
            if conn.waiters or self.engine.leases.notices:
                conn.waiters.clear()
                self.push_notices()
            self.wake_scheduler()
            sock.close()

    def _too_many(self, peer: Peer | None) -> str | None:
        """Return why a new connection from ``peer`` is refused, or None."""
        settings = self.settings
        if len(self.connections) >= settings.max_connections:
            return f"the daemon has {len(self.connections)} connections, its maximum (max_connections)"
        if peer is not None and self._per_uid[peer.uid] >= settings.max_connections_per_uid:
            return f"uid {peer.uid} has {self._per_uid[peer.uid]} connections, the maximum per user (max_connections_per_uid)"
        return None

    def check_waiters(self, conn: Connection) -> None:
        """Raise ``ResourceLimit`` when ``conn`` (or its user) may not queue one more waiting acquire."""
        settings = self.settings
        if len(conn.waiters) >= settings.max_waiters_per_connection:
            raise ResourceLimit(
                f"this connection has {len(conn.waiters)} waiting acquires, the maximum (max_waiters_per_connection)"
            )
        if conn.peer is not None:
            uid = conn.peer.uid
            waiting = sum(len(other.waiters) for other in self.connections if other.peer is not None and other.peer.uid == uid)
            if waiting >= settings.max_waiters_per_uid:
                raise ResourceLimit(f"uid {uid} has {waiting} waiting acquires, the maximum per user (max_waiters_per_uid)")

    async def _sweep(self) -> None:
        """Close connections that never sent a request, or sat idle with nothing held, too long."""
        settings = self.settings
        period = min(max(min(settings.first_frame_timeout, settings.idle_timeout) / 4, 0.05), 5.0)
        while True:
            await trio.sleep(period)
            now = trio.current_time()
            for conn in list(self.connections):
                if conn.batches != conn.swept_batches:
                    conn.swept_batches = conn.batches
                    conn.last_seen = now
                elif conn.batches == 0 and now - conn.opened >= settings.first_frame_timeout:
                    conn.abort(f"it sent nothing for {settings.first_frame_timeout:g} s")
                elif not conn.waiters and not conn.leases and now - conn.last_seen >= settings.idle_timeout:
                    conn.abort(f"it was idle for {settings.idle_timeout:g} s (clients reconnect by themselves)")

    async def _scheduler(self) -> None:
        alarm = Alarm.create()  # microsecond wake-ups where the kernel offers a timerfd
        if alarm is not None:
            assert self._nursery is not None
            self._nursery.start_soon(alarm.ring, self.wake_scheduler)
        while True:
            self._wakeup = trio.Event()
            answers, wake = self.engine.service(self.clock.now())
            if answers:
                self.answer(answers)
            if self.engine.leases.notices:
                self.push_notices()
            if wake is None:
                await self._wakeup.wait()
            elif alarm is not None:
                alarm.arm(self.clock.trio_time(wake))
                await self._wakeup.wait()
            else:
                with trio.move_on_at(self.clock.trio_time(wake)):
                    await self._wakeup.wait()

    async def _signals(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        with trio.open_signal_receiver(signal.SIGHUP, signal.SIGTERM, signal.SIGINT) as signals:
            task_status.started()
            async for signum in signals:
                if signum == signal.SIGHUP:
                    log.info("SIGHUP: reloading %s", self.settings.config)
                    try:
                        await self.reload()
                    except ConfigError:
                        pass  # logged by reload; the old table stays
                else:
                    log.info("%s: stopping", signal.Signals(signum).name)
                    self.stop()

    def _cancel_waiters(self) -> None:
        for conn in self.connections:
            for waiter in conn.waiters:
                self.engine.cancel(waiter)
                conn.push(encode(error_reply(waiter.token[1], ShuttingDown("the daemon is stopping; the request was not granted"))))
            conn.waiters.clear()

    async def _drain(self) -> None:
        """Give connections up to a second to write what they have queued."""
        with trio.move_on_after(1.0):
            while any(conn.queued_bytes for conn in self.connections if not conn.closed):
                await trio.sleep(0.005)
