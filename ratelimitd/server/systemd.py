"""The daemon's side of systemd: readiness and watchdog notifications, and sockets it inherits.

Both protocols are small enough to speak directly, with no library
(sd_notify(3), sd_listen_fds(3)):

- notification is one datagram of ``KEY=VALUE`` lines sent to the Unix socket
  named by ``$NOTIFY_SOCKET`` (a path, or ``@name`` for an abstract socket);
- socket activation passes listening sockets as file descriptors 3, 4, …,
  announced by ``$LISTEN_FDS`` (how many), ``$LISTEN_PID`` (for which process)
  and ``$LISTEN_FDNAMES`` (their names, colon-separated).

``run_service`` runs ``Server.serve`` beside the two tasks systemd wants from a
``Type=notify`` service with ``WatchdogSec=``: a ``WATCHDOG=1`` ping at half
the interval, sent from the event loop so a wedged loop stops pinging and is
restarted, and a one-line ``STATUS=`` summary for ``systemctl status``.
Outside systemd (no ``$NOTIFY_SOCKET``, no ``$LISTEN_FDS``) the daemon binds
its own socket and nothing is sent.
"""

from __future__ import annotations

import logging
import os
import socket as stdlib_socket
import time
from collections.abc import Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

import trio

from .listener import ListenError

if TYPE_CHECKING:
    from .app import Server

__all__ = [
    "Notifier",
    "inherited_socket",
    "run_service",
    "status_line",
    "watchdog_interval",
    "STATUS_INTERVAL",
    "LISTEN_FDS_START",
]

log = logging.getLogger("ratelimitd")

LISTEN_FDS_START = 3  # SD_LISTEN_FDS_START: the first inherited descriptor
# How often systemctl status is refreshed: often enough to be current when someone looks,
# rarely enough that the summary (it walks every bucket) costs nothing measurable.
STATUS_INTERVAL = 10.0
# A notification is one small datagram; systemd reads them at once. The bound only matters
# if the manager is wedged, and then the event loop must not hang on it for long.
_SEND_TIMEOUT = 1.0


class Notifier:
    """Sends notifications to the service manager at ``$NOTIFY_SOCKET``; does nothing when it is unset.

    Call it with the fields of one message, ``notify(READY=1, STATUS="…")``.
    A value's newlines become spaces (a field is one line). ``RELOADING=1``
    gets the ``MONOTONIC_USEC`` that systemd ≥ 253 expects beside it.
    """

    def __init__(self, address: str | None) -> None:
        self.address = address
        self._target: str | bytes | None = None
        self._sock: stdlib_socket.socket | None = None
        self._failed = False
        if not address:
            return
        if address.startswith("@"):
            self._target = b"\0" + address[1:].encode()
        elif address.startswith("/"):
            self._target = address
        else:
            log.warning("NOTIFY_SOCKET=%s is neither a path nor an abstract socket (@name); not notifying systemd", address)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        """Return a notifier for ``$NOTIFY_SOCKET`` of ``environ`` (default ``os.environ``)."""
        env = os.environ if environ is None else environ
        return cls(env.get("NOTIFY_SOCKET") or None)

    @property
    def enabled(self) -> bool:
        """Report whether there is a manager to notify."""
        return self._target is not None

    def __call__(self, **fields: object) -> bool:
        """Send one message made of ``fields``; report whether it was sent.

        A failed send is logged once (as a warning) and reported as False;
        the daemon carries on, as sd_notify's callers do.
        """
        if self._target is None:
            return False
        if fields.get("RELOADING") is not None and "MONOTONIC_USEC" not in fields:
            fields["MONOTONIC_USEC"] = time.monotonic_ns() // 1000  # CLOCK_MONOTONIC, as systemd reads it
        payload = "".join(f"{name}={_one_line(value)}\n" for name, value in fields.items()).encode()
        try:
            if self._sock is None:
                self._sock = stdlib_socket.socket(stdlib_socket.AF_UNIX, stdlib_socket.SOCK_DGRAM)
                self._sock.settimeout(_SEND_TIMEOUT)
            self._sock.sendto(payload, self._target)
        except OSError as exc:
            if not self._failed:
                log.warning("cannot notify systemd at NOTIFY_SOCKET=%s: %s", self.address, exc.strerror or exc)
                self._failed = True
            return False
        return True

    def close(self) -> None:
        """Close the notification socket (it is opened again by the next message)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _one_line(value: object) -> str:
    return " ".join(str(value).splitlines())


def watchdog_interval(environ: Mapping[str, str] | None = None) -> float | None:
    """Return the watchdog interval in seconds, or None when there is no watchdog for this process.

    Like sd_watchdog_enabled(3): ``$WATCHDOG_USEC`` must be a positive integer,
    and ``$WATCHDOG_PID``, when set, must be this process's pid. A malformed
    value is logged and treated as no watchdog.
    """
    env = os.environ if environ is None else environ
    usec = env.get("WATCHDOG_USEC")
    if not usec:
        return None
    pid = env.get("WATCHDOG_PID")
    if pid and pid != str(os.getpid()):
        return None
    try:
        value = int(usec)
    except ValueError:
        log.warning("WATCHDOG_USEC=%r is not an integer; not sending watchdog pings", usec)
        return None
    return value / 1_000_000 if value > 0 else None


def _listen_fds(environ: MutableMapping[str, str]) -> list[tuple[int, str]]:
    pid = environ.get("LISTEN_PID")
    count = environ.get("LISTEN_FDS")
    names = environ.get("LISTEN_FDNAMES")
    for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        environ.pop(name, None)  # as sd_listen_fds(1) does: they were for this process, not its children
    if not count or pid != str(os.getpid()):
        return []
    try:
        n = int(count)
    except ValueError as exc:
        raise ListenError(f"LISTEN_FDS={count!r} is not a number of descriptors") from exc
    labels = names.split(":") if names else []
    return [(fd, labels[i] if i < len(labels) else "unknown") for i, fd in enumerate(range(LISTEN_FDS_START, LISTEN_FDS_START + n))]


def inherited_socket(environ: MutableMapping[str, str] | None = None) -> stdlib_socket.socket | None:
    """Return the listening Unix stream socket systemd passed to this process, or None if it passed none.

    Reads and removes ``$LISTEN_FDS``, ``$LISTEN_PID`` and ``$LISTEN_FDNAMES``
    from ``environ`` (default ``os.environ``); descriptors meant for another
    process (``$LISTEN_PID`` differs) count as none. Raises ``ListenError``
    when the descriptors include no listening Unix stream socket, or more than
    one (the daemon listens on one socket), or a connected one (``Accept=yes``,
    which this daemon does not support).
    """
    env = os.environ if environ is None else environ
    passed = _listen_fds(env)
    if not passed:
        return None
    found: list[tuple[stdlib_socket.socket, str]] = []
    for fd, name in passed:
        try:
            sock = stdlib_socket.socket(fileno=fd)
        except OSError as exc:
            raise ListenError(f"inherited descriptor {fd} ({name}) is not a socket: {exc.strerror}") from exc
        if sock.family != stdlib_socket.AF_UNIX or sock.type != stdlib_socket.SOCK_STREAM:
            log.warning("ignoring inherited descriptor %d (%s): not a Unix stream socket", fd, name)
            sock.detach()
            continue
        if not sock.getsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_ACCEPTCONN):
            sock.detach()
            raise ListenError(f"inherited socket {fd} ({name}) is not listening; the socket unit must not set Accept=yes")
        os.set_inheritable(fd, False)
        found.append((sock, name))
    if not found:
        raise ListenError(f"systemd passed {len(passed)} descriptors ({', '.join(n for _, n in passed)}) and none is a Unix stream socket")
    if len(found) > 1:
        for sock, _ in found:
            sock.detach()
        raise ListenError(f"systemd passed {len(found)} Unix stream sockets ({', '.join(n for _, n in found)}); ratelimitd listens on exactly one")
    return found[0][0]


def status_line(status: Mapping[str, Any], grants_per_second: float) -> str:
    """Return the one-line ``STATUS=`` summary of a ``Server.status()`` report.

    It names keys, grants per second, waiters and connections, and, while the
    last reload was refused, that the previous table is still in use and why.
    """
    line = (
        f"{status['keys']} keys, {grants_per_second:.1f} grants/s, "
        f"{status['waiters']} waiting, {status['connections']} connections"
    )
    if status.get("reload_error"):
        line += f"; last reload refused, previous table kept: {status['reload_error']}"
    return _one_line(line)


async def _watchdog(notify: Notifier, interval: float) -> None:
    while True:
        notify(WATCHDOG=1)
        await trio.sleep(interval / 2)


async def _report_status(server: Server, notify: Notifier, every: float) -> None:
    last_grants = server.status()["grants"]
    last_time = trio.current_time()
    rate = 0.0
    while True:
        status = server.status()
        now = trio.current_time()
        if now > last_time:
            rate = (status["grants"] - last_grants) / (now - last_time)
        last_grants, last_time = status["grants"], now
        notify(STATUS=status_line(status, rate))
        await trio.sleep(every)


async def run_service(
    server: Server,
    listening: stdlib_socket.socket,
    notify: Notifier,
    watchdog: float | None = None,
    status_every: float = STATUS_INTERVAL,
) -> None:
    """Run ``server.serve(listening)`` with the watchdog and status tasks; return when it returns.

    ``server.notify`` sends READY, RELOADING and STOPPING itself; this adds
    ``WATCHDOG=1`` every ``watchdog / 2`` seconds from the start (a long
    restore before READY is covered too) and a ``STATUS=`` summary when ready
    and every ``status_every`` seconds after. Without a manager to notify it
    only serves.
    """
    if not notify.enabled:
        await server.serve(listening)
        return
    async with trio.open_nursery() as nursery:
        if watchdog:
            nursery.start_soon(_watchdog, notify, watchdog)
        await nursery.start(_serve_then_end, server, listening, nursery.cancel_scope)
        nursery.start_soon(_report_status, server, notify, status_every)


async def _serve_then_end(
    server: Server, listening: stdlib_socket.socket, helpers: trio.CancelScope, *, task_status: trio.TaskStatus[None]
) -> None:
    await server.serve(listening, task_status=task_status)
    helpers.cancel()  # the watchdog and status tasks end with the server
