"""What the daemon robustness tests share: a raw socket client, and one real daemon for a whole module.

``Raw`` speaks the framing by hand so that a test can send what no real client
would and read whatever comes back, EOF and resets included. ``module_daemon``
runs one daemon for a module (``start_daemon`` in tests/conftest.py is per
test); ``revive`` starts it again when a test killed it, so that one crash
fails the test that caused it, not every test after.
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
from collections import deque
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from ratelimitd_client.wire import FrameDecoder, FrameTooLarge, encode

from ..daemon import Daemon

__all__ = ["Raw", "Closed", "module_daemon", "revive", "log_tail", "show", "connect_as"]

# Replies to hostile requests may echo long ids or names; read them with a generous maximum.
READ_MAX_FRAME = 1 << 26


class Closed(Exception):
    """The daemon closed (or reset) the connection."""


class Raw:
    """A raw Unix-socket client: send any bytes, read frames until a condition, EOF or a deadline."""

    def __init__(self, path: str | None, timeout: float = 5.0, sock: socket.socket | None = None) -> None:
        if sock is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect(path)
        self.sock = sock
        self.decoder = FrameDecoder(READ_MAX_FRAME)
        self.pending: deque[Any] = deque()
        self.closed = False  # the daemon closed or reset the connection
        self.reset = False  # ... with a reset (it closed with our bytes unread)

    def send(self, data: bytes) -> bool:
        """Send ``data``; report False when the daemon had closed the connection (a reset or broken pipe)."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            self.closed = True
            return False

    def shutdown(self) -> None:
        """Tell the daemon that nothing more will be sent (half-close)."""
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def _fill(self, deadline: float) -> None:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no frame from the daemon in time")
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(1 << 20)
        except socket.timeout:
            raise TimeoutError("no frame from the daemon in time") from None
        except ConnectionResetError:
            self.closed = self.reset = True
            raise Closed("reset by the daemon") from None
        if not data:
            self.closed = True
            raise Closed("closed by the daemon")
        try:
            self.pending.extend(self.decoder.receive(data))
        except FrameTooLarge as exc:  # the daemon never sends that much
            raise AssertionError(f"the daemon sent a frame of {exc.length} bytes") from None

    def next(self, timeout: float = 5.0) -> Any:
        """Return the next frame; raise ``Closed`` at EOF or reset, ``TimeoutError`` when none comes in time."""
        deadline = time.monotonic() + timeout
        while not self.pending:
            self._fill(deadline)
        return self.pending.popleft()

    def until(self, done: Callable[[Any], bool], timeout: float = 5.0) -> list[Any]:
        """Return every frame up to and including the first for which ``done`` is true.

        Raises ``Closed`` (with the frames read so far as ``.args[1]``) at EOF or
        reset, and ``TimeoutError`` when no such frame comes in time.
        """
        deadline = time.monotonic() + timeout
        frames = []
        while True:
            while not self.pending:
                try:
                    self._fill(deadline)
                except Closed as exc:
                    raise Closed(str(exc), frames) from None
            frame = self.pending.popleft()
            frames.append(frame)
            if done(frame):
                return frames

    def to_eof(self, timeout: float = 5.0) -> list[Any]:
        """Return every frame until the daemon closes the connection; raise ``TimeoutError`` if it does not in time."""
        try:
            self.until(lambda frame: False, timeout)
        except Closed as exc:
            return exc.args[1]
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.sock.close()


def connect_as(path: str, uid: int, gid: int, timeout: float = 5.0) -> socket.socket:
    """Return a socket connected to ``path`` by a process of ``uid``/``gid`` (the daemon sees those credentials).

    A forked child drops to ``uid`` and ``gid``, connects, and hands the connected
    socket back over a socket pair (SCM_RIGHTS); ``SO_PEERCRED`` was fixed at
    connect time, so the daemon takes every request on it as that user's.
    Needs root. Raises ``OSError`` when the child cannot connect in ``timeout``.
    """
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    pid = os.fork()
    if pid == 0:  # the child: never returns into the test
        code = 1
        try:
            ours.close()
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect(path)
            socket.send_fds(theirs, [b"ok"], [sock.fileno()])
            code = 0
        except BaseException as exc:  # report anything to the parent, then leave
            try:
                theirs.sendall(repr(exc).encode()[:500])
            except OSError:
                pass
        finally:
            os._exit(code)
    theirs.close()
    try:
        ours.settimeout(timeout + 1)
        message, fds, _flags, _address = socket.recv_fds(ours, 600, 1)
    except socket.timeout:
        os.kill(pid, 9)
        raise OSError(f"a process of uid {uid} could not connect to {path} within {timeout}s") from None
    finally:
        ours.close()
        os.waitpid(pid, 0)
    if not fds:
        raise OSError(f"a process of uid {uid} could not connect to {path}: {message.decode(errors='replace')}")
    sock = socket.socket(fileno=fds[0])
    sock.settimeout(timeout)
    return sock


def show(value: Any, limit: int = 300) -> str:
    """Return the repr of ``value`` cut to ``limit`` characters (one holding an int over 4300 digits has none)."""
    try:
        text = repr(value)
    except ValueError:
        return f"<{type(value).__name__} holding an integer too long to print>"
    return text if len(text) <= limit else text[:limit] + "…"


def log_tail(daemon: Daemon, lines: int = 40) -> str:
    """Return the last ``lines`` lines the daemon logged, for failure messages."""
    return "\n".join(daemon.output().splitlines()[-lines:])


@contextmanager
def module_daemon(table: str, *extra: str, directory_mode: int | None = None, kind: type[Daemon] = Daemon) -> Iterator[Daemon]:
    """Run one real daemon with ``table`` in a short temporary directory; stop it (or kill it) at the end.

    ``directory_mode`` opens the directory to other users (0o755: their clients
    can reach the socket); ``kind`` is the ``Daemon`` class to run.
    """
    with tempfile.TemporaryDirectory(prefix="rl-") as directory:
        if directory_mode is not None:
            os.chmod(directory, directory_mode)
        daemon = kind(Path(directory), table, *extra)
        daemon.start()
        try:
            yield daemon
        finally:
            try:
                daemon.stop(timeout=10)
            except Exception:
                daemon.kill()


def _answers(path: str, timeout: float = 2.0) -> bool:
    """Report whether a daemon listens on ``path`` and answers a ``hello`` within ``timeout``."""
    try:
        raw = Raw(path, timeout)
    except OSError:
        return False
    try:
        raw.send(encode({"op": "hello", "id": 0}))
        return isinstance(raw.next(timeout), dict)
    except (Closed, TimeoutError, OSError):
        return False
    finally:
        raw.close()


def revive(daemon: Daemon) -> Daemon:
    """Return ``daemon`` if it answers; else (an earlier test killed or stalled it) start it again from an empty state.

    Empty, because a daemon restarted after a crash holds every bucket for a
    window (docs/state.md), which would fail every later test for the wrong reason.
    """
    if daemon.process is not None and daemon.process.poll() is None:
        if _answers(daemon.socket):
            return daemon
        daemon.kill()
    for suffix in ("", "-wal", "-shm"):
        Path(daemon.state + suffix).unlink(missing_ok=True)
    return daemon.start()
