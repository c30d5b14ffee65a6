"""``ratelimitctl``: look at and steer a running ratelimitd, and validate tier tables without one.

A thin shell over ``ratelimitd_client``: each command builds a ``Client``, calls
one method and prints what came back (``render``), aligned for people or as
JSON with ``--json``. ``check`` alone needs no daemon: it runs the daemon's own
``tiers.load_file``. The lease commands (``release``, ``leases``, ``renew``,
``settle``, ``run``) live in ``lease_cmds`` and ``report`` in ``report_cmd``,
registered at the end of this module. Exit statuses (also in ``--help`` and docs/ratelimitctl.md):
0 success or granted, 1 the daemon refused or the table is invalid, 2 usage,
69 the daemon cannot be reached, 75 denied or the wait ran out.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click
from ratelimitd_client import (
    Client,
    DaemonUnavailable,
    Forbidden,
    InvalidTable,
    ProtocolError,
    RequestFailed,
    ShuttingDown,
)
from ratelimitd_client.protocol import EXIT_DENIED

from .. import __version__
from ..store import StoreError
from ..store import inspect as inspect_state
from . import lease_cmds, render, report_cmd
from .options import json_option, permit_options, scope_option

__all__ = ["main", "EXIT_ERROR", "EXIT_UNAVAILABLE", "EXIT_DENIED", "DaemonUnreachable"]

EXIT_ERROR = 1  # an error reply, an invalid table (click.ClickException's status)
EXIT_UNAVAILABLE = 69  # sysexits.h EX_UNAVAILABLE: the daemon is not running or cannot be reached

CLIENT_NAME = f"ratelimitctl/{__version__}"

EXIT_STATUSES = """\b
Exit status:
  0   success; acquire: granted; run: the command's own status
  1   the daemon refused the request (unknown key, invalid table, ...);
      check: the tier table is invalid
  2   usage error (a missing argument, a bad option value)
  69  the daemon is not running, cannot be reached, or is stopping
  75  acquire, run: denied, or --wait ran out (EX_TEMPFAIL)"""

FORBIDDEN_HELP = (
    "The daemon decides who may do what from the user and group of the process at the other end of its "
    "socket, and this user may not do this. Run ratelimitctl as a user the daemon allows (its own user, "
    "or root), or ask whoever runs the daemon to allow yours."
)


class DaemonUnreachable(click.ClickException):
    """The daemon is not running or cannot be reached; exits with 69 (EX_UNAVAILABLE)."""

    exit_code = EXIT_UNAVAILABLE


def _socket_path(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value == "":
        raise click.BadParameter("the socket path is empty", ctx, param)
    return value


# -- the connection ----------------------------------------------------------------------------


@contextmanager
def connect(socket: str | None) -> Iterator[Client]:
    """Yield a ``Client`` on ``socket``; turn what it raises into click errors with the right exit status.

    ``DaemonUnavailable`` exits 69 with its message (the path tried, how to
    start the daemon), and so does ``shutting-down`` (the daemon is going
    away); ``forbidden`` is explained in plain words; every other error reply
    and an unreadable answer exit 1.
    """
    try:
        with Client(socket, name=CLIENT_NAME) as client:
            yield client
    except DaemonUnavailable as exc:
        raise DaemonUnreachable(str(exc)) from exc
    except ShuttingDown as exc:
        raise DaemonUnreachable(f"the daemon is stopping: {exc.message}") from exc
    except Forbidden as exc:
        raise click.ClickException(f"not allowed: {exc.message}. {FORBIDDEN_HELP}") from exc
    except InvalidTable as exc:
        raise click.ClickException(f"the daemon refused the tier table and keeps the one it had: {exc.message}") from exc
    except RequestFailed as exc:
        raise click.ClickException(str(exc)) from exc
    except ProtocolError as exc:
        raise click.ClickException(f"cannot read the daemon's answer: {exc}") from exc


def emit(value: Any, as_json: bool, text: Callable[[Any], str]) -> None:
    """Print ``value`` as JSON, or as ``text(value)``."""
    click.echo(render.to_json(value) if as_json else text(value))


# -- commands ----------------------------------------------------------------------------------


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, epilog=EXIT_STATUSES)
@click.option(
    "--socket",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="PATH",
    callback=_socket_path,
    help="The daemon's socket. [default: $RATELIMITD_SOCKET, else $XDG_RUNTIME_DIR/ratelimitd/ratelimitd.sock, "
    "else /run/ratelimitd/ratelimitd.sock]",
)
@click.version_option(package_name="ratelimitd", prog_name="ratelimitctl")
@click.pass_context
def main(ctx: click.Context, socket: str | None) -> None:
    """Look at and steer a running ratelimitd; check tier tables without one.

    Example:

    \b
        ratelimitctl status
        ratelimitctl show research
        ratelimitctl acquire research rest --wait 5 && curl ...
        ratelimitctl run research rest --wait 30 -- ./sync.sh
    """
    ctx.obj = socket


@main.command()
@click.option("--state", "state_path", type=click.Path(dir_okay=False), default=None,
              help="Read this state file directly instead of asking the daemon (works while it is down).")
@json_option
@click.pass_obj
def status(socket: str | None, state_path: str | None, as_json: bool) -> None:
    """Show the daemon's state and counters.

    Version, pid, uptime, the tier table and when it was loaded, socket, state
    file and its durability, last flush, crash recovery, keys, connections,
    waiters, grants, denials, errors, and why the last reload was refused.

    With --state PATH, read what a (possibly dead) daemon last saved: its runs,
    whether the last one stopped cleanly, its last durable write, the saved buckets.

    Example:

    \b
        ratelimitctl status
        ratelimitctl status --json
        ratelimitctl status --state /var/lib/ratelimitd/state.db
    """
    if state_path is not None:
        try:
            report = inspect_state(state_path)
        except StoreError as exc:
            raise click.ClickException(str(exc)) from exc
        emit(report, as_json, render.state_text)
        return
    with connect(socket) as client:
        reply = client.status()
    emit(reply, as_json, render.status_text)


@main.command()
@json_option
@click.pass_obj
def keys(socket: str | None, as_json: bool) -> None:
    """List the key aliases of the tier table.

    Each with its provider, tier and group.

    Example:

    \b
        ratelimitctl keys
    """
    with connect(socket) as client:
        found = client.keys()
    emit({"keys": found}, as_json, lambda reply: render.keys_text(reply["keys"]))


@main.command()
@click.argument("key")
@json_option
@click.pass_obj
def show(socket: str | None, key: str, as_json: bool) -> None:
    """Show KEY's buckets and what is used now.

    Provider, tier and docs; per bucket its kind, algorithm, owner, and per
    rate what is used of the limit, what remains, the seconds until it grows,
    the waiters and a provider's hold (for a concurrency or capacity bucket,
    what is held of the limit); the leases held, with their holder's pid and
    uid and their age; the counts per scope value; the quota balances with the
    end of their period; the endpoints and their buckets; the tier's
    informational values.

    Example:

    \b
        ratelimitctl show research
    """
    with connect(socket) as client:
        reply = client.show(key)
    emit(reply, as_json, render.show_text)


@main.command()
@click.argument("key", required=False)
@json_option
@click.pass_obj
def hello(socket: str | None, key: str | None, as_json: bool) -> None:
    """Check the connection; with KEY, show its limits.

    Example:

    \b
        ratelimitctl hello
        ratelimitctl hello research
    """
    with connect(socket) as client:
        reply = client.hello(key)
        path = client.path
    emit(reply, as_json, lambda value: render.hello_text(value, path))


@main.command()
@click.argument("file")
@json_option
@click.pass_context
def check(ctx: click.Context, file: str, as_json: bool) -> None:
    """Validate a tier table FILE without a daemon.

    Prints a summary when FILE is valid. When it is not, prints what is wrong,
    in which file and at which TOML path, and exits 1 (with --json, the
    error is printed as JSON on stdout).

    Example:

    \b
        ratelimitctl check /etc/ratelimitd/tiers.toml && ratelimitctl reload
    """
    from ..errors import ConfigError
    from ..tiers import load_file
    from .summary import check_text, error_summary, table_summary

    try:
        table = load_file(file)
    except ConfigError as exc:
        if as_json:
            click.echo(render.to_json(error_summary(exc, file)))
            ctx.exit(EXIT_ERROR)
        raise click.ClickException(str(exc)) from exc
    emit(table_summary(table, file), as_json, check_text)


@main.command()
@click.option(
    "--path",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="FILE",
    help="Load FILE instead, and use it from now on (SIGHUP reloads it too). [default: the daemon's tier table]",
)
@json_option
@click.pass_obj
def reload(socket: str | None, path: str | None, as_json: bool) -> None:
    """Make the daemon reload its tier table.

    The new table applies at once; counters are kept for every bucket that
    still exists. A table that is not valid is refused: the daemon keeps the
    one it had, and the message says what is wrong, in which file and at
    which TOML path (exit status 1).

    Example:

    \b
        ratelimitctl check /etc/ratelimitd/tiers.toml && ratelimitctl reload
        ratelimitctl reload --path ./tiers.toml
    """
    with connect(socket) as client:
        reply = client.reload(None if path is None else os.path.abspath(path))
    emit(reply, as_json, render.reload_text)


@main.command()
@click.argument("key")
@click.argument("endpoint", required=False)
@json_option
@click.pass_obj
def reset(socket: str | None, key: str, endpoint: str | None, as_json: bool) -> None:
    """Forget what KEY spent, or only on ENDPOINT.

    Waiters are then served. A bucket shared by a group is reset for every
    key of the group.

    Example:

    \b
        ratelimitctl reset research
        ratelimitctl reset markets heavy
    """
    with connect(socket) as client:
        names = client.reset(key, endpoint)
    emit({"key": key, "endpoint": endpoint, "reset": names}, as_json, lambda r: render.reset_text(key, endpoint, r["reset"]))


@main.command()
@click.argument("key")
@click.argument("endpoint")
@permit_options
@scope_option
@click.option(
    "--reserve",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="SECONDS",
    help="Make the grant a reservation of --cost, to settle within SECONDS; unsettled, it stays charged in full.",
)
@json_option
@click.pass_context
def acquire(
    ctx: click.Context,
    key: str,
    endpoint: str,
    cost: Any,
    wait: float | None,
    priority: int,
    scopes: dict[str, str] | None,
    reserve: float | None,
    as_json: bool,
) -> None:
    """Take a permit for one call of ENDPOINT with KEY.

    Exits 0 when granted (printing what remains and when it grows again), 75
    when denied or when --wait ran out (printing how long until it would be
    granted). A grant that holds something (a concurrency slot, a count, a
    reservation) prints its lease, which the daemon releases when ratelimitctl
    exits and its connection closes: to hold a lease while a command runs,
    use run.

    Example:

    \b
        ratelimitctl acquire research rest && curl https://api.example.com/...
        ratelimitctl acquire acme-ingest rest --cost 0.1 --wait 10
        ratelimitctl acquire trading position --scope wallet=W1
    """
    with connect(ctx.obj) as client:
        permit = client.acquire(key, endpoint, cost, wait, priority, scopes=scopes, reserve=reserve)
    if as_json:
        click.echo(render.to_json(render.permit_json(permit, key, endpoint, cost)))
    else:
        click.echo(render.permit_text(permit, key, endpoint, cost, wait))
    if not permit.granted:
        ctx.exit(EXIT_DENIED)


main.add_command(report_cmd.report)
main.add_command(lease_cmds.release)
main.add_command(lease_cmds.leases)
main.add_command(lease_cmds.renew)
main.add_command(lease_cmds.settle)
main.add_command(lease_cmds.run)
