"""Helpers of the store tests: a fake set of machine clocks, a first engine time, and acting as another user."""

from __future__ import annotations

import os
import pickle
import traceback
from collections.abc import Callable
from typing import Any

T0 = 1_700_000_000 * 10**9  # engine time of the first run in most tests
NOBODY = 65534


class FakeClocks:
    """The three readings ``SystemClocks`` gives, as plain attributes a test moves by hand."""

    def __init__(self, boot: str = "boot-a", boottime: int = 5_000 * 10**9, wall: int = T0) -> None:
        self.boot = boot
        self.boottime = boottime
        self.wall = wall

    def advance(self, ns: int) -> None:
        """Let ``ns`` pass on both the boottime and the wall clock."""
        self.boottime += ns
        self.wall += ns

    def boot_id(self) -> str:
        return self.boot

    def boottime_ns(self) -> int:
        return self.boottime

    def wall_ns(self) -> int:
        return self.wall


def as_user(uid: int, action: Callable[[], Any]) -> Any:
    """Run ``action`` with effective uid/gid ``uid`` in a forked child; return its result or re-raise its error.

    Tests run as root in CI, where permissions never refuse anything; a child
    that drops to ``nobody`` meets them as a real user would. The exception
    comes back pickled (the store's errors carry only strings and ints).
    """
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        status = 0
        try:
            os.close(reader)
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            try:
                payload = ("ok", action())
            except BaseException as exc:  # report any failure to the parent
                payload = ("error", exc, traceback.format_exc())
            with os.fdopen(writer, "wb") as out:
                pickle.dump(payload, out)
        except BaseException:
            status = 1
        finally:
            os._exit(status)
    os.close(writer)
    with os.fdopen(reader, "rb") as incoming:
        data = incoming.read()
    _, status = os.waitpid(pid, 0)
    assert status == 0 and data, f"child as uid {uid} failed before reporting (status {status})"
    payload = pickle.loads(data)
    if payload[0] == "error":
        raise payload[1]
    return payload[1]
