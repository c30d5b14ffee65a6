"""A stand-in for systemd's notification socket: binds a datagram socket and hands over what the daemon sends.

Messages are parsed into dicts (``{"READY": "1", "STATUS": "…"}``) and read in
arrival order with ``next(...)``, which waits with a timeout for the next one
that matches and returns those it passed over, so tests assert order without
asserting timing.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

__all__ = ["NotifySocket", "Message"]

Message = dict[str, str]


def parse(payload: bytes) -> Message:
    """Return the fields of one notification datagram."""
    fields: Message = {}
    for line in payload.decode().splitlines():
        name, _, value = line.partition("=")
        fields[name] = value
    return fields


class NotifySocket:
    """A bound AF_UNIX SOCK_DGRAM socket at ``address`` (a path, or ``@name`` for an abstract one)."""

    def __init__(self, address: str) -> None:
        self.address = address
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(b"\0" + address[1:].encode() if address.startswith("@") else address)
        self._received: list[Message] = []
        self._read = 0
        self._changed = threading.Condition()
        # The kernel queues only net.unix.max_dgram_qlen datagrams (often 10): read them at once.
        self._thread = threading.Thread(target=self._collect, daemon=True)
        self._thread.start()

    def _collect(self) -> None:
        while True:
            try:
                payload = self._sock.recv(65536)
            except OSError:
                return  # closed
            if not payload:
                return  # shut down by close()
            with self._changed:
                self._received.append(parse(payload))
                self._changed.notify_all()

    def pending(self) -> list[Message]:
        """Return the messages received and not yet read, without reading them."""
        with self._changed:
            return list(self._received[self._read :])

    def next(self, match: Callable[[Message], bool] | str, timeout: float = 15.0) -> tuple[Message, list[Message]]:
        """Read up to and including the next message that matches; return it and the ones before it.

        ``match`` is a predicate or a field name that the message must carry.
        Raises ``AssertionError`` (listing what came) if none arrives in ``timeout`` seconds.
        """
        wanted = match if callable(match) else (lambda message: match in message)
        deadline = time.monotonic() + timeout
        skipped: list[Message] = []
        with self._changed:
            while True:
                while self._read < len(self._received):
                    message = self._received[self._read]
                    self._read += 1
                    if wanted(message):
                        return message, skipped
                    skipped.append(message)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no matching notification within {timeout}s; received after the last match: {skipped}")
                self._changed.wait(left)

    def close(self) -> None:
        """Stop listening."""
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        self._thread.join(5)
