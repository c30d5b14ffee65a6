"""``ratelimitctl`` and leases against a real daemon: leases, show, release, renew, settle, acquire --scope/--reserve,
and run holding a lease — warned (and signalled, if asked) when evicted, reattached over a daemon restart.

The commands that answer at once run in-process (CliRunner); ``run`` runs as a real process, its stderr
read line by line as it comes.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from pathlib import Path

from ratelimitd_client import Client

from ratelimitd.cli import render

from ..cli.helpers import ctl, ctl_command, parse
from .tables import TABLE

# the command under `run`: says it started, then waits for a file (or a signal)
CHILD = "import os, sys, time\nprint('started', flush=True)\nwhile not os.path.exists(sys.argv[1]): time.sleep(0.01)"


def test_leases_and_show_list_the_holder_and_what_it_holds(start_daemon) -> None:
    daemon = start_daemon(TABLE)
    assert ctl("--socket", daemon.socket, "leases").output == "no leases held\n"
    with Client(daemon.socket) as client:
        ws = client.acquire("k", "ws")
        position = client.acquire("k", "position", scopes={"wallet": "W1"})
        listed = ctl("--socket", daemon.socket, "leases", "k")
        assert listed.exit_code == 0
        header, *rows = listed.output.splitlines()
        assert header.split() == ["LEASE", "KEY", "ENDPOINT", "PID", "UID", "AGE", "IDLE", "ENDS", "IN", "STATE"]
        assert [row.split()[:5] for row in rows] == [
            [ws.lease, "k", "ws", str(os.getpid()), str(os.getuid())],
            [position.lease, "k", "position", str(os.getpid()), str(os.getuid())],
        ]
        as_json = parse(ctl("--socket", daemon.socket, "leases", "--json").output)["leases"]
        assert [(entry["lease"], entry["pid"], entry["orphaned"], entry["ends_in"]) for entry in as_json] == [
            (ws.lease, os.getpid(), False, None),
            (position.lease, os.getpid(), False, None),
        ]

        shown = [line.split() for line in ctl("--socket", daemon.socket, "show", "k").output.splitlines()]
        assert ["ws", "concurrency", "-", "k", "1", "concurrent", "1/1", "0", "-", "0", "-"] in shown
        assert ["wallets", "capacity", "-", "k", "capacity", "2", "per", "wallet", "0/2", "2", "-", "0", "-"] in shown
        assert [ws.lease, "ws", "ws", "1", str(os.getpid()), str(os.getuid())] in [row[:6] for row in shown]
        assert [position.lease, "position", "wallets[wallet=W1]", "1", str(os.getpid())] in [row[:5] for row in shown]
        assert ["wallets", "wallet=W1", "1/2", "1", "1"] in shown  # SCOPE: the count of wallet W1, one lease

        assert client.acquire("k", "metered", "2.5").granted
        month = next(b for b in client.show("k")["buckets"] if b["name"] == "month")
        shown = ctl("--socket", daemon.socket, "show", "k").output.splitlines()
        assert ["month", "quota", "-", "k", "1000/month", "2.5/1000", "997.5", "-", "0", "-"] in [line.split() for line in shown]
        (quota,) = [line for line in shown if line.split()[:2] == ["month", "2.5/1000"]]  # the QUOTA table's row
        assert quota.split()[:3] == ["month", "2.5/1000", "997.5"]
        assert render.moment(month["balance"]["period_end"]) in quota and quota.split()[-3:] == ["0", "3", "allow"]


def test_release_renew_and_settle_from_the_shell(start_daemon) -> None:
    daemon = start_daemon(TABLE)
    with Client(daemon.socket) as client:
        held = client.acquire("k", "stream")
        renewed = ctl("--socket", daemon.socket, "renew", held.lease, "--json")
        assert renewed.exit_code == 0 and parse(renewed.output)["renewed"] is True
        released = ctl("--socket", daemon.socket, "release", held.lease)
        assert (released.exit_code, released.output) == (0, f"released {held.lease}\n")
        again = ctl("--socket", daemon.socket, "release", held.lease)
        assert again.exit_code == 1 and "[unknown-lease]" in again.output
        assert client.acquire("k", "stream").granted

        with client.reserve("k", "rest", 10) as reservation:
            settled = ctl("--socket", daemon.socket, "settle", reservation.lease, "4")
            assert (settled.exit_code, settled.output) == (0, f"settled {reservation.lease} at 4: refunded 6\n")
        assert client.acquire("k", "rest", 0).remaining == 96


def test_acquire_with_scopes_and_a_reservation(start_daemon) -> None:
    daemon = start_daemon(TABLE)
    scoped = ctl("--socket", daemon.socket, "acquire", "k", "position", "--scope", "wallet=W1", "--json")
    assert scoped.exit_code == 0 and parse(scoped.output)["lease"]
    reserved = ctl("--socket", daemon.socket, "acquire", "k", "rest", "--cost", "3", "--reserve", "5")
    assert reserved.exit_code == 0
    assert reserved.output.splitlines()[-1].endswith("(a reservation: charged in full unless settled)")
    bad = ctl("--socket", daemon.socket, "acquire", "k", "position", "--scope", "W1")
    assert bad.exit_code == 2 and "'W1' is not a scope: write NAME=VALUE" in bad.output


def start_run(daemon, marker: Path, *options: str, endpoint: str = "ws") -> subprocess.Popen[str]:
    """Start ``ratelimitctl run k ENDPOINT OPTIONS -- CHILD`` and return once the command has started."""
    process = subprocess.Popen(
        [*ctl_command(), "--socket", daemon.socket, "run", "k", endpoint, *options]
        + ["--", sys.executable, "-c", CHILD, str(marker)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert line_of(process.stdout) == "started"
    return process


def line_of(stream, within: float = 10.0) -> str:
    """Return the next line of ``stream`` without its newline; fail if none comes within ``within`` s."""
    ready, _, _ = select.select([stream], [], [], within)
    assert ready, "no line came"
    return stream.readline().rstrip("\n")


def test_run_holds_the_lease_and_warns_when_the_daemon_evicts_it(start_daemon, tmp_path: Path) -> None:
    daemon = start_daemon(TABLE)
    marker = tmp_path / "done"
    process = start_run(daemon, marker)
    try:
        with Client(daemon.socket) as other:
            (held,) = other.leases("k")
            assert held["pid"] == process.pid
            newer = other.acquire("k", "ws")
            assert newer.granted
            warning = line_of(process.stderr)
            assert warning == (
                f"ratelimitctl: warning: lease {held['lease']} of key k endpoint ws was ended by the daemon "
                "(evicted by bucket ws) while the command runs"
            )
            marker.touch()  # the command was not signalled: it goes on until it is done
            assert process.wait(10) == 0
            assert [lease["lease"] for lease in other.leases("k")] == [newer.lease]
    finally:
        process.kill()
        process.wait(10)


def test_run_signals_the_command_when_asked(start_daemon, tmp_path: Path) -> None:
    daemon = start_daemon(TABLE)
    process = start_run(daemon, tmp_path / "never", "--signal-on-end", "TERM")
    try:
        with Client(daemon.socket) as other:
            assert other.acquire("k", "ws").granted
            assert line_of(process.stderr).endswith("while the command runs; sent SIGTERM to the command")
            assert process.wait(10) == 128 + 15
    finally:
        process.kill()
        process.wait(10)


def test_run_reattaches_its_lease_when_the_daemon_restarts(start_daemon, tmp_path: Path) -> None:
    daemon = start_daemon(TABLE, "--durability", "strict")
    marker = tmp_path / "done"
    process = start_run(daemon, marker, endpoint="stream")
    try:
        daemon.kill()
        assert "the daemon went away" in line_of(process.stderr)
        daemon.start()
        assert line_of(process.stderr).endswith("reattached")
        with Client(daemon.socket) as other:
            (held,) = other.leases("k")
            assert (held["orphaned"], held["pid"]) == (False, process.pid)
            assert not other.acquire("k", "stream").granted
            marker.touch()
            assert process.wait(10) == 0
            deadline = time.monotonic() + 5  # the daemon sees run's connection close: readiness, not timing
            while other.leases("k") and time.monotonic() < deadline:
                time.sleep(0.01)
            assert other.acquire("k", "stream").granted
    finally:
        process.kill()
        process.wait(10)
