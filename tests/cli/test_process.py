"""The installed ``ratelimitctl`` as a real process against a real ratelimitd: exit statuses, JSON, ``run``."""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from pathlib import Path

from ratelimitd_client.protocol import EXIT_DENIED

from .helpers import TABLE, ctl, ctl_command, ctl_process, parse


def test_status_json(start_daemon) -> None:
    daemon = start_daemon(TABLE)
    process = ctl_process("--socket", daemon.socket, "status", "--json")
    assert process.returncode == 0, process.stderr
    status = parse(process.stdout)
    assert (status["pid"], status["socket"], status["keys"]) == (daemon.process.pid, daemon.socket, 1)


def test_acquire_exit_statuses(start_daemon) -> None:
    daemon = start_daemon(TABLE)
    first = ctl_process("--socket", daemon.socket, "acquire", "k", "heavy")
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("granted    key k, endpoint heavy\n")
    second = ctl_process("--socket", daemon.socket, "acquire", "k", "heavy")
    assert second.returncode == EXIT_DENIED
    assert second.stdout.splitlines()[1].startswith("retry after  ")
    unknown = ctl_process("--socket", daemon.socket, "acquire", "k", "nope")
    assert unknown.returncode == 1
    assert unknown.stderr == "Error: provider 'p' of key 'k' has no endpoint 'nope'; it has ['credits', 'heavy', 'rest', 'tick'] [unknown-endpoint]\n"


def test_run_holds_the_permit_while_the_command_runs(start_daemon, tmp_path: Path) -> None:
    daemon = start_daemon(TABLE)
    seen = tmp_path / "seen.json"
    # the command itself looks at the key: its permit was charged before it started
    inner = shlex.join([*ctl_command(), "--socket", daemon.socket, "show", "k", "--json"])
    script = f"import subprocess, sys; open({str(seen)!r}, 'w').write(subprocess.check_output({inner!r}, shell=True, text=True)); sys.exit(3)"
    process = ctl_process("--socket", daemon.socket, "run", "k", "heavy", "--", sys.executable, "-c", script)
    assert process.returncode == 3, process.stderr
    buckets = parse(seen.read_text())["buckets"]
    assert [b["rates"][0]["used"] for b in buckets[:2]] == [1, 1]

    seen.unlink()
    denied = ctl_process("--socket", daemon.socket, "run", "k", "heavy", "--", sys.executable, "-c", script)
    assert denied.returncode == EXIT_DENIED
    assert not seen.exists()
    assert "retry after" in denied.stderr


def test_daemon_not_running(short_tmp: Path) -> None:
    path = short_tmp / "none.sock"
    process = ctl_process("--socket", str(path), "acquire", "k", "rest")
    assert process.returncode == 69
    assert process.stderr.startswith(f"Error: cannot reach ratelimitd at {path}: no socket there")


def test_help_lists_exit_statuses() -> None:
    result = ctl("--help")
    assert result.exit_code == 0
    lines = [line.strip() for line in result.stdout.splitlines()]
    for status in ("0   success", "1   the daemon refused", "2   usage error", "69  the daemon is not running", "75  acquire, run: denied"):
        assert any(line.startswith(status) for line in lines), status


def test_a_waiter_cancelled_by_a_stopping_daemon_exits_69(start_daemon) -> None:
    daemon = start_daemon(TABLE)
    assert ctl("--socket", daemon.socket, "acquire", "k", "heavy").exit_code == 0
    # a wait longer than the minute the bucket needs, so that the daemon queues it
    waiter = subprocess.Popen(
        [*ctl_command(), "--socket", daemon.socket, "acquire", "k", "heavy", "--wait", "120"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10  # readiness: the daemon has queued it (not a timing assertion)
        while parse(ctl("--socket", daemon.socket, "status", "--json").stdout)["waiters"] != 1:
            assert time.monotonic() < deadline, "the waiter never reached the daemon"
            time.sleep(0.01)
        assert daemon.stop() == 0
        _, stderr = waiter.communicate(timeout=10)
    finally:
        if waiter.poll() is None:
            waiter.kill()
    assert waiter.returncode == 69
    assert stderr == "Error: the daemon is stopping: the daemon is stopping; the request was not granted\n"
