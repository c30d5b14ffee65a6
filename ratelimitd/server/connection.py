"""One client connection: read what the socket has, answer every complete frame, write once.

The hot path is deliberately short: ``recv`` → ``FrameDecoder.receive`` (every
complete frame in the buffer, cbor2's C decoder) → ``handle`` (synchronous, no
``await`` between decoding and deciding) → one ``send`` of all replies of the
batch. No task per request, no logging per request. The socket is a plain
non-blocking one driven by ``trio.lowlevel.wait_readable``/``wait_writable``
rather than ``trio.socket``: the wrapper's extra scheduling per call cost about
a third of the daemon's CPU per request (bench/README.md). A reply that fits
the socket buffer is written without any ``await`` (the rest, if any, goes to
the writer task); after one, the reader waits for the next request at once
instead of trying a ``recv`` that would fail.

Replies that come later (a waiter granted by the scheduler, a push) are queued
with ``push`` and written by the connection's writer task, so that a client that
does not read its replies can stall only itself, never the scheduler.
"""

from __future__ import annotations

import logging
import socket
from typing import TYPE_CHECKING, Any, Callable

import trio
from ratelimitd_client.wire import FrameDecoder, FrameTooLarge, encode

if TYPE_CHECKING:
    from ..engine import Waiter
    from .peers import Peer

__all__ = ["Connection", "RECV_SIZE", "YIELD_EVERY"]

log = logging.getLogger("ratelimitd")

# One recv takes what a client pipelines in one go; 64 KiB holds hundreds of requests.
RECV_SIZE = 65536
# Batches a connection may serve without yielding to other tasks (its waits for the next
# request yield anyway; this bounds a client that keeps the socket full).
YIELD_EVERY = 16


class Connection:
    """A connected client: its socket, its queued replies and its waiting requests."""

    __slots__ = (
        "sock", "ident", "peer", "waiters", "leases", "_outbox", "_queued", "_sending", "_wakeup", "closed",
        "max_unread", "batches", "swept_batches", "opened", "last_seen",
    )

    def __init__(self, sock: socket.socket, ident: int, peer: Peer | None, max_unread: int = 1 << 22) -> None:
        self.sock = sock  # non-blocking stdlib socket
        self.ident = ident
        self.peer = peer  # pid, uid, gid and groups from SO_PEERCRED / SO_PEERGROUPS
        self.max_unread = max_unread  # replies queued beyond this: the client is not reading; drop it
        self._queued = 0
        self.batches = 0  # reads that brought requests; the sweeper compares it to see activity
        self.swept_batches = 0
        self.opened = trio.current_time()
        self.last_seen = self.opened
        self.waiters: set[Waiter] = set()
        self.leases: set[str] = set()  # ids of the leases this client holds; released when it goes
        self._outbox: list[bytes] = []
        self._sending = False
        self._wakeup = trio.Event()
        self.closed = False

    async def run(self, handle: Callable[[Any, "Connection"], bytes | None], max_frame: int) -> None:
        """Serve this connection until the client closes it or it must be dropped."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._writer)
            try:
                await self._reader(handle, max_frame)
            except (OSError, trio.BrokenResourceError, trio.ClosedResourceError):
                pass  # the client went away mid-reply, or was dropped; its waiters are dropped by the caller
            finally:
                self.closed = True
                nursery.cancel_scope.cancel()

    async def _reader(self, handle: Callable[[Any, "Connection"], bytes | None], max_frame: int) -> None:
        decoder = FrameDecoder(max_frame)
        sock = self.sock
        recv = sock.recv
        wait_readable = trio.lowlevel.wait_readable
        replied = True  # at the start, as after a reply: nothing to read until the client writes
        unyielded = 0
        while True:
            if replied:
                await wait_readable(sock)
                unyielded = 0
            try:
                data = recv(RECV_SIZE)
            except BlockingIOError:
                replied = True
                continue
            except OSError:  # reset by the client, or closed by abort()
                return
            if not data:
                return
            self.batches += 1
            try:
                messages = decoder.receive(data)
            except FrameTooLarge as exc:
                await self.send(encode({"error": "frame-too-large", "message": str(exc)}))
                return
            replies = []
            for message in messages:
                reply = handle(message, self)
                if reply is not None:
                    replies.append(reply)
            replied = bool(replies)
            if replied:
                await self.send(replies[0] if len(replies) == 1 else b"".join(replies))
            else:
                unyielded += 1
                if unyielded >= YIELD_EVERY:  # a client that never pauses must not keep the others waiting
                    unyielded = 0
                    await trio.lowlevel.checkpoint()

    async def send(self, data: bytes) -> None:
        """Write ``data`` now, or behind replies already queued (order is kept); never waits for the client.

        What the socket does not take at once goes to the writer task, so the
        reader goes on reading: a client that stops reading its replies fills
        its outbox and is dropped at ``max_unread``, instead of stalling here.
        """
        if self._sending or self._outbox:
            self.push(data)
            return
        try:
            sent = self.sock.send(data)
        except BlockingIOError:
            sent = 0
        if sent < len(data):
            self.push(data[sent:])
        if self.batches % YIELD_EVERY == 0:
            await trio.lowlevel.checkpoint()  # a send that never blocks must still let others run now and then

    def push(self, data: bytes) -> None:
        """Queue ``data`` for the writer task; never blocks (safe from any task)."""
        if self.closed:
            return
        self._outbox.append(data)
        self._queued += len(data)
        if self._queued > self.max_unread:
            self.abort(f"it left {self._queued} bytes of replies unread (limit {self.max_unread})")
            return
        self._wakeup.set()

    def abort(self, why: str) -> None:
        """Drop this client: close its socket (its tasks end, its waiters and leases are released)."""
        if not self.closed:
            log.warning("dropping client %s: %s", self.peer.describe() if self.peer else f"#{self.ident}", why)
            self.closed = True
            self._outbox.clear()
            trio.lowlevel.notify_closing(self.sock)
            self.sock.close()

    @property
    def queued_bytes(self) -> int:
        """Report how many bytes wait to be written to this client."""
        return self._queued

    async def _writer(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup = trio.Event()
            while self._outbox and not self._sending:
                data = b"".join(self._outbox)
                self._outbox.clear()
                self._queued = 0
                self._sending = True
                try:
                    await self._send_all(data)
                except (OSError, trio.ClosedResourceError):
                    self.closed = True
                    return
                finally:
                    self._sending = False

    async def _send_all(self, data: bytes) -> None:
        view = memoryview(data)
        sock = self.sock
        while view:
            try:
                sent = sock.send(view)
            except BlockingIOError:
                await trio.lowlevel.wait_writable(sock)
                continue
            view = view[sent:]
