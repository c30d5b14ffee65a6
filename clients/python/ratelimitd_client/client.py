"""The blocking client: one Unix socket, one ``sendall`` and one read loop per call.

Kept thin on purpose (about 25 µs of client CPU per acquire): the request map
is encoded once, written with one ``sendall``, and the reply is read with
``Inbox`` until its ``id`` comes back. A connection that broke (the daemon
restarted) is replaced on the next call, and a request whose reply was lost
with it is sent once more on the new connection; a retried ``acquire`` may
therefore be charged twice, which errs on the safe side (fewer calls, never a
429). Calls from several threads are serialised by a lock; threads that wait
(``wait=``) should each have their own ``Client``, or share an ``AsyncClient``.

Leases this client was granted are kept in a ``LeaseBook``: a ``lease-ended``
push marks one ended (read during any call, or ``poll()``), and a new
connection opened while some are held first renews each of them, so that a
restarted daemon, which keeps the leases of its previous run as orphans for a
grace period, hands them back to this client.
"""

from __future__ import annotations

import os
import select
import socket as _socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .discovery import SocketPath, resolve_socket
from .amounts import Amount, to_amount
from .errors import DaemonUnavailable, ProtocolError, RateLimited, UnknownLease
from .feedback import report_fields
from .leases import LeaseBook, LeaseEndHook, lease_id, released_ids
from .messages import DEFAULT_TIMEOUT, RECV_SIZE, Inbox, PushHook, acquire_message, hello_message, request_message, result
from .permit import Permit
from .routing import RouteTable
from .wire import encode

__all__ = ["Client", "DEFAULT_SETTLE_WITHIN"]

_getpid = os.getpid

# Seconds a reservation waits for its settle before the daemon takes it as charged in full
# (the daemon's own default when an acquire reserves without saying).
DEFAULT_SETTLE_WITHIN = 300.0


class _ConnectionLost(Exception):
    """The daemon closed the connection before the reply came."""


def _timeout(value: float | None) -> float:
    if value is None:
        return DEFAULT_TIMEOUT
    number = float(value)
    if not number > 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {value!r}")
    return number


def field(reply: dict[str, Any], name: str, op: str) -> Any:
    """Return ``reply[name]``, or raise ``ProtocolError`` saying that the ``op`` reply lacks it."""
    try:
        return reply[name]
    except KeyError:
        raise ProtocolError(f"the daemon's {op} reply has no {name!r}: {reply!r:.200}") from None


class Client:
    """A blocking connection to ratelimitd.

    ``socket`` is the socket path (default: ``discovery.resolve_socket``).
    ``timeout`` is how many seconds to wait for a reply beyond the request's own
    ``wait`` (default 10). ``name`` (e.g. ``"nightly-sync/1.2"``) introduces the
    client with a ``hello`` on each new connection, for the daemon's logs.
    The connection is opened on the first call; ``close()`` ends it, and a
    later call opens a new one. ``connections`` counts the connections opened
    so far (a change tells that the daemon may have restarted).
    """

    def __init__(self, socket: SocketPath | None = None, *, timeout: float | None = None, name: str | None = None) -> None:
        self.path, self.origin = resolve_socket(socket)
        self.timeout = _timeout(timeout)
        self.name = name
        self._leases = LeaseBook()
        self._lease_ends = self._leases.due  # the same list, tested after every call
        self._sock: _socket.socket | None = None
        self._inbox: Inbox | None = None
        self._pid = 0
        self._sock_timeout: float | None = None
        self._last_id = 0
        self.connections = 0
        self._lock = threading.Lock()
        self._hooks: list[PushHook] = [self._leases.push]
        self._greeting: bytes | None = None
        if name is not None:
            hello = hello_message(name)
            hello["id"] = "hello"  # its reply is not waited for; replies of other ids are dropped
            self._greeting = encode(hello)

    def __repr__(self) -> str:
        state = "connected" if self._sock is not None else "not connected"
        held = f", {len(self._leases.held)} leases held" if self._leases.held else ""
        return f"<Client {self.path!r} {state}{held}>"

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def connect(self) -> Client:
        """Open the connection now rather than on the first call; raise ``DaemonUnavailable`` if it fails.

        A new connection first renews the leases this client holds (see the module docstring).
        """
        with self._lock:
            if self._sock is None or self._pid != _getpid():
                try:
                    self._open()
                except (OSError, _ConnectionLost) as exc:
                    self._drop()
                    reason = f"the connection broke while leases were renewed ({exc})"
                    raise DaemonUnavailable(self.path, reason, self.origin) from exc
        if self._leases.due:
            self._leases.fire()
        return self

    def fileno(self) -> int | None:
        """Return the connection's file descriptor, or None when not connected.

        For an event loop of the caller's own: wait until it is readable, then
        call ``poll()`` to handle what the daemon pushed.
        """
        sock = self._sock
        return None if sock is None or self._pid != _getpid() else sock.fileno()

    def close(self) -> None:
        """Close the connection, if open, and give up the leases held: the daemon releases them.

        A later call opens a new one, which renews no lease held before.
        """
        with self._lock:
            self._leases.release_all()
            self._drop()

    def on_push(self, callback: PushHook) -> PushHook:
        """Register ``callback`` to be called with every push (a message without ``id``); return it.

        Pushes are read while a call waits for its reply, and by ``poll()``, in
        the calling thread, with the client's lock held: a callback must not
        call the client. An exception from a callback is logged and otherwise ignored.
        """
        self._hooks.append(callback)
        return callback

    def on_lease_end(self, callback: LeaseEndHook) -> LeaseEndHook:
        """Register ``callback`` to be called with each ``Lease`` the daemon takes away; return it.

        Called for a ``lease-ended`` push (``lease.end_reason`` is the daemon's
        reason: ``"evicted"``, ``"idle"``…) and for a lease found ``"lost"``
        when a new connection renewed it, never for this client's own release
        or settle. Called in the thread that read the news, after the call that
        read it has its reply (so a callback may call the client). An exception
        from a callback is logged and otherwise ignored.
        """
        self._leases.callbacks.append(callback)
        return callback

    def poll(self, timeout: float = 0.0) -> int:
        """Read what the daemon sent, waiting up to ``timeout`` seconds for something; return how many pushes came.

        Pushes (a lease evicted…) are otherwise read only while a call waits for
        its reply; a program that holds a lease without making calls polls to
        learn of its end. Returns 0 at once when not connected. A connection
        the daemon closed (it restarted) is dropped: the next call opens a new
        one and renews the leases held.
        """
        sock = self._sock
        if sock is None or self._pid != _getpid():
            return 0
        if timeout > 0:
            waiting = select.poll()
            waiting.register(sock, select.POLLIN)
            try:
                waiting.poll(timeout * 1000)
            except (OSError, ValueError):
                return 0  # closed by another thread meanwhile
        with self._lock:
            inbox = self._inbox
            if self._sock is not sock or inbox is None:
                return 0
            before = inbox.pushes
            if self._sock_timeout != 0.0:
                sock.settimeout(0.0)
                self._sock_timeout = 0.0
            while True:
                try:
                    data = sock.recv(RECV_SIZE)
                except BlockingIOError:
                    break
                except OSError:
                    self._drop()
                    break
                if not data:
                    self._drop()
                    break
                inbox.receive(data)  # replies read here answer calls given up on: dropped
                if inbox.failure is not None:
                    self._drop()
                    break
            handled = inbox.pushes - before
        if self._leases.due:
            self._leases.fire()
        return handled

    # -- requests ---------------------------------------------------------------------------

    def request(self, op: str, /, **fields: Any) -> dict[str, Any]:
        """Send ``op`` with ``fields`` (those that are None left out) and return the reply map without ``id``.

        Raises the ``RequestFailed`` subclass of the error code when the daemon
        refuses, ``DaemonUnavailable`` when it cannot be reached or does not
        answer in time, ``ProtocolError`` when its answer cannot be read.
        """
        return result(self._call(request_message(op, fields)))

    def acquire(
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

        ``cost`` None charges the endpoint's default cost; amounts are sent
        exactly (see ``acquire_message``). ``wait`` None or 0 answers at once;
        ``wait=S`` lets the daemon queue the request and answer when it is
        granted or when ``S`` seconds ran out (the client does not poll).
        Higher ``priority`` waiters are served first. ``scopes`` names the
        values of the endpoint's scoped buckets (``{"wallet": "W1"}``, and
        ``{"lease": ID}`` to take a lease inside another). ``reserve=S`` makes
        the grant a reservation of ``cost`` to ``settle`` within ``S`` seconds.
        A grant that holds something carries a lease (``permit.lease``, the id;
        ``permit.lease_state``, the ``Lease``), held by this client until
        released. Denied is a value: only misuse and faults raise
        (``UnknownKey``, ``NotAvailable``, ``CostTooLarge``…).
        """
        reply = result(self._call(acquire_message(key, endpoint, cost, wait, priority, scopes, reserve)))
        if "lease" in reply:
            with self._lock:
                return self._leases.granted(reply, key, endpoint, reserve is not None)
        return Permit.from_reply(reply)

    @contextmanager
    def permit(
        self,
        key: str,
        endpoint: str,
        cost: object = None,
        wait: float | None = None,
        priority: int = 0,
        *,
        scopes: dict[str, str] | None = None,
    ) -> Iterator[Permit]:
        """Acquire as ``acquire`` does and yield the granted ``Permit``; raise ``RateLimited`` if not granted.

        A lease that the permit carries is released on exit, however the block
        ends; a lease the daemon already ended (evicted…) is not, and nothing is raised for it.
        """
        permit = self.acquire(key, endpoint, cost, wait, priority, scopes=scopes)
        if not permit.granted:
            raise RateLimited(permit, key, endpoint, wait)
        try:
            yield permit
        finally:
            if permit.lease is not None:
                self._release_quietly(permit)

    @contextmanager
    def reserve(
        self,
        key: str,
        endpoint: str,
        cost: object,
        within: float = DEFAULT_SETTLE_WITHIN,
        wait: float | None = None,
        priority: int = 0,
        *,
        scopes: dict[str, str] | None = None,
    ) -> Iterator[Permit]:
        """Reserve ``cost`` (the estimate) and yield the granted ``Permit``; raise ``RateLimited`` if not granted.

        Inside the block, ``settle(permit, real_cost)`` charges the real cost:
        more than reserved is charged on top, less is refunded. A reservation
        not settled when the block ends is released charged in full (the
        estimate); one the block leaves open past ``within`` seconds is
        ended by the daemon, charged in full (``"reservation-expired"``).
        """
        permit = self.acquire(key, endpoint, cost, wait, priority, scopes=scopes, reserve=within)
        if not permit.granted:
            raise RateLimited(permit, key, endpoint, wait)
        try:
            yield permit
        finally:
            self._release_quietly(permit)

    def release(self, lease: object) -> list[str]:
        """Release ``lease`` (a ``Lease``, a ``Permit``, or its id) and the leases taken inside it; return the ids released.

        Raises ``UnknownLease`` when the daemon holds no such lease (it ended,
        was released, or is of a daemon run that did not keep it).
        """
        ident = lease_id(lease)
        try:
            released = released_ids(self.request("release", lease=ident))
        except UnknownLease:
            self._forget(ident, "lost")
            raise
        for other in released:
            self._forget(other, "released")
        return released

    def renew(self, lease: object) -> dict[str, Any]:
        """Tell the daemon ``lease`` is in use (its idle timeout starts again); return its description.

        The description is what ``leases()`` lists: ``key``, ``endpoint``,
        ``pid``, ``uid``, ``age``, ``idle_for``, ``ends_in`` (None: no end
        set), ``orphaned``, ``parent``, ``reservation``. Renewing an orphaned
        lease (kept by a restarted daemon) hands it to this connection; this
        client does so by itself on each new connection for the leases it
        holds. Raises ``UnknownLease`` when the daemon holds no such lease.
        """
        ident = lease_id(lease)
        try:
            return self.request("renew", lease=ident)
        except UnknownLease:
            self._forget(ident, "lost")
            raise

    def settle(self, lease: object, cost: object) -> Amount:
        """Settle the reservation ``lease`` at its real ``cost``; return the difference charged (negative: refunded).

        Raises ``UnknownLease`` when no such reservation is open (settled,
        released, or expired and charged in full).
        """
        ident = lease_id(lease)
        amount = cost if type(cost) is int and cost >= 0 else to_amount(cost, "cost")
        try:
            reply = self.request("settle", lease=ident, cost=amount)
        except UnknownLease:
            self._forget(ident, "lost")
            raise
        self._forget(ident, "settled")
        return field(reply, "difference", "settle")

    def leases(self, key: str | None = None) -> list[dict[str, Any]]:
        """Return every lease the daemon holds (of ``key`` only, if given), described as ``renew`` returns one."""
        return field(self.request("leases", key=key), "leases", "leases")

    def report(self, key: str, endpoint: str | None, status: int, **said: Any) -> list[dict[str, Any]]:
        """Tell the daemon what the provider answered to a call of ``endpoint`` (or ``bucket=``); return what it did.

        ``said`` holds what the provider said, any of ``bucket``, ``retry_after``
        (seconds), ``reset_at`` (Unix seconds), ``remaining``, ``limit`` (amounts)
        and ``window`` (seconds): ``Feedback.as_report_fields()`` gives them all,
        ``status`` included. Returns the daemon's ``applied`` list, one
        ``{"bucket", "action", "until", "remaining"}`` per bucket, ``action``
        being ``"hold"``, ``"restrict"`` or ``"none"``.
        """
        fields = report_fields(status, **said)
        if endpoint is None and "bucket" not in fields:
            raise TypeError("report needs an endpoint, or a bucket= naming the bucket that refused")
        return field(self.request("report", key=key, endpoint=endpoint, **fields), "applied", "report")

    def routes(self, key: str) -> RouteTable:
        """Return the routes of ``key``'s provider (which request is which endpoint), first match first."""
        return RouteTable.from_reply(self.request("routes", key=key))

    def hello(self, key: str | None = None) -> dict[str, Any]:
        """Return the daemon's greeting: protocol, server, time, pid, and ``limits`` of ``key`` if given."""
        return result(self._call(hello_message(self.name, key)))

    def status(self) -> dict[str, Any]:
        """Return the daemon's status map (version, uptime, config, counters…)."""
        return self.request("status")

    def keys(self) -> list[dict[str, Any]]:
        """Return every key alias of the tier table as ``{"key", "provider", "tier", "group"}`` maps."""
        return field(self.request("keys"), "keys", "keys")

    def show(self, key: str) -> dict[str, Any]:
        """Return ``key``'s provider, tier, endpoints and buckets with their use now."""
        return self.request("show", key=key)

    def reload(self, path: SocketPath | None = None) -> dict[str, Any]:
        """Reload the tier table (from ``path`` if given) and return the reply; raise ``InvalidTable`` if refused."""
        return self.request("reload", path=None if path is None else os.fspath(path))

    def reset(self, key: str, endpoint: str | None = None) -> list[str]:
        """Forget what ``key`` spent (only ``endpoint``'s buckets, if given); return the names of the buckets reset."""
        return field(self.request("reset", key=key, endpoint=endpoint), "reset", "reset")

    def _release_quietly(self, permit: Permit) -> None:
        """Release ``permit``'s lease unless it has ended; raise nothing for a lease already gone."""
        state = permit.lease_state
        if state is not None and state.ended:
            return
        try:
            self.release(permit.lease)
        except (UnknownLease, DaemonUnavailable):
            # ended meanwhile, or the connection is gone and the daemon released it with it
            self._forget(permit.lease, "released")

    def _forget(self, ident: str, reason: str) -> None:
        with self._lock:
            if reason == "lost":
                self._leases.lost(ident)
            else:
                self._leases.finished(ident, reason)
        if self._leases.due:
            self._leases.fire()

    # -- the connection -----------------------------------------------------------------------

    def _call(self, message: dict[str, Any]) -> dict[str, Any]:
        wait = message.get("wait")
        timeout = self.timeout + wait if wait else self.timeout
        with self._lock:
            self._last_id = rid = self._last_id + 1
            message["id"] = rid
            frame = encode(message)
            for attempt in (1, 2):
                try:
                    sock = self._sock
                    if sock is None or self._pid != _getpid():
                        sock = self._open()
                    if timeout != self._sock_timeout:
                        sock.settimeout(timeout)
                        self._sock_timeout = timeout
                    sock.sendall(frame)
                    reply = self._read(sock, rid)
                    break
                except TimeoutError:
                    self._drop()
                    raise DaemonUnavailable(self.path, f"no answer within {timeout:g} s", self.origin, hint=False) from None
                except (OSError, _ConnectionLost) as exc:
                    self._drop()
                    if attempt == 2:
                        raise DaemonUnavailable(
                            self.path, f"the connection broke before the reply, twice ({exc})", self.origin
                        ) from exc
                except BaseException:
                    self._drop()  # a reply may still be on its way: this connection is out of step
                    raise
            else:
                raise AssertionError("unreachable")
        if self._lease_ends:
            self._leases.fire()
        return reply

    def _read(self, sock: _socket.socket, rid: int) -> dict[str, Any]:
        inbox = self._inbox
        assert inbox is not None
        recv = sock.recv
        while True:
            data = recv(RECV_SIZE)
            if not data:
                raise _ConnectionLost("the daemon closed the connection")
            found = None
            for mid, reply in inbox.receive(data):
                if mid == rid:
                    found = reply
                # any other id answers a greeting or a call abandoned with its connection: dropped
            if inbox.failure is not None:
                failure = inbox.failure
                self._drop()
                if found is not None:
                    return found
                raise failure
            if found is not None:
                return found

    def _open(self) -> _socket.socket:
        self._drop()
        if self._pid and self._pid != _getpid():
            self._leases.forget()  # after fork() the leases belong to the parent's connection
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self.path)
            if self._greeting is not None:
                sock.sendall(self._greeting)
        except OSError as exc:
            sock.close()
            raise DaemonUnavailable.from_os_error(self.path, self.origin, exc) from exc
        self._sock = sock
        self._sock_timeout = self.timeout
        self._inbox = Inbox(self._hooks)
        self._pid = _getpid()
        self.connections += 1
        if self._leases.held:
            self._reattach(sock)
        return sock

    def _reattach(self, sock: _socket.socket) -> None:
        """Renew every lease held, on the new connection ``sock``; mark those the daemon no longer knows lost.

        A restarted daemon keeps the leases of its previous run as orphans for a
        grace period and hands each to the first connection that renews it. A
        daemon that did not restart released them when the old connection closed.
        """
        asked: dict[int, str] = {}
        frames = []
        for ident in list(self._leases.held):
            self._last_id = rid = self._last_id + 1
            asked[rid] = ident
            frames.append(encode({"op": "renew", "id": rid, "lease": ident}))
        sock.sendall(b"".join(frames))
        inbox = self._inbox
        assert inbox is not None
        while asked:
            data = sock.recv(RECV_SIZE)
            if not data:
                raise _ConnectionLost("the daemon closed the connection while leases were renewed")
            for rid, reply in inbox.receive(data):
                ident = asked.pop(rid, None) if type(rid) is int else None
                if ident is None:
                    continue
                if "error" in reply:
                    self._leases.lost(ident)  # unknown-lease: released with the old connection, or not kept
                else:
                    lease = self._leases.held.get(ident)
                    if lease is not None:
                        lease.reattached += 1
            if inbox.failure is not None:
                raise _ConnectionLost(str(inbox.failure))

    def _drop(self) -> None:
        sock = self._sock
        if sock is not None:
            self._sock = None
            self._inbox = None
            sock.close()
