"""Faults of the state file, each with a message naming the path and what to do.

Every class derives from ``StoreError``, itself a ``RatelimitdError``. The
store never lets a raw ``sqlite3.Error`` or ``OSError`` escape: ``classify``
turns one into the matching class, keeping the original as ``__cause__``.
A failed write leaves the database as it was before the call (the
transaction is rolled back), so the caller may keep its dirty rows and retry.
"""

from __future__ import annotations

import errno
import os
import sqlite3

from ..errors import RatelimitdError

__all__ = [
    "StoreError",
    "StoreCorrupt",
    "StoreIncompatible",
    "StoreLocked",
    "StoreUnwritable",
    "StoreUnsafePath",
    "StoreFull",
    "StoreMissing",
    "classify",
    "StoreGuard",
]

# Primary result codes (the low byte of an extended code), from sqlite3.h.
_SQLITE_PERM = 3
_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6
_SQLITE_READONLY = 8
_SQLITE_IOERR = 10
_SQLITE_CORRUPT = 11
_SQLITE_FULL = 13
_SQLITE_CANTOPEN = 14
_SQLITE_AUTH = 23
_SQLITE_NOTADB = 26


class StoreError(RatelimitdError):
    """A state file the store cannot use. ``path`` names it; ``detail`` is the cause's text."""

    def __init__(self, message: str, *, path: str, detail: str | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.detail = detail

    def __reduce__(self) -> tuple[object, ...]:
        # Subclasses take other arguments than ``args``; rebuild from message and attributes.
        return (_rebuild, (type(self), str(self), dict(self.__dict__)))


def _rebuild(cls: type[StoreError], message: str, attributes: dict[str, object]) -> StoreError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(attributes)
    return error


class StoreCorrupt(StoreError):
    """The file is not an SQLite database, is malformed, or holds a row that cannot be decoded."""

    def __init__(self, path: str, detail: str) -> None:
        super().__init__(
            f"state file {path} is corrupt ({detail}); ratelimitd does not start on it, "
            "because starting empty would forget what was already spent: restore a backup, "
            f"or move it aside (mv {path} {path}.corrupt) to start from empty",
            path=path,
            detail=detail,
        )


class StoreIncompatible(StoreError):
    """The file is an SQLite database but not one this ratelimitd can use (another program's, or newer)."""


class StoreLocked(StoreError):
    """Another process (``pid``, None if unknown) holds the state file."""

    def __init__(self, path: str, pid: int | None, detail: str | None = None) -> None:
        who = f"pid {pid}" if pid is not None else "pid unknown"
        super().__init__(
            f"another ratelimitd ({who}) uses {path}; stop it first, "
            "or give this daemon its own --state PATH",
            path=path,
            detail=detail,
        )
        self.pid = pid


class StoreUnwritable(StoreError):
    """The file or its directory cannot be created or written (permissions, read-only, not a directory)."""

    def __init__(self, path: str, detail: str) -> None:
        directory = os.path.dirname(path) or "."
        super().__init__(
            f"cannot write state file {path} ({detail}); make {directory} writable "
            f"by uid {os.geteuid()}, or choose another --state PATH",
            path=path,
            detail=detail,
        )


class StoreUnsafePath(StoreError):
    """The path leads somewhere the daemon refuses to write (a symlink into another user's directory)."""


class StoreFull(StoreError):
    """The filesystem (or the database's page limit) is full."""

    def __init__(self, path: str, detail: str) -> None:
        directory = os.path.dirname(path) or "."
        super().__init__(
            f"cannot write state file {path}: the disk is full ({detail}); "
            f"free space on the filesystem holding {directory}",
            path=path,
            detail=detail,
        )


class StoreMissing(StoreError):
    """A read-only open found no state file at the path."""

    def __init__(self, path: str) -> None:
        super().__init__(
            f"no state file at {path}; check --state PATH "
            "(the daemon creates it on its first start)",
            path=path,
        )


def classify(exc: BaseException, path: str, doing: str = "use", about: str | None = None) -> StoreError:
    """Return the ``StoreError`` that describes ``exc`` (an sqlite3 or OS error) for ``path``.

    ``doing`` says what failed ("open", "save state to", "read") and starts the
    message of the generic case; ``about`` names the file that failed when it
    is not ``path`` itself (the lock file). Errors already classified come
    back unchanged.
    """
    if isinstance(exc, StoreError):
        return exc
    prefix = f"{about}: " if about else ""
    if isinstance(exc, sqlite3.Error):
        detail = prefix + str(exc)
        code = getattr(exc, "sqlite_errorcode", None)
        primary = code & 0xFF if isinstance(code, int) else None
        if primary == _SQLITE_FULL:
            return StoreFull(path, detail)
        if primary in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
            return StoreCorrupt(path, detail)
        if primary in (_SQLITE_READONLY, _SQLITE_PERM, _SQLITE_CANTOPEN, _SQLITE_AUTH):
            return StoreUnwritable(path, detail)
        if primary in (_SQLITE_BUSY, _SQLITE_LOCKED):
            return StoreLocked(path, None, detail)
        advice = "check the disk and the system log" if primary == _SQLITE_IOERR else "see the cause"
        return StoreError(f"cannot {doing} state file {path} ({detail}); {advice}", path=path, detail=detail)
    if isinstance(exc, OSError):
        detail = prefix + (exc.strerror or str(exc))
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return StoreFull(path, detail)
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EISDIR, errno.EEXIST):
            return StoreUnwritable(path, detail)
        return StoreError(
            f"cannot {doing} state file {path} ({detail}); check the disk and the system log",
            path=path,
            detail=detail,
        )
    return StoreError(f"cannot {doing} state file {path} ({exc!r})", path=path, detail=repr(exc))


class StoreGuard:
    """A context that turns sqlite3 and OS errors raised inside it into ``StoreError``s for ``path``."""

    __slots__ = ("path", "doing")

    def __init__(self, path: str, doing: str) -> None:
        self.path = path
        self.doing = doing

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if isinstance(exc, (sqlite3.Error, OSError)):
            raise classify(exc, self.path, self.doing) from exc
