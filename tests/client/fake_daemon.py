"""A scripted stand-in for ratelimitd on a real Unix socket, served from threads: for unit tests of the client.

The test gives a handler; for every request frame the fake calls
``handler(conn, request)``, and the handler answers with ``conn.send(...)``
(a map, or raw frame bytes), ``conn.close()``, or not at all (holding the
request to answer later, from any thread). Every request is recorded with its
exact bytes, so tests can compare them with the golden frames.
"""

from __future__ import annotations

import json
import pathlib
import socket
import struct
import threading
from decimal import Decimal
from typing import Any, Callable

from ratelimitd_client import wire

__all__ = ["FakeDaemon", "FakeConnection", "Received", "vectors", "vector", "frame", "with_id", "granted"]

VECTORS_FILE = pathlib.Path(__file__).resolve().parents[1] / "vectors" / "frames.json"


def from_json(value: Any) -> Any:
    """Return ``value`` with every ``{"$decimal": "..."}`` made a Decimal."""
    if isinstance(value, dict):
        if value.keys() == {"$decimal"}:
            return Decimal(value["$decimal"])
        return {key: from_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [from_json(item) for item in value]
    return value


def vectors() -> list[dict[str, Any]]:
    """Return the golden vectors, each with ``frame`` (bytes) and ``meaning`` (the message, Decimals restored)."""
    document = json.loads(VECTORS_FILE.read_text())
    return [
        {**entry, "frame": bytes.fromhex(entry["hex"]), "meaning": from_json(entry["message"])}
        for entry in document["vectors"]
    ]


def vector(kind: str, name: str) -> dict[str, Any]:
    """Return the golden vector of ``kind`` (request, reply, push) and ``name``."""
    for entry in vectors():
        if entry["kind"] == kind and entry["name"] == name:
            return entry
    raise KeyError(f"no {kind} vector named {name!r}")


def with_id(message: dict[str, Any], rid: Any) -> dict[str, Any]:
    """Return a copy of ``message`` with its ``id`` set to ``rid`` (kept in place, or put first)."""
    if "id" in message:
        return {key: (rid if key == "id" else value) for key, value in message.items()}
    return {"id": rid, **message}


def frame(kind: str, name: str, rid: Any = None) -> bytes:
    """Return the golden frame of ``kind``/``name``, re-encoded with ``rid`` as its id when given."""
    entry = vector(kind, name)
    if rid is None or entry["meaning"].get("id") == rid:
        return entry["frame"]
    return wire.encode(with_id(entry["meaning"], rid))


class Received:
    """One request as the fake read it: the decoded map, its exact frame, and its connection's number."""

    __slots__ = ("message", "frame", "connection")

    def __init__(self, message: Any, frame: bytes, connection: int) -> None:
        self.message = message
        self.frame = frame
        self.connection = connection

    def __repr__(self) -> str:
        return f"Received({self.message!r}, connection={self.connection})"


class FakeConnection:
    """One accepted client connection of the fake daemon."""

    def __init__(self, daemon: FakeDaemon, sock: socket.socket, number: int) -> None:
        self.daemon = daemon
        self.sock = sock
        self.number = number
        self._send_lock = threading.Lock()
        self.closed = False

    def send(self, *messages: dict[str, Any] | bytes) -> None:
        """Send each message (a map, encoded here, or a whole frame as bytes) in one write."""
        data = b"".join(m if isinstance(m, (bytes, bytearray)) else wire.encode(m) for m in messages)
        with self._send_lock:
            if not self.closed:
                try:
                    self.sock.sendall(data)
                except OSError:
                    pass

    def close(self) -> None:
        """Close this connection, as a daemon that stops or restarts does."""
        with self._send_lock:
            if not self.closed:
                self.closed = True
                try:
                    self.sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                self.sock.close()

    def serve(self) -> None:
        buffer = b""
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    break
                buffer += data
                while len(buffer) >= 4:
                    (length,) = struct.unpack_from(">I", buffer)
                    if len(buffer) < 4 + length:
                        break
                    raw, buffer = buffer[: 4 + length], buffer[4 + length :]
                    received = Received(wire.decode_body(raw[4:]), raw, self.number)
                    with self.daemon.condition:
                        self.daemon.received.append(received)
                        self.daemon.condition.notify_all()
                    self.daemon.handler(self, received.message)
        except OSError:
            pass
        finally:
            self.close()


Handler = Callable[[FakeConnection, Any], None]


class FakeDaemon:
    """Serves ``path`` from a thread until ``stop()``; ``received`` lists every request in arrival order."""

    def __init__(self, path: str, handler: Handler) -> None:
        self.path = path
        self.handler = handler
        self.received: list[Received] = []
        self.connections: list[FakeConnection] = []
        self.condition = threading.Condition()
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> FakeDaemon:
        self._listener.bind(self.path)
        self._listener.listen(16)
        self._spawn(self._accept)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop accepting, close every connection, and wait for the threads."""
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept (Linux)
        except OSError:
            pass
        self._listener.close()
        for conn in list(self.connections):
            conn.close()
        for thread in self._threads:
            thread.join(timeout=5)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Received]:
        """Return the requests once at least ``count`` have arrived; fail the test after ``timeout`` s."""
        with self.condition:
            if not self.condition.wait_for(lambda: len(self.received) >= count, timeout):
                raise AssertionError(f"expected {count} requests, got {len(self.received)}: {self.received}")
            return list(self.received)

    @property
    def messages(self) -> list[Any]:
        """Report the decoded requests received so far."""
        return [r.message for r in self.received]

    def _spawn(self, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            conn = FakeConnection(self, sock, len(self.connections) + 1)
            self.connections.append(conn)
            self._spawn(conn.serve)


def granted(rid: Any, remaining: Any = 59, scope: str = "rest", **extra: Any) -> dict[str, Any]:
    """Return a granted acquire reply shaped like the golden one."""
    return {
        "id": rid,
        "granted": True,
        "retry_after": 0,
        "remaining": remaining,
        "reset": 60.0,
        "scope": scope,
        "buckets": {scope: [remaining, 60.0]},
        **extra,
    }

