"""The async client, for asyncio and Trio alike: many tasks, one pipelined connection.

Every call registers a waiter under its request ``id``, writes its frame
(directly when the socket takes it whole, else in turn under a lock) and waits
for its reply. There is no background task (Trio would need a nursery for it):
whichever waiting task finds nobody reading becomes the reader, routes every
reply it decodes to its waiter, and when its own reply has come hands the
reading over to a task still waiting. So a request the daemon holds for 30 s
never delays another task's quick one.

A connection that breaks fails every waiter on it; each retries once on a new
connection (a retried ``acquire`` may be charged twice: the safe side). A
call cancelled after its request was sent leaves the request with the daemon:
a waiting acquire keeps its place until granted (and charged) or timed out.

Leases are kept as ``Client`` keeps them (``leases.LeaseBook``): a new
connection first renews every lease held, and ``poll()`` reads pushes while
no call is in flight.
"""

from __future__ import annotations

import os
import socket as _socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from .backends import Backend, current_backend
from .amounts import Amount, to_amount
from .client import DEFAULT_SETTLE_WITHIN, _timeout, field
from .discovery import SocketPath, resolve_socket
from .errors import DaemonUnavailable, RateLimited, RatelimitdError, UnknownLease
from .feedback import report_fields
from .leases import LeaseBook, LeaseEndHook, lease_id, released_ids
from .messages import RECV_SIZE, Inbox, PushHook, acquire_message, hello_message, request_message, result
from .permit import Permit
from .routing import RouteTable
from .wire import encode

__all__ = ["AsyncClient"]

_getpid = os.getpid


class _ConnectionLost(Exception):
    """The connection broke before the reply came; the request may be sent again."""


class _Waiter:
    __slots__ = ("reply", "event")

    def __init__(self) -> None:
        self.reply: Any = None  # the reply map, or the exception that ends the wait
        self.event: Any = None  # set while the task sleeps, to wake it


class _Link:
    """One connection of an ``AsyncClient``: its socket, its inbox, and the requests waiting on it."""

    __slots__ = ("sock", "backend", "inbox", "pending", "watchers", "reading", "senders", "send_lock", "broken", "pid")

    def __init__(self, sock: _socket.socket, backend: Backend, hooks: list[PushHook]) -> None:
        self.sock = sock
        self.backend = backend
        self.inbox = Inbox(hooks)
        self.pending: dict[Any, _Waiter] = {}
        self.watchers: list[_Waiter] = []  # poll() calls waiting for a push
        self.reading = False
        self.senders = 0  # tasks sending the slow way (socket buffer full); others queue behind them
        self.send_lock = backend.lock()
        self.broken: BaseException | None = None
        self.pid = _getpid()

    async def call(self, rid: Any, frame: bytes) -> dict[str, Any]:
        """Send ``frame`` and return the reply of id ``rid``; raise ``_ConnectionLost`` if the link breaks first."""
        waiter = _Waiter()
        pending = self.pending
        pending[rid] = waiter
        waited = False
        try:
            await self.send(frame)
            while waiter.reply is None:
                if self.reading:
                    waiter.event = event = self.backend.event()
                    await event.wait()
                    waited = True
                else:
                    waited = await self._read_until(waiter) or waited
            if not waited:
                # the reply was there at the first read: let other tasks run all the same
                await self.backend.pass_turn()
        except BaseException:
            # Cancelled or timed out: this task may have just been handed the reading
            # and must not leave the others asleep with nobody reading.
            if pending.get(rid) is waiter:
                del pending[rid]
            if not self.reading and self.broken is None:
                self._hand_over()
            raise
        finally:
            if pending.get(rid) is waiter:
                del pending[rid]
            waiter.event = None
        reply = waiter.reply
        if type(reply) is dict:
            return reply
        if isinstance(reply, _ConnectionLost):
            raise _ConnectionLost(*reply.args)
        raise reply

    async def watch(self) -> None:
        """Return once a push has been read (by this task or the reader), or the link broke."""
        waiter = _Waiter()
        self.watchers.append(waiter)
        try:
            while waiter.reply is None and self.broken is None:
                if self.reading:
                    waiter.event = event = self.backend.event()
                    await event.wait()
                else:
                    await self._read_until(waiter)
        finally:
            self.watchers.remove(waiter)
            waiter.event = None
            if not self.reading and self.broken is None:
                self._hand_over()

    async def send(self, frame: bytes | memoryview) -> None:
        """Write ``frame`` whole, after any frame another task is still writing."""
        if self.broken is not None:
            raise _ConnectionLost("the connection broke")
        sent = 0
        if not self.senders:
            try:
                sent = self.sock.send(frame)
            except BlockingIOError:
                pass
            except OSError as exc:
                self.fail(_ConnectionLost(str(exc)))
                raise _ConnectionLost(str(exc)) from exc
            if sent == len(frame):
                return
        rest = memoryview(frame)[sent:]
        self.senders += 1
        try:
            async with self.send_lock:
                while rest:
                    if self.broken is not None:
                        raise _ConnectionLost("the connection broke")
                    try:
                        sent += (n := self.sock.send(rest))
                    except BlockingIOError:
                        await self.backend.wait_writable(self.sock)
                        continue
                    except OSError as exc:
                        self.fail(_ConnectionLost(str(exc)))
                        raise _ConnectionLost(str(exc)) from exc
                    rest = rest[n:]
        except BaseException:
            if sent and rest and self.broken is None:
                # half a frame is on the wire: the stream is out of step for good
                self.fail(_ConnectionLost("a request was interrupted half sent"))
            raise
        finally:
            self.senders -= 1
            if self.broken is not None:
                self._close_if_idle()

    async def _read_until(self, waiter: _Waiter) -> bool:
        """Read and route replies until ``waiter`` has one; report whether the task had to wait."""
        self.reading = True
        waited = False
        sock = self.sock
        inbox = self.inbox
        pending = self.pending
        pushes = inbox.pushes
        try:
            while waiter.reply is None and self.broken is None:
                try:
                    data = sock.recv(RECV_SIZE)
                except BlockingIOError:
                    await self.backend.wait_readable(sock)
                    waited = True
                    continue
                except OSError as exc:
                    self.fail(_ConnectionLost(str(exc)))
                    break
                if not data:
                    self.fail(_ConnectionLost("the daemon closed the connection"))
                    break
                for rid, reply in inbox.receive(data):
                    other = pending.get(rid)
                    if other is not None and other.reply is None:
                        other.reply = reply
                        if other.event is not None:
                            other.event.set()
                if inbox.pushes != pushes:
                    pushes = inbox.pushes
                    for watcher in self.watchers:
                        watcher.reply = True
                        if watcher.event is not None:
                            watcher.event.set()
                if inbox.failure is not None:
                    self.fail(inbox.failure)
        finally:
            self.reading = False
            if self.broken is not None:
                self._close_if_idle()
            else:
                self._hand_over()
        return waited

    def _hand_over(self) -> None:
        """Wake one task still asleep without its reply (or a poll still waiting), to take over the reading."""
        for other in self.pending.values():
            if other.reply is None and other.event is not None:
                other.event.set()
                return
        for other in self.watchers:
            if other.reply is None and other.event is not None:
                other.event.set()
                return

    def fail(self, reason: BaseException) -> None:
        """End this link: every waiter gets ``reason``, the socket is shut down and closed once idle."""
        if self.broken is not None:
            return
        self.broken = reason
        for waiter in [*self.pending.values(), *self.watchers]:
            if waiter.reply is None:
                waiter.reply = reason
                if waiter.event is not None:
                    waiter.event.set()
        try:
            self.sock.shutdown(_socket.SHUT_RDWR)  # wakes a task blocked on the socket
        except OSError:
            pass
        self._close_if_idle()

    def _close_if_idle(self) -> None:
        if not self.reading and not self.senders and self.sock.fileno() >= 0:
            self.backend.notify_closing(self.sock)
            self.sock.close()


async def _connect(backend: Backend, path: str) -> _socket.socket:
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        try:
            sock.connect(path)
        except BlockingIOError:  # the listen backlog is full: wait for room
            await backend.wait_writable(sock)
            error = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_ERROR)
            if error:
                raise OSError(error, os.strerror(error)) from None
    except BaseException:
        sock.close()
        raise
    return sock


class AsyncClient:
    """An async connection to ratelimitd, under asyncio or Trio; tasks may share one.

    The same arguments and methods as ``Client``, as coroutines;
    ``async with client.permit(...)``. The running library is detected on the
    first call; a client belongs to one event loop until ``close()``.
    ``connections`` counts the connections opened so far.
    """

    def __init__(self, socket: SocketPath | None = None, *, timeout: float | None = None, name: str | None = None) -> None:
        self.path, self.origin = resolve_socket(socket)
        self.timeout = _timeout(timeout)
        self.name = name
        self._leases = LeaseBook()
        self._link: _Link | None = None
        self._backend: Backend | None = None
        self._connect_lock: Any = None
        self._last_id = 0
        self.connections = 0
        self._hooks: list[PushHook] = [self._leases.push]
        self._greeting: bytes | None = None
        if name is not None:
            hello = hello_message(name)
            hello["id"] = "hello"  # its reply is not waited for; replies of unknown ids are dropped
            self._greeting = encode(hello)

    def __repr__(self) -> str:
        state = "connected" if self._link is not None and self._link.broken is None else "not connected"
        return f"<AsyncClient {self.path!r} {state}>"

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def connect(self) -> AsyncClient:
        """Open the connection now rather than on the first call; raise ``DaemonUnavailable`` if it fails."""
        try:
            await self._backend_now().run_with_timeout(self.timeout, self._get_link)
        except TimeoutError:
            raise DaemonUnavailable(self.path, f"no connection within {self.timeout:g} s", self.origin, hint=False) from None
        return self

    async def close(self) -> None:
        """Close the connection and give up the leases held (the daemon releases them); waiting calls raise ``RatelimitdError``.

        A later call reconnects, and renews no lease held before.
        """
        link, self._link = self._link, None
        self._backend = self._connect_lock = None
        self._leases.release_all()
        if link is not None:
            link.fail(RatelimitdError(f"the client of {self.path} was closed while the request waited"))

    aclose = close

    def on_push(self, callback: PushHook) -> PushHook:
        """Register ``callback`` to be called with every push (a message without ``id``); return it.

        Called from whichever task is reading; it must not block. An exception
        from a callback is logged and otherwise ignored.
        """
        self._hooks.append(callback)
        return callback

    def on_lease_end(self, callback: LeaseEndHook) -> LeaseEndHook:
        """Register ``callback`` to be called with each ``Lease`` the daemon takes away; return it.

        As ``Client.on_lease_end``; called from a task of this client once the
        call that read the news has its reply, or from ``poll()``. It must not
        block; it may start tasks.
        """
        self._leases.callbacks.append(callback)
        return callback

    async def poll(self, timeout: float = 0.0) -> int:
        """Read what the daemon sends until a push comes or ``timeout`` seconds pass; return how many pushes came.

        Pushes (a lease evicted…) are otherwise read only while some call waits
        for its reply. With ``timeout`` 0, reads only what has already arrived.
        Returns 0 at once when not connected; a connection that broke is left
        for the next call to replace (which renews the leases held).
        """
        link = self._link
        if link is None or link.broken is not None or link.pid != _getpid():
            return 0
        before = link.inbox.pushes
        try:
            await self._backend_now().run_with_timeout(timeout, link.watch)
        except TimeoutError:
            pass
        if self._leases.due:
            self._leases.fire()
        return link.inbox.pushes - before

    # -- requests ---------------------------------------------------------------------------

    async def request(self, op: str, /, **fields: Any) -> dict[str, Any]:
        """Send ``op`` with ``fields`` (those that are None left out) and return the reply map without ``id``.

        Raises as ``Client.request`` does.
        """
        return result(await self._call(request_message(op, fields)))

    async def acquire(
        self,
        key: str,
        endpoint: str,
        cost: object = None,
        wait: float | None = None,
        priority: int = 0,
        *,
        scopes: dict[str, str] | None = None,
        reserve: float | None = None,
    ) -> Permit:
        """Ask for a permit to call ``endpoint`` with ``key``; return the ``Permit``, granted or not.

        As ``Client.acquire``; other tasks' calls go on while this one waits.
        """
        reply = result(await self._call(acquire_message(key, endpoint, cost, wait, priority, scopes, reserve)))
        if "lease" in reply:
            return self._leases.granted(reply, key, endpoint, reserve is not None)
        return Permit.from_reply(reply)

    @asynccontextmanager
    async def permit(
        self,
        key: str,
        endpoint: str,
        cost: object = None,
        wait: float | None = None,
        priority: int = 0,
        *,
        scopes: dict[str, str] | None = None,
    ) -> AsyncIterator[Permit]:
        """Acquire and yield the granted ``Permit``; raise ``RateLimited`` if not granted.

        A lease that the permit carries is released on exit, even when the
        block was cancelled; one the daemon already ended is not, and nothing
        is raised for it.
        """
        permit = await self.acquire(key, endpoint, cost, wait, priority, scopes=scopes)
        if not permit.granted:
            raise RateLimited(permit, key, endpoint, wait)
        try:
            yield permit
        finally:
            if permit.lease is not None:
                with self._backend_now().shield():
                    await self._release_quietly(permit)

    @asynccontextmanager
    async def reserve(
        self,
        key: str,
        endpoint: str,
        cost: object,
        within: float = DEFAULT_SETTLE_WITHIN,
        wait: float | None = None,
        priority: int = 0,
        *,
        scopes: dict[str, str] | None = None,
    ) -> AsyncIterator[Permit]:
        """Reserve ``cost`` and yield the granted ``Permit``; ``await settle(permit, real_cost)`` inside.

        As ``Client.reserve``.
        """
        permit = await self.acquire(key, endpoint, cost, wait, priority, scopes=scopes, reserve=within)
        if not permit.granted:
            raise RateLimited(permit, key, endpoint, wait)
        try:
            yield permit
        finally:
            with self._backend_now().shield():
                await self._release_quietly(permit)

    async def release(self, lease: object) -> list[str]:
        """Release ``lease`` and the leases taken inside it; return the ids released. As ``Client.release``."""
        ident = lease_id(lease)
        try:
            released = released_ids(await self.request("release", lease=ident))
        except UnknownLease:
            self._forget(ident, "lost")
            raise
        for other in released:
            self._forget(other, "released")
        return released

    async def renew(self, lease: object) -> dict[str, Any]:
        """Tell the daemon ``lease`` is in use; return its description. As ``Client.renew``."""
        ident = lease_id(lease)
        try:
            return await self.request("renew", lease=ident)
        except UnknownLease:
            self._forget(ident, "lost")
            raise

    async def settle(self, lease: object, cost: object) -> Amount:
        """Settle the reservation ``lease`` at its real ``cost``; return the difference charged. As ``Client.settle``."""
        ident = lease_id(lease)
        amount = cost if type(cost) is int and cost >= 0 else to_amount(cost, "cost")
        try:
            reply = await self.request("settle", lease=ident, cost=amount)
        except UnknownLease:
            self._forget(ident, "lost")
            raise
        self._forget(ident, "settled")
        return field(reply, "difference", "settle")

    async def leases(self, key: str | None = None) -> list[dict[str, Any]]:
        """Return every lease the daemon holds (of ``key`` only, if given). As ``Client.leases``."""
        return field(await self.request("leases", key=key), "leases", "leases")

    async def report(self, key: str, endpoint: str | None, status: int, **said: Any) -> list[dict[str, Any]]:
        """Tell the daemon what the provider answered; return what it did. As ``Client.report``."""
        fields = report_fields(status, **said)
        if endpoint is None and "bucket" not in fields:
            raise TypeError("report needs an endpoint, or a bucket= naming the bucket that refused")
        return field(await self.request("report", key=key, endpoint=endpoint, **fields), "applied", "report")

    async def routes(self, key: str) -> RouteTable:
        """Return the routes of ``key``'s provider (which request is which endpoint), first match first."""
        return RouteTable.from_reply(await self.request("routes", key=key))

    async def hello(self, key: str | None = None) -> dict[str, Any]:
        """Return the daemon's greeting: protocol, server, time, pid, and ``limits`` of ``key`` if given."""
        return result(await self._call(hello_message(self.name, key)))

    async def status(self) -> dict[str, Any]:
        """Return the daemon's status map (version, uptime, config, counters…)."""
        return await self.request("status")

    async def keys(self) -> list[dict[str, Any]]:
        """Return every key alias of the tier table as ``{"key", "provider", "tier", "group"}`` maps."""
        return field(await self.request("keys"), "keys", "keys")

    async def show(self, key: str) -> dict[str, Any]:
        """Return ``key``'s provider, tier, endpoints and buckets with their use now."""
        return await self.request("show", key=key)

    async def reload(self, path: SocketPath | None = None) -> dict[str, Any]:
        """Reload the tier table (from ``path`` if given) and return the reply; raise ``InvalidTable`` if refused."""
        return await self.request("reload", path=None if path is None else os.fspath(path))

    async def reset(self, key: str, endpoint: str | None = None) -> list[str]:
        """Forget what ``key`` spent (only ``endpoint``'s buckets, if given); return the names of the buckets reset."""
        return field(await self.request("reset", key=key, endpoint=endpoint), "reset", "reset")

    async def _release_quietly(self, permit: Permit) -> None:
        """Release ``permit``'s lease unless it has ended; raise nothing for a lease already gone."""
        state = permit.lease_state
        if state is not None and state.ended:
            return
        try:
            await self.release(permit.lease)
        except (UnknownLease, DaemonUnavailable):
            # ended meanwhile, or the connection is gone and the daemon released it with it
            self._forget(permit.lease, "released")

    def _forget(self, ident: str, reason: str) -> None:
        if reason == "lost":
            self._leases.lost(ident)
        else:
            self._leases.finished(ident, reason)
        if self._leases.due:
            self._leases.fire()

    # -- the connection -----------------------------------------------------------------------

    def _backend_now(self) -> Backend:
        backend = self._backend
        if backend is None:
            backend = self._backend = current_backend()
            self._connect_lock = backend.lock()
        return backend

    async def _call(self, message: dict[str, Any]) -> dict[str, Any]:
        wait = message.get("wait")
        timeout = self.timeout + wait if wait else self.timeout
        self._last_id = rid = self._last_id + 1
        message["id"] = rid
        frame = encode(message)
        try:
            reply = await self._backend_now().run_with_timeout(timeout, self._attempt_twice, rid, frame)
        except TimeoutError:
            raise DaemonUnavailable(self.path, f"no answer within {timeout:g} s", self.origin, hint=False) from None
        if self._leases.due:
            self._leases.fire()
        return reply

    async def _attempt_twice(self, rid: int, frame: bytes) -> dict[str, Any]:
        try:
            return await (await self._get_link()).call(rid, frame)
        except _ConnectionLost:
            pass
        try:
            return await (await self._get_link()).call(rid, frame)
        except _ConnectionLost as exc:
            raise DaemonUnavailable(self.path, f"the connection broke before the reply, twice ({exc})", self.origin) from exc

    async def _get_link(self) -> _Link:
        link = self._link
        if link is not None and link.broken is None and link.pid == _getpid():
            return link
        backend = self._backend_now()
        async with self._connect_lock:
            link = self._link
            if link is None or link.broken is not None or link.pid != _getpid():
                if link is not None and link.pid != _getpid():
                    self._leases.forget()  # after fork() the leases belong to the parent's connection
                link = self._link = await self._open(backend)
        return link

    async def _open(self, backend: Backend) -> _Link:
        try:
            sock = await _connect(backend, self.path)
        except OSError as exc:
            raise DaemonUnavailable.from_os_error(self.path, self.origin, exc) from exc
        link = _Link(sock, backend, self._hooks)
        self.connections += 1
        if self._greeting is not None:
            try:
                await link.send(self._greeting)
            except _ConnectionLost as exc:
                raise DaemonUnavailable(self.path, f"the connection broke at once ({exc})", self.origin) from exc
        if self._leases.held:
            try:
                await self._reattach(link)
            except _ConnectionLost as exc:
                link.fail(exc)
                reason = f"the connection broke while leases were renewed ({exc})"
                raise DaemonUnavailable(self.path, reason, self.origin) from exc
        return link

    async def _reattach(self, link: _Link) -> None:
        """Renew every lease held, on the new ``link``; mark those the daemon no longer knows lost (see ``Client``)."""
        for ident in list(self._leases.held):
            self._last_id = rid = self._last_id + 1
            reply = await link.call(rid, encode({"op": "renew", "id": rid, "lease": ident}))
            if "error" in reply:
                self._leases.lost(ident)  # unknown-lease: released with the old connection, or not kept
            else:
                lease = self._leases.held.get(ident)
                if lease is not None:
                    lease.reattached += 1
