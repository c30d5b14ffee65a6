"""Transport floors: minimal servers that decode each request frame and answer a fixed reply.

They speak ratelimitd's framing (``ratelimitd_client.wire``: 4-byte length, one
CBOR map) over a Unix socket and make no decision at all, so what they cost is
the least any Python server on that stack can cost per check. Three stacks:

- ``trio-stream``: Trio's ``SocketStream`` (the obvious way to write a Trio server);
- ``trio-socket``: raw ``trio.socket`` (no stream layer);
- ``asyncio``: asyncio streams (``start_unix_server``);
- ``trio-lowlevel``: stdlib non-blocking sockets under ``trio.lowlevel.wait_readable``:
  recv and send are plain calls (no checkpoints around them), a send that
  fits the socket buffer never yields. What a Trio server can reach by
  leaving out the socket wrapper's per-call checkpoints.

Each read is fed to a ``FrameDecoder`` and every complete frame in it is answered
in one write, so the same servers also serve as the pipelined floor. Run as
``python bench/floors.py KIND SOCKET``; it serves until killed.
"""

from __future__ import annotations

import socket as _stdsocket
import sys

from ratelimitd_client.wire import FrameDecoder, encode

__all__ = ["KINDS", "REPLY", "serve"]

KINDS = ("trio-stream", "trio-socket", "asyncio", "trio-lowlevel")

# a realistic granted reply of the size ratelimitd sends for one bucket
REPLY = encode(
    {
        "id": 0,
        "granted": True,
        "retry_after": 0,
        "remaining": 999_999,
        "reset": 60.0,
        "scope": "rest",
        "buckets": {"rest": [999_999, 60.0]},
    }
)

_RECV = 65536


def _replies(count: int) -> bytes:
    """Return the bytes answering ``count`` requests."""
    return REPLY if count == 1 else REPLY * count


async def _trio_stream(path: str) -> None:
    """Serve on Trio's ``SocketStream`` via ``serve_listeners``."""
    import trio

    sock = trio.socket.socket(_stdsocket.AF_UNIX, _stdsocket.SOCK_STREAM)
    await sock.bind(path)
    sock.listen(128)

    async def handle(stream: trio.SocketStream) -> None:
        decoder = FrameDecoder()
        try:
            async for data in stream:
                count = len(decoder.receive(data))
                if count:
                    await stream.send_all(_replies(count))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            await stream.aclose()

    await trio.serve_listeners(handle, [trio.SocketListener(sock)])


async def _trio_socket(path: str) -> None:
    """Serve on raw ``trio.socket`` objects: recv, decode, send, no stream layer."""
    import trio

    listener = trio.socket.socket(_stdsocket.AF_UNIX, _stdsocket.SOCK_STREAM)
    await listener.bind(path)
    listener.listen(128)

    async def handle(conn) -> None:
        decoder = FrameDecoder()
        with conn:
            try:
                while True:
                    data = await conn.recv(_RECV)
                    if not data:
                        return
                    count = len(decoder.receive(data))
                    if count:
                        out = memoryview(_replies(count))
                        while out:
                            sent = await conn.send(out)
                            out = out[sent:]
            except OSError:
                return

    async with trio.open_nursery() as nursery:
        while True:
            conn, _ = await listener.accept()
            nursery.start_soon(handle, conn)


async def _trio_lowlevel(path: str) -> None:
    """Serve with stdlib non-blocking sockets, waiting through ``trio.lowlevel`` only when they would block."""
    import trio

    wait_readable, wait_writable = trio.lowlevel.wait_readable, trio.lowlevel.wait_writable
    listener = _stdsocket.socket(_stdsocket.AF_UNIX, _stdsocket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(128)
    listener.setblocking(False)

    async def handle(conn: _stdsocket.socket) -> None:
        decoder = FrameDecoder()
        recv, send = conn.recv, conn.send
        with conn:
            try:
                while True:
                    await wait_readable(conn)
                    try:
                        data = recv(_RECV)
                    except BlockingIOError:
                        continue
                    if not data:
                        return
                    count = len(decoder.receive(data))
                    if not count:
                        continue
                    out = _replies(count)
                    try:
                        sent = send(out)
                    except BlockingIOError:
                        sent = 0
                    while sent < len(out):
                        await wait_writable(conn)
                        try:
                            sent += send(out[sent:])
                        except BlockingIOError:
                            pass
            except OSError:
                return

    async with trio.open_nursery() as nursery:
        while True:
            await wait_readable(listener)
            try:
                conn, _ = listener.accept()
            except BlockingIOError:
                continue
            conn.setblocking(False)
            nursery.start_soon(handle, conn)


async def _asyncio(path: str) -> None:
    """Serve on asyncio streams (``asyncio.start_unix_server``)."""
    import asyncio

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder = FrameDecoder()
        try:
            while True:
                data = await reader.read(_RECV)
                if not data:
                    break
                count = len(decoder.receive(data))
                if count:
                    writer.write(_replies(count))
                    await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_unix_server(handle, path=path)
    async with server:
        await server.serve_forever()


def serve(kind: str, path: str) -> None:
    """Run the floor server ``kind`` on the Unix socket ``path`` until the process is killed."""
    if kind == "trio-stream":
        import trio

        trio.run(_trio_stream, path)
    elif kind == "trio-socket":
        import trio

        trio.run(_trio_socket, path)
    elif kind == "trio-lowlevel":
        import trio

        trio.run(_trio_lowlevel, path)
    elif kind == "asyncio":
        import asyncio

        asyncio.run(_asyncio(path))
    else:
        raise SystemExit(f"unknown floor {kind!r}; choose one of {', '.join(KINDS)}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: python bench/floors.py KIND SOCKET")
    try:
        serve(sys.argv[1], sys.argv[2])
    except KeyboardInterrupt:
        pass
