"""``ratelimitd``: run the daemon in the foreground, logging to stderr."""

from __future__ import annotations

import logging
import os
import resource
import sys

import click
import trio

from ratelimitd_client.discovery import default_socket_path

from ..errors import ConfigError, RatelimitdError
from ..logs import setup_logging
from ..server.app import Server, Settings
from ..server.persistence import Persister
from ..store import StateStore, StoreError
from ..server.listener import bind_unix
from ..server.systemd import Notifier, inherited_socket, run_service, watchdog_interval
from ..tiers import load_file

__all__ = ["main", "default_state_path", "DEFAULT_CONFIG"]

log = logging.getLogger("ratelimitd")

DEFAULT_CONFIG = "/etc/ratelimitd/tiers.toml"
EX_CONFIG = 78  # sysexits.h: configuration error
FILE_RESERVE = 64  # descriptors kept back from connections: state file, WAL, listener, threads
EX_CANTCREAT = 73  # sysexits.h: cannot create (or use) an output file: the state file


def _octal(text: str) -> int:
    try:
        mode = int(text, 8)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not an octal mode such as 0660", param_hint="--socket-mode") from None
    if not 0 <= mode <= 0o777:
        raise click.BadParameter(f"{text!r} is not a permission mode (0000 to 0777)", param_hint="--socket-mode")
    return mode


def raise_file_limit(connections: int) -> int:
    """Raise the soft limit of open files toward ``connections`` (and the hard limit); return how many connections fit.

    Descriptors beyond the connections are kept in reserve for the state file, its
    WAL, the listener and worker threads (``FILE_RESERVE``).
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connections + FILE_RESERVE
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    if soft == resource.RLIM_INFINITY:
        return connections
    return max(1, min(connections, soft - FILE_RESERVE))


def default_state_path() -> str:
    """Return where state lives: ``$STATE_DIRECTORY`` (systemd), else ``$XDG_STATE_HOME/ratelimitd``, else ``~/.local/state/ratelimitd``."""
    directory = os.environ.get("STATE_DIRECTORY")
    if directory:
        return os.path.join(directory.split(":")[0], "state.db")
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "ratelimitd", "state.db")


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config", type=click.Path(dir_okay=False), default=DEFAULT_CONFIG, show_default=True, help="Tier table (TOML).")
@click.option("--socket", "socket_path", type=click.Path(dir_okay=False), default=None, help="Unix socket to listen on [default: $RATELIMITD_SOCKET, else $XDG_RUNTIME_DIR/ratelimitd/ratelimitd.sock, else /run/ratelimitd/ratelimitd.sock].")
@click.option("--state", "state_path", type=click.Path(dir_okay=False), default=None, help="State file (SQLite) [default: $STATE_DIRECTORY/state.db, else $XDG_STATE_HOME/ratelimitd/state.db].")
@click.option("--durability", type=click.Choice(["memory", "batched", "strict"]), default="batched", show_default=True, help="How grants reach the state file (see docs/state.md).")
@click.option("--socket-mode", type=str, default="0660", show_default=True, help="Permissions of the socket it creates (octal).")
@click.option("--socket-group", type=str, default=None, help="Group of the socket it creates: members may use the daemon.")
@click.option("--max-connections", type=click.IntRange(1), default=Settings.max_connections, show_default=True)
@click.option("--max-connections-per-uid", type=click.IntRange(1), default=Settings.max_connections_per_uid, show_default=True)
@click.option("--max-waiters-per-connection", type=click.IntRange(1), default=Settings.max_waiters_per_connection, show_default=True)
@click.option("--max-unread", type=click.IntRange(1024), default=Settings.max_unread, show_default=True, help="Bytes of unread replies before a client is dropped.")
@click.option("--first-frame-timeout", type=click.FloatRange(0.01), default=Settings.first_frame_timeout, show_default=True, help="Seconds a new connection may stay silent.")
@click.option("--idle-timeout", type=click.FloatRange(0.01), default=Settings.idle_timeout, show_default=True, help="Seconds a connection holding nothing may stay idle.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info", show_default=True)
@click.version_option(package_name="ratelimitd")
def main(
    config: str,
    socket_path: str | None,
    state_path: str | None,
    durability: str,
    socket_mode: str,
    socket_group: str | None,
    max_connections: int,
    max_connections_per_uid: int,
    max_waiters_per_connection: int,
    max_unread: int,
    first_frame_timeout: float,
    idle_timeout: float,
    log_level: str,
) -> None:
    """Run ratelimitd in the foreground until SIGTERM or SIGINT; SIGHUP reloads the tier table.

    Example:

        ratelimitd --config examples/tiers.toml
    """
    setup_logging(log_level)
    try:
        table = load_file(config)
    except ConfigError as exc:
        click.echo(f"ratelimitd: invalid tier table: {exc}", err=True)
        sys.exit(EX_CONFIG)
    except OSError as exc:
        click.echo(f"ratelimitd: cannot read the tier table {config}: {exc.strerror}", err=True)
        sys.exit(EX_CONFIG)
    settings = Settings(
        config=config,
        socket=socket_path or default_socket_path(),
        state=state_path or default_state_path(),
        durability=durability,
        max_connections=max_connections,
        max_connections_per_uid=max_connections_per_uid,
        max_waiters_per_connection=max_waiters_per_connection,
        max_unread=max_unread,
        first_frame_timeout=first_frame_timeout,
        idle_timeout=idle_timeout,
    )
    budget = raise_file_limit(max_connections)
    if budget < settings.max_connections:
        # Accepting more than the descriptors allow would leave clients neither served nor refused.
        settings.max_connections = budget
        settings.max_connections_per_uid = min(settings.max_connections_per_uid, max(1, budget * 3 // 4))
        log.warning(
            "open files allow %d connections: max_connections %d, max_connections_per_uid %d",
            budget, settings.max_connections, settings.max_connections_per_uid,
        )
    try:
        listening = inherited_socket()  # socket activation: the socket unit owns the path
        inherited = listening is not None
        if listening is None:
            listening = bind_unix(settings.socket, _octal(socket_mode), group=socket_group)
        elif isinstance(name := listening.getsockname(), str) and name:
            settings.socket = name
    except RatelimitdError as exc:
        click.echo(f"ratelimitd: {exc}", err=True)
        sys.exit(1)
    if inherited:
        log.info("adopted the listening socket %s from systemd", settings.socket)
    server = Server(settings, table)
    if durability != "memory":
        try:
            server.persister = Persister(StateStore.open(settings.state), durability)
        except StoreError as exc:
            click.echo(f"ratelimitd: {exc}", err=True)
            sys.exit(EX_CANTCREAT)
    server.notify = notify = Notifier.from_environ()
    try:
        trio.run(run_service, server, listening, notify, watchdog_interval())
    finally:
        if not inherited:
            try:
                os.unlink(settings.socket)
            except OSError:
                pass
    log.info("stopped cleanly")
