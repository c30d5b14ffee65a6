"""The little the async client needs from its event loop, for asyncio and for Trio.

``current_backend()`` tells which library runs the calling task the way
sniffio does, without any dependency and without importing Trio (it looks for
it in ``sys.modules`` only): Trio when ``trio`` is imported and
``trio.lowlevel.current_trio_token()`` answers, asyncio otherwise. A backend
offers waiting for a socket to be readable or writable, an event, a lock, a
timeout, a shield and a turn for other tasks; the client does its own
non-blocking I/O.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager, nullcontext
from socket import socket
from typing import Any, Protocol, TypeVar

__all__ = ["Backend", "current_backend"]

T = TypeVar("T")


class Event(Protocol):
    def set(self) -> None: ...

    async def wait(self) -> Any: ...


class Backend(Protocol):
    name: str

    async def wait_readable(self, sock: socket) -> None: ...

    async def wait_writable(self, sock: socket) -> None: ...

    def event(self) -> Event: ...

    def lock(self) -> Any: ...

    async def run_with_timeout(self, seconds: float, fn: Callable[..., Awaitable[T]], *args: Any) -> T: ...

    def shield(self) -> AbstractContextManager[Any]: ...

    async def pass_turn(self) -> None: ...

    def notify_closing(self, sock: socket) -> None: ...


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class AsyncioBackend:
    """asyncio: waits through ``loop.add_reader``/``add_writer`` on the running loop."""

    name = "asyncio"

    async def wait_readable(self, sock: socket) -> None:
        """Return when ``sock`` has data or an error to read."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        fd = sock.fileno()
        loop.add_reader(fd, _wake, future)
        try:
            await future
        finally:
            loop.remove_reader(fd)

    async def wait_writable(self, sock: socket) -> None:
        """Return when ``sock`` can take more bytes (or has an error to report)."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        fd = sock.fileno()
        loop.add_writer(fd, _wake, future)
        try:
            await future
        finally:
            loop.remove_writer(fd)

    def event(self) -> asyncio.Event:
        return asyncio.Event()

    def lock(self) -> asyncio.Lock:
        return asyncio.Lock()

    async def run_with_timeout(self, seconds: float, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Return what ``fn(*args)`` returns; raise ``TimeoutError`` if it takes over ``seconds``."""
        async with asyncio.timeout(seconds):
            return await fn(*args)

    def shield(self) -> AbstractContextManager[Any]:
        # asyncio delivers a cancellation once; the awaits after it in a finally run.
        return nullcontext()

    async def pass_turn(self) -> None:
        pass  # asyncio's own sock_recv does not yield when data is there either

    def notify_closing(self, sock: socket) -> None:
        pass  # the client closes a socket only when no task waits on it


class TrioBackend:
    """Trio: ``trio.lowlevel.wait_readable``/``wait_writable``, cancel scopes for timeouts."""

    name = "trio"

    def __init__(self, trio: Any) -> None:
        self._trio = trio
        self._lowlevel = trio.lowlevel

    async def wait_readable(self, sock: socket) -> None:
        """Return when ``sock`` has data or an error to read."""
        await self._lowlevel.wait_readable(sock)

    async def wait_writable(self, sock: socket) -> None:
        """Return when ``sock`` can take more bytes (or has an error to report)."""
        await self._lowlevel.wait_writable(sock)

    def event(self) -> Any:
        return self._trio.Event()

    def lock(self) -> Any:
        return self._trio.Lock()

    async def run_with_timeout(self, seconds: float, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Return what ``fn(*args)`` returns; raise ``TimeoutError`` if it takes over ``seconds``."""
        with self._trio.move_on_after(seconds):
            return await fn(*args)
        raise TimeoutError

    def shield(self) -> AbstractContextManager[Any]:
        return self._trio.CancelScope(shield=True)

    async def pass_turn(self) -> None:
        """Let other tasks run once, without raising ``Cancelled`` (the reply in hand is not lost)."""
        await self._lowlevel.cancel_shielded_checkpoint()

    def notify_closing(self, sock: socket) -> None:
        self._lowlevel.notify_closing(sock)


_ASYNCIO = AsyncioBackend()
_TRIO: TrioBackend | None = None


def current_backend() -> Backend:
    """Return the backend of the library running the calling task; raise ``RuntimeError`` outside one."""
    global _TRIO
    trio = sys.modules.get("trio")
    if trio is not None:
        try:
            trio.lowlevel.current_trio_token()
        except RuntimeError:
            pass
        else:
            if _TRIO is None:
                _TRIO = TrioBackend(trio)
            return _TRIO
    asyncio.get_running_loop()  # raises RuntimeError("no running event loop") outside asyncio
    return _ASYNCIO
