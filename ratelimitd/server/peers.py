"""Who is on the other end of a connection: pid, uid, gid and supplementary groups from the kernel.

``SO_PEERCRED`` gives the pid, uid and primary gid of the process that
connected; ``SO_PEERGROUPS`` (Linux ≥ 4.13) its supplementary groups, so that
membership of a group listed in the tier table counts however it was granted.
Both are read once per connection, never per request.
"""

from __future__ import annotations

import pwd
import socket
import struct
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

__all__ = ["Peer", "peer_of", "user_name"]

_PEERCRED = struct.Struct("3i")
_SO_PEERGROUPS = getattr(socket, "SO_PEERGROUPS", 59)  # Linux; the constant is missing from older Pythons
_MAX_GROUPS = 65536


@dataclass(frozen=True, slots=True)
class Peer:
    """A connected process: ``pid``, ``uid``, ``gid`` and every group it is in (``gids``, primary included)."""

    pid: int
    uid: int
    gid: int
    gids: frozenset[int]

    def __iter__(self):  # (pid, uid, gid), as leases and logs show a holder
        return iter((self.pid, self.uid, self.gid))

    def __getitem__(self, index: int) -> int:
        return (self.pid, self.uid, self.gid)[index]

    def describe(self) -> str:
        """Return ``uid 1001 (alice), pid 4242`` for messages and logs."""
        return f"uid {self.uid} ({user_name(self.uid)}), pid {self.pid}"


def peer_of(sock: Any) -> Peer | None:
    """Return the credentials of ``sock``'s peer, or None when the kernel does not tell (not a Unix socket)."""
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
    except OSError:
        return None
    pid, uid, gid = _PEERCRED.unpack(raw)
    return Peer(pid, uid, gid, frozenset((gid, *_groups(sock))))


def _groups(sock: Any) -> tuple[int, ...]:
    size = 256
    while size <= _MAX_GROUPS * 4:
        try:
            raw = sock.getsockopt(socket.SOL_SOCKET, _SO_PEERGROUPS, size)
        except OSError as exc:
            if exc.errno == 34 and size < _MAX_GROUPS * 4:  # ERANGE: more groups than fit
                size *= 4
                continue
            return ()
        return struct.unpack(f"{len(raw) // 4}I", raw)
    return ()


@lru_cache(maxsize=1024)
def user_name(uid: int) -> str:
    """Return the login name of ``uid``, or ``?`` when it has none."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return "?"
