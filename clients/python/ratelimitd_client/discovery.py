"""Where the daemon's socket is: the one rule that both the daemon and its clients follow.

In order (docs/protocol.md, "Transport"): an explicit path; ``$RATELIMITD_SOCKET``;
``$XDG_RUNTIME_DIR/ratelimitd/ratelimitd.sock``; ``/run/ratelimitd/ratelimitd.sock``.
The first rule that applies decides; nothing is probed on disk, so the daemon
binds exactly where its clients look. The daemon imports ``default_socket_path``
from here, so the rule is written once.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Union

__all__ = ["ENV_SOCKET", "SYSTEM_SOCKET", "SocketPath", "default_socket_path", "resolve_socket"]

ENV_SOCKET = "RATELIMITD_SOCKET"
SYSTEM_SOCKET = "/run/ratelimitd/ratelimitd.sock"
_RUNTIME_NAME = os.path.join("ratelimitd", "ratelimitd.sock")

SocketPath = Union[str, "os.PathLike[str]"]


def resolve_socket(explicit: SocketPath | None = None, environ: Mapping[str, str] | None = None) -> tuple[str, str]:
    """Return the socket path to use and how it was chosen.

    The second item is ``"explicit"``, ``"$RATELIMITD_SOCKET"``,
    ``"$XDG_RUNTIME_DIR"`` or ``"default"``, for messages that say why a path
    was tried. ``environ`` defaults to ``os.environ``. An empty variable counts
    as unset; so does a relative ``XDG_RUNTIME_DIR``, which the XDG Base
    Directory specification says to ignore.
    """
    if explicit is not None:
        path = os.fspath(explicit)
        if not path:
            raise ValueError("the socket path is empty")
        return path, "explicit"
    env = os.environ if environ is None else environ
    path = env.get(ENV_SOCKET)
    if path:
        return path, f"${ENV_SOCKET}"
    runtime = env.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isabs(runtime):
        return os.path.join(runtime, _RUNTIME_NAME), "$XDG_RUNTIME_DIR"
    return SYSTEM_SOCKET, "default"


def default_socket_path(environ: Mapping[str, str] | None = None) -> str:
    """Return the socket path used when none is given: ``resolve_socket()`` without an explicit path."""
    return resolve_socket(None, environ)[0]
