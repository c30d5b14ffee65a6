"""A sub-millisecond alarm for the scheduler: a Linux ``timerfd`` watched by Trio.

Trio sleeps in ``epoll_wait``, whose timeout is whole milliseconds, rounded
up; a waiter whose slot frees at some instant was then granted up to ~2 ms
late (bench: "freed slot granted within 1 ms"). A ``timerfd`` armed at the
exact instant becomes readable within microseconds of it, and Trio wakes on
readability without any polling. Where it is unavailable (not Linux, a
seccomp filter that forbids it) or the clock is not the real one (tests on
``MockClock``), ``Alarm`` is None and the scheduler sleeps with Trio's timers.
"""

from __future__ import annotations

import ctypes
import logging
import os
import time
from typing import Callable

import trio

__all__ = ["Alarm"]

log = logging.getLogger("ratelimitd")

_CLOCK_MONOTONIC = 1
_TFD_NONBLOCK = os.O_NONBLOCK
_TFD_CLOEXEC = 0o2000000
_TFD_TIMER_ABSTIME = 1


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


class Alarm:
    """A timerfd: ``arm(trio_time)`` sets it, ``fired()`` waits for it (and for nothing else)."""

    def __init__(self, fd: int, libc: ctypes.CDLL) -> None:
        self._fd = fd
        self._libc = libc

    @classmethod
    def create(cls) -> "Alarm | None":
        """Return an alarm, or None where a timerfd cannot be had or the clock is not the real one."""
        if _mock_clock():
            return None
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = libc.timerfd_create(_CLOCK_MONOTONIC, _TFD_NONBLOCK | _TFD_CLOEXEC)
        except (OSError, AttributeError):
            return None
        if fd < 0:
            log.info("no timerfd (errno %d): waiters are woken with millisecond timers", ctypes.get_errno())
            return None
        return cls(fd, libc)

    def arm(self, trio_deadline: float) -> None:
        """Make the alarm fire at Trio time ``trio_deadline`` (CLOCK_MONOTONIC underneath)."""
        at = trio_deadline - trio.current_time() + time.monotonic()
        if at <= 0:
            at = 1e-9
        seconds = int(at)
        spec = _Itimerspec(_Timespec(0, 0), _Timespec(seconds, max(1, int((at - seconds) * 1e9))))
        self._libc.timerfd_settime(self._fd, _TFD_TIMER_ABSTIME, ctypes.byref(spec), None)

    async def fired(self) -> None:
        """Wait until the alarm goes off, and reset it."""
        while True:
            await trio.lowlevel.wait_readable(self._fd)
            try:
                os.read(self._fd, 8)
                return
            except BlockingIOError:
                continue  # disarmed or re-armed since it became readable

    async def ring(self, wake: "Callable[[], None]") -> None:
        """Call ``wake`` each time the alarm goes off, until cancelled; then release the timerfd."""
        try:
            while True:
                await self.fired()
                wake()
        finally:
            os.close(self._fd)  # nobody waits on it any more: ring was the only one


def _mock_clock() -> bool:
    import trio.testing

    return isinstance(trio.lowlevel.current_clock(), trio.testing.MockClock)
