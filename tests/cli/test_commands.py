"""Every daemon command of ``ratelimitctl``, run in-process (CliRunner) against a real ratelimitd.

Exit statuses and the ``--json`` shapes are asserted exactly; the human text
where it does not depend on the clock. The one wait in here (``--wait`` on a
"1/1s" bucket) is the daemon's behaviour under test, not a sleep.
"""

from __future__ import annotations

import os
import sys
import time
from decimal import Decimal
from pathlib import Path

from ratelimitd_client.protocol import EXIT_DENIED

from .helpers import TABLE, ctl, parse


def test_status(start_daemon) -> None:
    daemon = start_daemon(TABLE)
    result = ctl("--socket", daemon.socket, "status", "--json")
    assert result.exit_code == 0, result.output
    status = parse(result.stdout)
    assert set(status) >= {
        "version", "protocol", "pid", "started", "uptime", "config", "loaded", "socket", "state",
        "keys", "buckets", "connections", "waiters", "grants", "denials", "errors", "reload_error",
    }  # fmt: skip
    assert status["pid"] == daemon.process.pid
    assert (status["config"], status["socket"], status["state"]) == (str(daemon.config), daemon.socket, daemon.state)
    assert (status["keys"], status["waiters"], status["grants"], status["reload_error"]) == (1, 0, 0, None)

    text = ctl("--socket", daemon.socket, "status").stdout.splitlines()
    assert text[0] == f"ratelimitd   {status['version']} (protocol 1), pid {daemon.process.pid}"
    assert f"socket       {daemon.socket}" in text
    assert "keys         1 (0 buckets in use)" in text
    assert not any(line.startswith("reload error") for line in text)


def test_keys(start_daemon) -> None:
    daemon = start_daemon(TABLE + '\n[keys.team]\nprovider = "p"\ntier = "t"\ngroup = "acme"\n')
    result = ctl("--socket", daemon.socket, "keys", "--json")
    assert result.exit_code == 0
    assert parse(result.stdout) == {
        "keys": [
            {"key": "k", "provider": "p", "tier": "t", "group": None},
            {"key": "team", "provider": "p", "tier": "t", "group": "acme"},
        ]
    }
    result = ctl("--socket", daemon.socket, "keys")
    assert result.stdout == (
        "KEY   PROVIDER  TIER  GROUP\n"
        "k     p         t     -\n"
        "team  p         t     acme\n"
    )  # fmt: skip


def test_acquire_granted_then_denied_and_show_counts(start_daemon) -> None:
    daemon = start_daemon(TABLE)
    base = ("--socket", daemon.socket)
    granted = ctl(*base, "acquire", "k", "rest", "--json")
    assert granted.exit_code == 0
    permit = parse(granted.stdout)
    assert permit == {
        "key": "k", "endpoint": "rest", "cost": None, "granted": True, "retry_after": 0, "remaining": 2,
        "reset": permit["reset"], "scope": "rest", "buckets": {"rest": {"remaining": 2, "reset": permit["reset"]}},
        "lease": None,
    }  # fmt: skip
    assert 60 <= permit["reset"] <= Decimal("60.1")

    text = ctl(*base, "acquire", "k", "rest")
    assert text.exit_code == 0
    assert text.stdout.splitlines()[:2] == ["granted    key k, endpoint rest", "remaining  1 (bucket rest)"]

    # "heavy" takes from rest and heavy: the last unit of rest goes, both buckets are reported
    heavy = parse(ctl(*base, "acquire", "k", "heavy", "--json").stdout)
    assert heavy["granted"] is True
    assert {name: bucket["remaining"] for name, bucket in heavy["buckets"].items()} == {"rest": 0, "heavy": 0}

    denied = ctl(*base, "acquire", "k", "rest")
    assert denied.exit_code == EXIT_DENIED
    lines = denied.stdout.splitlines()
    assert lines[0] == "denied       key k, endpoint rest, by bucket rest"
    label, number, unit = lines[1].rsplit(None, 2)
    assert (label, unit) == ("retry after", "s")
    assert 55 < float(number) <= 60.1  # the first grant leaves its window (1 m and a 0.1 s margin) then

    denied = ctl(*base, "acquire", "k", "rest", "--json")
    assert denied.exit_code == EXIT_DENIED
    refusal = parse(denied.stdout)
    assert (refusal["granted"], refusal["scope"], refusal["remaining"]) == (False, "rest", 0)
    assert 55 < refusal["retry_after"] <= Decimal("60.1")

    show = ctl(*base, "show", "k", "--json")
    assert show.exit_code == 0
    reply = parse(show.stdout)
    assert (reply["key"], reply["provider"], reply["tier"], reply["group"]) == ("k", "p", "t", None)
    assert reply["docs"] == "https://example.com/limits"
    assert reply["info"] == {"history": "7 days"}
    assert reply["endpoints"] == {"rest": ["rest"], "heavy": ["rest", "heavy"], "tick": ["tick"], "credits": ["credits"]}
    used = {b["name"]: [(r["rate"], r["used"], r["limit"], r["remaining"]) for r in b["rates"]] for b in reply["buckets"]}
    assert used == {
        "rest": [("3/1m", 3, 3, 0)],
        "heavy": [("1/1m", 1, 1, 0)],
        "tick": [("1/1s", 0, 1, 1)],
        "credits": [("1/1h", 0, 1, 1)],
    }
    rest = reply["buckets"][0]
    assert (rest["kind"], rest["algorithm"], rest["scope"], rest["owner"], rest["waiters"], rest["held_until"]) == (
        "rate", "sliding-log", "key", "k", 0, None,
    )  # fmt: skip

    text = ctl(*base, "show", "k").stdout.splitlines()
    assert text[:5] == ["key       k", "provider  p", "tier      t", "group     -", "docs      https://example.com/limits"]
    assert text[6].split() == ["BUCKET", "KIND", "ALGORITHM", "OWNER", "RATE", "USED/LIMIT", "REMAINING", "RESET", "WAITERS", "HELD", "UNTIL"]
    assert text[7].split()[:7] == ["rest", "rate", "sliding-log", "k", "3/1m", "3/3", "0"]
    assert text[-2:] == ["INFO", "  history  7 days"]


def test_acquire_waits_until_the_window_frees(start_daemon) -> None:
    daemon = start_daemon(TABLE)
    base = ("--socket", daemon.socket)
    assert ctl(*base, "acquire", "k", "tick").exit_code == 0
    assert ctl(*base, "acquire", "k", "tick").exit_code == EXIT_DENIED
    started = time.monotonic()
    waited = ctl(*base, "acquire", "k", "tick", "--wait", "5", "--json")
    elapsed = time.monotonic() - started
    assert waited.exit_code == 0, waited.output
    assert parse(waited.stdout)["granted"] is True
    assert elapsed > 0.5  # held by the daemon until the 1 s window freed, not granted at once


def test_acquire_wait_that_runs_out_exits_75(start_daemon) -> None:
    daemon = start_daemon(TABLE)
    base = ("--socket", daemon.socket)
    assert ctl(*base, "acquire", "k", "heavy").exit_code == 0
    result = ctl(*base, "acquire", "k", "heavy", "--wait", "0.05")
    assert result.exit_code == EXIT_DENIED
    assert result.stdout.startswith("denied       key k, endpoint heavy, by bucket heavy, not within 0.05 s\nretry after  ")


def test_decimal_costs_are_sent_and_shown_exactly(start_daemon) -> None:
    daemon = start_daemon(TABLE)
    base = ("--socket", daemon.socket)
    first = ctl(*base, "acquire", "k", "credits", "--cost", "0.1", "--json")
    assert first.exit_code == 0
    assert '"cost": 0.1,' in first.stdout and '"remaining": 0.9,' in first.stdout
    for _ in range(9):  # ten tenths make exactly 1: a float sum (0.9999999999999999) would leave room
        assert ctl(*base, "acquire", "k", "credits", "--cost", "0.1").exit_code == 0
    last = ctl(*base, "acquire", "k", "credits", "--cost", "0.1")
    assert last.exit_code == EXIT_DENIED
    assert "remaining    0 (bucket credits)" in last.stdout.splitlines()
    rate = parse(ctl(*base, "show", "k", "--json").stdout)["buckets"][3]["rates"][0]
    assert (rate["used"], rate["remaining"]) == (1, 0)


def test_bad_cost_is_a_usage_error(start_daemon) -> None:
    daemon = start_daemon(TABLE)
    result = ctl("--socket", daemon.socket, "acquire", "k", "rest", "--cost", "-1")
    assert result.exit_code == 2
    assert "Invalid value for '--cost': cost '-1' is negative" in result.stderr


def test_error_replies_exit_1_with_the_daemons_message(start_daemon) -> None:
    daemon = start_daemon(TABLE)
    base = ("--socket", daemon.socket)
    result = ctl(*base, "acquire", "nope", "rest")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == f"Error: unknown key 'nope'; the tier table {daemon.config} defines ['k'] [unknown-key]\n"
    result = ctl(*base, "show", "k", "--json")  # the daemon carries on
    assert result.exit_code == 0
    result = ctl(*base, "acquire", "k", "rest", "--cost", "5")
    assert result.exit_code == 1
    assert result.stderr.endswith("[cost-too-large]\n")


def test_reset(start_daemon) -> None:
    daemon = start_daemon(TABLE)
    base = ("--socket", daemon.socket)
    assert ctl(*base, "acquire", "k", "heavy").exit_code == 0
    assert ctl(*base, "acquire", "k", "heavy").exit_code == EXIT_DENIED
    result = ctl(*base, "reset", "k", "heavy", "--json")
    assert result.exit_code == 0
    assert parse(result.stdout) == {"key": "k", "endpoint": "heavy", "reset": ["rest", "heavy"]}
    assert ctl(*base, "acquire", "k", "heavy").exit_code == 0
    result = ctl(*base, "reset", "k")
    assert result.stdout == "key k: reset rest, heavy, tick, credits\n"


def test_reload_good_and_bad(start_daemon, monkeypatch) -> None:
    daemon = start_daemon(TABLE)
    base = ("--socket", daemon.socket)
    for _ in range(3):
        assert ctl(*base, "acquire", "k", "rest").exit_code == 0

    # a table that would raise rest to 10 a minute, but has an error elsewhere: refused as a whole
    daemon.write_table(TABLE.replace('"3/1m"', '"10/1m"').replace('tick = { rate = "1/1s" }', 'tick = { rate = "1/1x" }'))
    result = ctl(*base, "reload")
    assert result.exit_code == 1
    detail = (
        '"1/1x" is not a rate: write "N/DURATION": a positive number, "/", and an integer count with one of '
        'ms, s, m, h, d (e.g. "60/1m", "5/1s", "1,200/1m", "0.5/1s")'
    )
    assert result.stderr == (
        "Error: the daemon refused the tier table and keeps the one it had: "
        f"{daemon.config}: providers.p.tiers.t.tick.rate: {detail}\n"
    )
    assert ctl(*base, "acquire", "k", "rest").exit_code == EXIT_DENIED  # still 3 a minute
    status = parse(ctl(*base, "status", "--json").stdout)
    assert status["reload_error"] == f"{daemon.config}: providers.p.tiers.t.tick.rate: {detail}"

    daemon.write_table(TABLE.replace('"3/1m"', '"5/1m"'))
    result = ctl(*base, "reload", "--json")
    assert result.exit_code == 0
    assert parse(result.stdout) == {"reloaded": True, "config": str(daemon.config), "keys": 1}
    permit = parse(ctl(*base, "acquire", "k", "rest", "--json").stdout)
    assert (permit["granted"], permit["remaining"]) == (True, 1)  # counters kept: 3 + 1 of 5

    # --path is taken from ratelimitctl's directory, not the daemon's
    (daemon.directory / "other.toml").write_text(TABLE.replace("[keys.k]", "[keys.k2]"))
    monkeypatch.chdir(daemon.directory)
    result = ctl(*base, "reload", "--path", "other.toml")
    assert result.exit_code == 0
    assert result.stdout == f"reloaded {daemon.directory / 'other.toml'}: 1 key\n"
    assert parse(ctl(*base, "keys", "--json").stdout)["keys"][0]["key"] == "k2"


def test_hello(start_daemon) -> None:
    daemon = start_daemon(TABLE)
    base = ("--socket", daemon.socket)
    reply = parse(ctl(*base, "hello", "--json").stdout)
    assert (reply["protocol"], reply["pid"], reply["server"]) == (1, daemon.process.pid, "ratelimitd/0.1.0")
    assert "limits" not in reply
    result = ctl(*base, "hello", "k", "--json")
    assert result.exit_code == 0
    limits = parse(result.stdout)["limits"]
    assert (limits["key"], limits["provider"], limits["tier"], limits["info"]) == ("k", "p", "t", {"history": "7 days"})
    assert [(b["name"], [r["rate"] for r in b["rates"]]) for b in limits["buckets"]] == [
        ("rest", ["3/1m"]), ("heavy", ["1/1m"]), ("tick", ["1/1s"]), ("credits", ["1/1h"]),
    ]  # fmt: skip
    text = ctl(*base, "hello", "k").stdout.splitlines()
    assert text[0] == f"ratelimitd/0.1.0 (protocol 1, pid {daemon.process.pid}) answers on {daemon.socket}"
    assert text[8:11] == [
        "BUCKET   KIND  ALGORITHM    OWNER  RATE  MARGIN",
        "rest     rate  sliding-log  k      3/1m  0.1 s",
        "heavy    rate  sliding-log  k      1/1m  0.1 s",
    ]
    assert ctl(*base, "hello", "nope").exit_code == 1


def test_run_granted_exits_with_the_commands_status(start_daemon) -> None:
    daemon = start_daemon(TABLE)
    base = ("--socket", daemon.socket)
    result = ctl(*base, "run", "k", "rest", "--", sys.executable, "-c", "import sys; sys.exit(3)")
    assert result.exit_code == 3
    used = parse(ctl(*base, "show", "k", "--json").stdout)["buckets"][0]["rates"][0]["used"]
    assert used == 1


def test_run_denied_does_not_run_the_command(start_daemon, tmp_path: Path) -> None:
    daemon = start_daemon(TABLE)
    base = ("--socket", daemon.socket)
    assert ctl(*base, "acquire", "k", "heavy").exit_code == 0
    marker = tmp_path / "ran"
    result = ctl(*base, "run", "k", "heavy", "--", sys.executable, "-c", f"open({str(marker)!r}, 'w')")
    assert result.exit_code == EXIT_DENIED
    assert not marker.exists()
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0] == "denied       key k, endpoint heavy, by bucket heavy"
    assert lines[1].startswith("retry after  ")
    assert lines[-1].startswith("not run: ")


def test_run_reports_a_missing_command_as_127(start_daemon) -> None:
    daemon = start_daemon(TABLE)
    result = ctl("--socket", daemon.socket, "run", "k", "rest", "--", "/nonexistent/command")
    assert result.exit_code == 127
    assert result.stderr == "ratelimitctl: /nonexistent/command: command not found\n"


def test_daemon_not_running_exits_69(short_tmp: Path) -> None:
    path = short_tmp / "none.sock"
    result = ctl("--socket", str(path), "status")
    assert result.exit_code == 69
    assert result.stdout == ""
    assert result.stderr == (
        f"Error: cannot reach ratelimitd at {path}: no socket there (the daemon is not running, or listens "
        "elsewhere); start the daemon (`ratelimitd`, or `systemctl start ratelimitd`) or set RATELIMITD_SOCKET "
        "to the socket it listens on\n"
    )
    # the socket from the environment, and the command that would have taken a permit
    result = ctl("acquire", "k", "rest", env={"RATELIMITD_SOCKET": str(path)})
    assert result.exit_code == 69
    assert result.stderr.startswith(f"Error: cannot reach ratelimitd at {path} (from $RATELIMITD_SOCKET): no socket there")


def test_stale_socket_file_exits_69(short_tmp: Path) -> None:
    import socket

    path = str(short_tmp / "stale.sock")
    left = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    left.bind(path)  # bound, never listening: what a killed daemon leaves behind
    left.close()
    assert os.path.exists(path)
    result = ctl("--socket", path, "run", "k", "rest", "--", "true")
    assert result.exit_code == 69
    assert "connection refused (the socket file is left from a daemon that is not running)" in result.stderr


def test_exact_amounts_in_json() -> None:
    from ratelimitd.cli.render import to_json

    assert to_json({"a": [Decimal("0.1"), Decimal("15.0"), Decimal("1E-7"), 2, 1.5, None]}) == (
        '{\n  "a": [\n    0.1,\n    15,\n    0.0000001,\n    2,\n    1.5,\n    null\n  ]\n}'
    )
