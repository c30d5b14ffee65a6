"""The blocking client: one Unix socket, one ``sendall`` and one read loop per call.

Kept thin on purpose (about 25 µs of client CPU per acquire): the request map
is encoded once, written with one ``sendall``, and the reply is read with
``Inbox`` until its ``id`` comes back. A connection that broke (the daemon
restarted) is replaced on the next call, and a request whose reply was lost
with it is sent once more on the new connection; a retried ``acquire`` may
therefore be charged twice, which errs on the safe side (fewer calls, never a
429). Calls from several threads are serialised by a lock; threads that wait
(``wait=``) should each have their own ``Client``, or share an ``AsyncClient``.
"""

from __future__ import annotations

import os
import socket as _socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .discovery import SocketPath, resolve_socket
from .errors import DaemonUnavailable, ProtocolError, RateLimited, UnknownLease
from .feedback import report_fields
from .messages import DEFAULT_TIMEOUT, RECV_SIZE, Inbox, PushHook, acquire_message, hello_message, request_message, result
from .permit import Permit
from .routing import RouteTable
from .wire import encode

__all__ = ["Client"]

_getpid = os.getpid


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
        self._sock: _socket.socket | None = None
        self._inbox: Inbox | None = None
        self._pid = 0
        self._sock_timeout: float | None = None
        self._last_id = 0
        self.connections = 0
        self._lock = threading.Lock()
        self._hooks: list[PushHook] = []
        self._greeting: bytes | None = None
        if name is not None:
            hello = hello_message(name)
            hello["id"] = "hello"  # its reply is not waited for; replies of other ids are dropped
            self._greeting = encode(hello)

    def __repr__(self) -> str:
        state = "connected" if self._sock is not None else "not connected"
        return f"<Client {self.path!r} {state}>"

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def connect(self) -> Client:
        """Open the connection now rather than on the first call; raise ``DaemonUnavailable`` if it fails."""
        with self._lock:
            if self._sock is None or self._pid != _getpid():
                self._open()
        return self

    def close(self) -> None:
        """Close the connection, if open. A later call opens a new one."""
        with self._lock:
            self._drop()

    def on_push(self, callback: PushHook) -> PushHook:
        """Register ``callback`` to be called with every push (a message without ``id``); return it.

        Pushes are read while a call waits for its reply, in the calling thread.
        An exception from a callback is logged and otherwise ignored.
        """
        self._hooks.append(callback)
        return callback

    # -- requests ---------------------------------------------------------------------------

    def request(self, op: str, /, **fields: Any) -> dict[str, Any]:
        """Send ``op`` with ``fields`` (those that are None left out) and return the reply map without ``id``.

        Raises the ``RequestFailed`` subclass of the error code when the daemon
        refuses, ``DaemonUnavailable`` when it cannot be reached or does not
        answer in time, ``ProtocolError`` when its answer cannot be read.
        """
        return result(self._call(request_message(op, fields)))

    def acquire(self, key: str, endpoint: str, cost: object = None, wait: float | None = None, priority: int = 0) -> Permit:
        """Ask for a permit to call ``endpoint`` with ``key``; return the ``Permit``, granted or not.

        ``cost`` None charges the endpoint's default cost; amounts are sent
        exactly (see ``acquire_message``). ``wait`` None or 0 answers at once;
        ``wait=S`` lets the daemon queue the request and answer when it is
        granted or when ``S`` seconds ran out (the client does not poll).
        Higher ``priority`` waiters are served first. Denied is a value: only
        misuse and faults raise (``UnknownKey``, ``NotAvailable``, ``CostTooLarge``…).
        """
        return Permit.from_reply(result(self._call(acquire_message(key, endpoint, cost, wait, priority))))

    @contextmanager
    def permit(self, key: str, endpoint: str, cost: object = None, wait: float | None = None, priority: int = 0) -> Iterator[Permit]:
        """Acquire as ``acquire`` does and yield the granted ``Permit``; raise ``RateLimited`` if not granted.

        A lease that the permit carries is released on exit, however the block ends.
        """
        permit = self.acquire(key, endpoint, cost, wait, priority)
        if not permit.granted:
            raise RateLimited(permit, key, endpoint, wait)
        try:
            yield permit
        finally:
            if permit.lease is not None:
                self._release(permit.lease)

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

    def _release(self, lease: Any) -> None:
        # A lease dies with its connection, so a lost connection has released it already.
        try:
            self.request("release", lease=lease)
        except (UnknownLease, DaemonUnavailable):
            pass

    # -- the connection -----------------------------------------------------------------------

    def _call(self, message: dict[str, Any]) -> dict[str, Any]:
        wait = message.get("wait")
        timeout = self.timeout + wait if wait else self.timeout
        with self._lock:
            self._last_id = rid = self._last_id + 1
            message["id"] = rid
            frame = encode(message)
            for attempt in (1, 2):
                sock = self._sock
                if sock is None or self._pid != _getpid():
                    sock = self._open()
                try:
                    if timeout != self._sock_timeout:
                        sock.settimeout(timeout)
                        self._sock_timeout = timeout
                    sock.sendall(frame)
                    return self._read(sock, rid)
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
        raise AssertionError("unreachable")

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
        return sock

    def _drop(self) -> None:
        sock = self._sock
        if sock is not None:
            self._sock = None
            self._inbox = None
            sock.close()
