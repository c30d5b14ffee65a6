"""``ratelimitctl`` commands for leases: release, leases, renew, settle, and run, which holds one for a command.

Thin like the rest of the CLI: each builds a ``Client``, calls one method and
prints (``render``). ``run`` is the one with more to do: it holds the permit's
lease while the command runs, watching the connection for a ``lease-ended``
push (a warning on stderr, and the signal of ``--signal-on-end`` if given) and
reattaching the lease when the daemon restarts. Registered in ``ctl`` with
``main.add_command``.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
from typing import Any

import click
from ratelimitd_client import Client, DaemonUnavailable, Lease, Permit, RateLimited
from ratelimitd_client.protocol import EXIT_DENIED

from . import lease_render, render
from .child import run_command
from .options import Amount, SignalName, json_option, permit_options, scope_option

__all__ = ["release", "leases", "renew", "settle", "run", "LeaseWatch"]


@click.command()
@click.argument("lease")
@json_option
@click.pass_obj
def release(socket: str | None, lease: str, as_json: bool) -> None:
    """Release LEASE, and the leases taken inside it.

    Its slots (or counts) are free at once and waiters are served. Its holder
    is not told: release another process's lease only when that process is
    gone or stuck. A lease the daemon does not hold exits 1 (unknown-lease).

    Example:

    \b
        ratelimitctl leases research
        ratelimitctl release 3f9a1c-7
    """
    from .ctl import connect

    with connect(socket) as client:
        released = client.release(lease)
    click.echo(render.to_json({"lease": lease, "released": released}) if as_json else lease_render.released_text(lease, released))


@click.command("leases")
@click.argument("key", required=False)
@json_option
@click.pass_obj
def leases(socket: str | None, key: str | None, as_json: bool) -> None:
    """List the leases the daemon holds, or only KEY's.

    Each with its key and endpoint, the pid and uid of its holder, its age,
    how long it has been idle, when it ends on its own (ttl, idle timeout,
    time quota, reservation, restart grace), and whether it is orphaned (kept
    over a restart, waiting for its holder to reattach), a reservation, or
    taken inside another lease.

    Example:

    \b
        ratelimitctl leases
        ratelimitctl leases research --json
    """
    from .ctl import connect

    with connect(socket) as client:
        found = client.leases(key)
    click.echo(render.to_json({"leases": found}) if as_json else lease_render.leases_text(found))


@click.command()
@click.argument("lease")
@json_option
@click.pass_obj
def renew(socket: str | None, lease: str, as_json: bool) -> None:
    """Tell the daemon LEASE is in use: its idle timeout starts again.

    Keeps another process's lease alive (a heartbeat from a shell script).
    An orphaned lease (kept over a daemon restart for its holder to
    reattach) is refused here: renewing it would hand it to this command's
    connection, which closes at once and so would release it. Its holder
    reattaches by itself; use release to free it now.

    Example:

    \b
        ratelimitctl renew 3f9a1c-7
    """
    from .ctl import connect

    with connect(socket) as client:
        listed = {entry.get("lease"): entry for entry in client.leases()}
        if listed.get(lease, {}).get("orphaned"):
            raise click.ClickException(
                f"lease {lease} is orphaned (kept over a daemon restart, waiting for its holder to reattach); renewing it "
                "here would adopt it to ratelimitctl's connection and release it when ratelimitctl exits. Its holder "
                f"reattaches by itself; to free it now: ratelimitctl release {lease}"
            )
        reply = client.renew(lease)
    click.echo(render.to_json(reply) if as_json else lease_render.lease_text(reply))


@click.command()
@click.argument("lease")
@click.argument("cost", type=Amount())
@json_option
@click.pass_obj
def settle(socket: str | None, lease: str, cost: Any, as_json: bool) -> None:
    """Settle the reservation LEASE at its real COST.

    More than was reserved is charged on top; less is refunded. A reservation
    lives while the connection that made it is open: settle one that a
    running process (the Python client's reserve(), a run command) holds.

    Example:

    \b
        ratelimitctl settle 3f9a1c-9 3.5
    """
    from .ctl import connect

    with connect(socket) as client:
        difference = client.settle(lease, cost)
    if as_json:
        click.echo(render.to_json({"lease": lease, "cost": cost, "settled": True, "difference": difference}))
    else:
        click.echo(lease_render.settled_text(lease, cost, difference))


class LeaseWatch:
    """The lease of ``run``'s permit while its command runs: warn when it ends, reattach it after a restart.

    ``fileno`` is the client's connection (None while the daemon is away);
    ``check`` reads what the daemon pushed, or reconnects, which renews the
    lease so that a restarted daemon hands it back. When the daemon ends the
    lease a warning goes to stderr and, if ``signum`` is set, the command gets
    that signal; watching then stops.
    """

    def __init__(self, client: Client, permit: Permit, key: str, endpoint: str, signum: signal.Signals | None) -> None:
        self.client = client
        self.lease: Lease = permit.lease_state
        self.key = key
        self.endpoint = endpoint
        self.signum = signum
        self.process: subprocess.Popen[bytes] | None = None
        self.away = False
        client.on_lease_end(self._ended)

    def fileno(self) -> int | None:
        """Return the connection's descriptor, None while there is none."""
        return self.client.fileno()

    def check(self, process: subprocess.Popen[bytes]) -> bool:
        """Read the daemon's pushes, or reconnect (renewing the lease); report whether to go on watching."""
        self.process = process
        if self.client.fileno() is not None:
            self.client.poll()
        if self.client.fileno() is None and not self.lease.ended:
            if not self.away:
                self.away = True
                click.echo(
                    f"ratelimitctl: warning: the daemon went away; lease {self.lease.id} will be reattached when it is back",
                    err=True,
                )
            try:
                self.client.connect()
            except DaemonUnavailable:
                return True
            if not self.lease.ended:
                self.away = False
                click.echo(f"ratelimitctl: lease {self.lease.id} reattached", err=True)
        return not self.lease.ended

    def _ended(self, lease: Lease) -> None:
        if lease is not self.lease:
            return
        if lease.end_reason == "lost":
            how = "is lost (the daemon did not keep it over its restart)"
        else:
            how = f"was ended by the daemon ({lease_render.end_reason(lease)})"
        action = ""
        if self.signum is not None and self.process is not None and self.process.poll() is None:
            try:
                os.kill(self.process.pid, self.signum)
                action = f"; sent {self.signum.name} to the command"
            except ProcessLookupError:
                pass
        click.echo(
            f"ratelimitctl: warning: lease {lease.id} of key {self.key} endpoint {self.endpoint} {how} while the command "
            f"runs{action}",
            err=True,
        )


@click.command()
@click.argument("key")
@click.argument("endpoint")
@permit_options
@scope_option
@click.option(
    "--signal-on-end",
    "signum",
    type=SignalName(),
    default=None,
    help="Send this signal (TERM, INT, HUP, KILL, …) to COMMAND if the daemon ends its lease while it runs. "
    "[default: only a warning on stderr]",
)
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_context
def run(
    ctx: click.Context,
    key: str,
    endpoint: str,
    cost: Any,
    wait: float | None,
    priority: int,
    scopes: dict[str, str] | None,
    signum: signal.Signals | None,
    command: tuple[str, ...],
) -> None:
    """Take a permit, then run COMMAND.

    Takes a permit for one call of ENDPOINT with KEY, runs COMMAND with the
    same stdin, stdout and stderr, and exits with its status. The permit (and
    its lease, for a concurrency or capacity limit) is held while COMMAND runs
    and released when it exits. When no permit is granted (within --wait),
    COMMAND is not run: the denial and its retry-after go to stderr and the
    exit status is 75. Put COMMAND after "--".

    If the daemon ends the lease while COMMAND runs (evicted by a newer one,
    an idle timeout, a used-up time quota), a warning goes to stderr and
    COMMAND goes on unless --signal-on-end names a signal to send it: the
    provider ends the real connection itself, and COMMAND may handle that
    better than a signal. If the daemon restarts, the lease is reattached when
    it is back (within its 30 s grace).

    Example:

    \b
        ratelimitctl run research rest --wait 30 -- curl -s https://api.example.com/...
        ratelimitctl run research ws --signal-on-end TERM -- ./stream.py
    """
    from .ctl import connect

    with connect(ctx.obj) as client:
        try:
            with client.permit(key, endpoint, cost, wait, priority, scopes=scopes) as permit:
                watch = LeaseWatch(client, permit, key, endpoint, signum) if permit.lease_state is not None else None
                status = run_command(command, watch)
        except RateLimited as exc:
            click.echo(render.permit_text(exc.permit, key, endpoint, cost, wait), err=True)
            click.echo(f"not run: {shlex.join(command)}", err=True)
            ctx.exit(EXIT_DENIED)
    ctx.exit(status)
