"""The listening Unix socket: created atomically with its mode, stale files handled.

A daemon that died leaves its socket file behind; a second daemon must not
steal a live one's path. So: a socket file that accepts a connection belongs to
a running daemon and is an error; one that refuses is stale and replaced. The
socket is bound under a temporary name with the umask that gives the wanted
mode and then renamed into place, so there is no moment at which the path
exists with looser permissions.
"""

from __future__ import annotations

import errno
import grp
import logging
import os
import socket as stdlib_socket
import stat

from ..errors import RatelimitdError

__all__ = ["ListenError", "bind_unix", "DEFAULT_SOCKET_MODE", "DEFAULT_BACKLOG"]

log = logging.getLogger("ratelimitd")

DEFAULT_SOCKET_MODE = 0o660
# Many scripts start at once from cron; a short backlog would refuse some of them.
DEFAULT_BACKLOG = 1024


class ListenError(RatelimitdError):
    """The socket cannot be created; the message names the path and what to do."""


def _gid(group: str) -> int:
    if group.isdigit():
        return int(group)
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise ListenError(f"no group {group!r} for the socket (--socket-group)") from None


def _in_use(path: str) -> bool:
    probe = stdlib_socket.socket(stdlib_socket.AF_UNIX, stdlib_socket.SOCK_STREAM)
    try:
        probe.settimeout(1.0)
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        return False
    except OSError as exc:
        if exc.errno in (errno.ECONNREFUSED, errno.ENOENT):
            return False
        raise
    finally:
        probe.close()
    return True


def bind_unix(
    path: str, mode: int = DEFAULT_SOCKET_MODE, backlog: int = DEFAULT_BACKLOG, group: str | None = None
) -> stdlib_socket.socket:
    """Return a listening stdlib socket at ``path`` with ``mode`` (Trio adopts it with ``from_stdlib_socket``).

    ``group`` (a name or numeric gid) becomes the socket's group before it appears
    at ``path``. Creates the parent directory (0755) if missing; replaces a stale socket file;
    raises ``ListenError`` when another daemon listens there, when the path is not
    a socket, or when the directory cannot be written.
    """
    directory = os.path.dirname(path) or "."
    try:
        os.makedirs(directory, mode=0o755, exist_ok=True)
    except OSError as exc:
        raise ListenError(f"cannot create the socket directory {directory}: {exc.strerror}") from exc
    try:
        existing = os.lstat(path)
    except FileNotFoundError:
        existing = None
    if existing is not None:
        if not stat.S_ISSOCK(existing.st_mode):
            raise ListenError(f"{path} exists and is not a socket; remove it or choose another --socket")
        if _in_use(path):
            raise ListenError(f"another ratelimitd is already listening on {path}; stop it or choose another --socket")
        log.warning("removing stale socket %s left by a daemon that did not stop cleanly", path)
    temporary = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    sock = stdlib_socket.socket(stdlib_socket.AF_UNIX, stdlib_socket.SOCK_STREAM)
    old_umask = os.umask(0o777 & ~mode)
    try:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        sock.bind(temporary)
        if group is not None:
            os.chown(temporary, -1, _gid(group))
        os.chmod(temporary, mode)
        os.rename(temporary, path)
    except OSError as exc:
        sock.close()
        raise ListenError(f"cannot create the socket {path}: {exc.strerror}") from exc
    finally:
        os.umask(old_umask)
    sock.listen(backlog)
    sock.setblocking(False)
    return sock
