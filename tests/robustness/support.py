"""What the daemon robustness tests share: a raw socket client, and one real daemon for a whole module.

``Raw`` speaks the framing by hand so that a test can send what no real client
would and read whatever comes back, EOF and resets included. ``module_daemon``
runs one daemon for a module (``start_daemon`` in tests/conftest.py is per
test); ``revive`` starts it again when a test killed it, so that one crash
fails the test that caused it, not every test after.
"""

from __future__ import annotations

import socket
import tempfile
import time
from collections import deque
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from ratelimitd_client.wire import FrameDecoder, FrameTooLarge, encode

from ..daemon import Daemon

__all__ = ["Raw", "Closed", "module_daemon", "revive", "log_tail", "show"]

# Replies to hostile requests may echo long ids or names; read them with a generous maximum.
READ_MAX_FRAME = 1 << 26


class Closed(Exception):
    """The daemon closed (or reset) the connection."""


class Raw:
    """A raw Unix-socket client: send any bytes, read frames until a condition, EOF or a deadline."""

    def __init__(self, path: str, timeout: float = 5.0) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
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
def module_daemon(table: str, *extra: str) -> Iterator[Daemon]:
    """Run one real daemon with ``table`` in a short temporary directory; stop it (or kill it) at the end."""
    with tempfile.TemporaryDirectory(prefix="rl-") as directory:
        daemon = Daemon(Path(directory), table, *extra)
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
