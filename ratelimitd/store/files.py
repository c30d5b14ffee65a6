"""The state file on disk: where it may live, who may own it, and the lock that gives it one daemon.

Rules enforced here, before SQLite ever sees the file:

- The directory is created with mode 0700 and the file with mode 0600 (an
  existing file with wider permissions is tightened). SQLite gives its
  ``-wal`` and ``-shm`` files the mode of the database file.
- A path that goes through a symlink must land in a directory owned by this
  user; otherwise the store refuses it (root following a user's symlink would
  otherwise write wherever that user points). An existing file must be owned
  by this user.
- One daemon per state file: an exclusive ``flock`` on the sibling
  ``PATH.lock``, which holds the owner's pid as text. SQLite's own locking
  would let two daemons interleave their writes; the lock makes the second
  one refuse to start. The lock file is never deleted (deleting lock files races).
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import time
from datetime import datetime, timezone

from .errors import StoreError, StoreLocked, StoreUnsafePath, StoreUnwritable, classify

__all__ = ["StateLock", "prepare_path", "create_file", "probe_lock", "move_aside", "SIDE_FILES"]

#: Files SQLite keeps beside the database in WAL mode.
SIDE_FILES = ("-wal", "-shm")

_OPEN_FLAGS = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC


def prepare_path(path: str | os.PathLike[str]) -> str:
    """Return the real absolute path of the state file, creating its directory (mode 0700).

    Raises ``StoreUnsafePath`` when the path goes through a symlink into a
    directory owned by another user, ``StoreUnwritable`` when the directory
    cannot be created (a component is a file, permissions, read-only).
    """
    given = os.path.abspath(os.fspath(path))
    real = os.path.realpath(given)
    directory = os.path.dirname(real)
    if real != given:
        _check_symlink_target(given, real, directory)
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
    except FileExistsError as exc:
        raise StoreUnwritable(real, f"{exc.filename or directory} exists and is not a directory") from exc
    except NotADirectoryError as exc:
        raise StoreUnwritable(real, f"a component of {directory} is not a directory") from exc
    except OSError as exc:
        raise classify(exc, real, "create the directory of") from exc
    return real


def _check_symlink_target(given: str, real: str, directory: str) -> None:
    try:
        owner = os.stat(directory).st_uid
    except FileNotFoundError:
        raise StoreUnsafePath(
            f"state path {given} goes through a symlink to {real}, whose directory does not "
            "exist; ratelimitd does not create directories through a symlink: create it, "
            "or give the real path as --state",
            path=given,
        ) from None
    if owner != os.geteuid():
        raise StoreUnsafePath(
            f"state path {given} goes through a symlink to {real}, in a directory owned by "
            f"uid {owner}, not by this user (uid {os.geteuid()}); ratelimitd refuses to follow "
            "it: give a path in a directory this user owns",
            path=given,
        )


def create_file(path: str) -> bool:
    """Create ``path`` with mode 0600 unless it exists; report whether it already existed.

    An existing file must be a regular file owned by this user; its mode is
    tightened to 0600. Raises ``StoreUnwritable`` when it cannot be opened for
    writing and ``StoreUnsafePath`` when it is a symlink or someone else's.
    """
    existed = os.path.lexists(path)
    try:
        fd = os.open(path, _OPEN_FLAGS, 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise StoreUnsafePath(
                f"state file {path} is a symlink; ratelimitd refuses to follow it: "
                "give the real path as --state",
                path=path,
            ) from exc
        raise classify(exc, path, "open") from exc
    try:
        _check_owned_regular(fd, path)
        for suffix in SIDE_FILES:
            _tighten(path + suffix)
    finally:
        os.close(fd)
    return existed


def _check_owned_regular(fd: int, path: str) -> None:
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        raise StoreUnwritable(path, "not a regular file")
    if info.st_uid != os.geteuid():
        raise StoreUnsafePath(
            f"state file {path} is owned by uid {info.st_uid}, not by this user "
            f"(uid {os.geteuid()}); run ratelimitd as its owner, or choose another --state PATH",
            path=path,
        )
    if stat.S_IMODE(info.st_mode) & 0o077:
        os.fchmod(fd, 0o600)


def _tighten(path: str) -> None:
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISREG(info.st_mode) and info.st_uid == os.geteuid() and stat.S_IMODE(info.st_mode) & 0o077:
        os.chmod(path, 0o600)


class StateLock:
    """An exclusive ``flock`` on ``PATH.lock`` held for the life of one daemon."""

    __slots__ = ("path", "_fd")

    def __init__(self, path: str, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, state_path: str, timeout: float = 1.0) -> "StateLock":
        """Take the lock of ``state_path`` (retrying for ``timeout`` s) and write our pid into it.

        The short retry covers ``probe_lock``, which holds a shared lock for
        microseconds. Raises ``StoreLocked`` with the holder's pid when another
        process keeps it, ``StoreUnwritable`` when the lock file cannot be created.
        """
        lock_path = state_path + ".lock"
        try:
            fd = os.open(lock_path, _OPEN_FLAGS, 0o600)
        except OSError as exc:
            raise classify(exc, state_path, "lock", about=lock_path) from exc
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    pid = _read_pid(fd)
                    os.close(fd)
                    raise StoreLocked(state_path, pid) from None
                time.sleep(0.05)
            except OSError as exc:
                os.close(fd)
                raise classify(exc, state_path, "lock", about=lock_path) from exc
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError as exc:
            os.close(fd)
            raise classify(exc, state_path, "lock", about=lock_path) from exc
        return cls(lock_path, fd)

    def release(self) -> None:
        """Release the lock (closing the file releases the flock); calling it twice is harmless."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def probe_lock(state_path: str) -> int | None:
    """Report the pid of the daemon holding ``state_path`` (-1 if its pid is unknown), or None if none does.

    Takes a shared lock for an instant when the file is free, which a starting
    daemon's retry absorbs; never creates the lock file.
    """
    try:
        fd = os.open(state_path + ".lock", os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            return -1 if pid is None else pid
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def move_aside(path: str | os.PathLike[str], when: datetime | None = None) -> str:
    """Rename the state file (and its -wal, -shm) to ``PATH.corrupt-YYYYmmddTHHMMSS``; return the new path.

    This is the operator's explicit choice to start from empty; the daemon
    never calls it on its own. Holds the lock while renaming, so it raises
    ``StoreLocked`` while a daemon uses the file.
    """
    real = os.path.realpath(os.fspath(path))
    stamp = (when or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%S")
    target = f"{real}.corrupt-{stamp}"
    if os.path.lexists(target):
        raise StoreError(f"cannot move {real} aside: {target} already exists", path=real)
    lock = StateLock.acquire(real, timeout=0)
    try:
        # The database first: if that fails nothing has moved; its -wal must
        # follow it, or a fresh database at PATH could replay stale frames.
        os.rename(real, target)
        for suffix in SIDE_FILES:
            if os.path.lexists(real + suffix):
                os.rename(real + suffix, target + suffix)
    except OSError as exc:
        raise classify(exc, real, "move aside") from exc
    finally:
        lock.release()
    return target
