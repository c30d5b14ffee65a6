"""The real daemon speaks sd_notify: READY once it serves, watchdog pings, RELOADING…READY around reloads, STOPPING, exit 0.

The test plays systemd's part: it binds the notification socket, starts the
installed ``ratelimitd`` with ``NOTIFY_SOCKET`` and ``WATCHDOG_USEC`` set, and
reads the datagrams in order. Every wait has a timeout; nothing asserts how
long anything took.
"""

from __future__ import annotations

import signal
import time
import uuid

import pytest
from ratelimitd_client import Client

from .notifications import Message, NotifySocket

TABLE = """
[providers.api.endpoints]
"rest" = ["rest"]
[providers.api.tiers.basic]
rest = { rate = "%s" }
[keys.k]
provider = "api"
tier = "basic"
"""
WATCHDOG_USEC = 200_000


def only_background(skipped: list[Message]) -> bool:
    """Report whether every passed-over message is a watchdog ping or a status line."""
    return all(set(message) <= {"WATCHDOG", "STATUS"} for message in skipped)


def run_through_a_service_life(daemon, notify: NotifySocket) -> None:
    ready, before = notify.next("READY")
    assert ready == {"READY": "1"} and only_background(before)
    with Client(socket=daemon.socket, timeout=10) as client:  # READY means the socket is served
        assert client.acquire("k", "rest").granted

    # the watchdog pings keep coming from the event loop, at half of WATCHDOG_USEC
    for _ in range(3):
        assert notify.next("WATCHDOG")[0] == {"WATCHDOG": "1"}

    # a good table: RELOADING=1 with the CLOCK_MONOTONIC time of the reload, then READY=1
    daemon.write_table(TABLE % "50/1m")
    sent = time.monotonic_ns() // 1000
    daemon.signal(signal.SIGHUP)
    reloading, skipped = notify.next("RELOADING")
    received = time.monotonic_ns() // 1000
    assert only_background(skipped)
    assert reloading["RELOADING"] == "1" and sent <= int(reloading["MONOTONIC_USEC"]) <= received
    ready, skipped = notify.next("READY")
    assert only_background(skipped)
    assert ready["STATUS"] == f"reloaded {daemon.config}: 1 keys"

    # a bad table: refused, READY=1 again (the old table serves), and STATUS says why
    daemon.write_table((TABLE % "50/1m").replace('"50/1m"', '"50/1x"'))
    daemon.signal(signal.SIGHUP)
    reloading, skipped = notify.next("RELOADING")
    assert only_background(skipped) and "MONOTONIC_USEC" in reloading
    ready, skipped = notify.next("READY")
    assert only_background(skipped)
    assert ready["STATUS"].startswith("reload refused, previous table kept: ")
    assert str(daemon.config) in ready["STATUS"] and "providers.api.tiers.basic.rest.rate" in ready["STATUS"]
    with Client(socket=daemon.socket, timeout=10) as client:
        status = client.status()
        assert client.acquire("k", "rest").remaining == 48  # the 50/1m table still applies
    assert status["reload_error"] and "1x" in status["reload_error"]

    daemon.signal(signal.SIGTERM)
    stopping, skipped = notify.next("STOPPING")
    assert stopping == {"STOPPING": "1"} and only_background(skipped)
    assert daemon.process.wait(15) == 0, daemon.output()
    assert all(message == {"WATCHDOG": "1"} for message in notify.pending())


def test_notifications_through_start_watchdog_reloads_and_stop(spawn, notify_socket):
    daemon = spawn(TABLE % "10/1m", {"NOTIFY_SOCKET": notify_socket.address, "WATCHDOG_USEC": str(WATCHDOG_USEC)})
    run_through_a_service_life(daemon, notify_socket)


def test_an_abstract_notify_socket(spawn):
    notify = NotifySocket(f"@ratelimitd-test-{uuid.uuid4().hex}")
    try:
        daemon = spawn(TABLE % "10/1m", {"NOTIFY_SOCKET": notify.address, "WATCHDOG_USEC": str(WATCHDOG_USEC)})
        run_through_a_service_life(daemon, notify)
    finally:
        notify.close()


def test_the_status_line_summarises_keys_rate_and_waiters(spawn, notify_socket):
    daemon = spawn(TABLE % "10/1m", {"NOTIFY_SOCKET": notify_socket.address})
    notify_socket.next("READY")
    status, _ = notify_socket.next("STATUS")
    assert status == {"STATUS": "1 keys, 0.0 grants/s, 0 waiting, 0 connections"}
    assert daemon.stop() == 0


def test_no_watchdog_pings_for_another_process(spawn, notify_socket):
    # WATCHDOG_PID names the process the watchdog is for; ours is not it (pid 1 never is)
    daemon = spawn(TABLE % "10/1m", {"NOTIFY_SOCKET": notify_socket.address, "WATCHDOG_USEC": "1000", "WATCHDOG_PID": "1"})
    _, before = notify_socket.next("READY")
    daemon.signal(signal.SIGTERM)
    _, after = notify_socket.next("STOPPING")
    assert daemon.process.wait(15) == 0, daemon.output()
    # at 1 ms a watchdog would have pinged many times between start and stop
    assert not any("WATCHDOG" in message for message in before + after + notify_socket.pending())


def test_journal_lines_carry_priorities_and_no_timestamps(spawn, notify_socket):
    daemon = spawn(TABLE % "10/1m", {"NOTIFY_SOCKET": notify_socket.address, "JOURNAL_STREAM": "8:12345"})
    notify_socket.next("READY")
    daemon.write_table("[keys.k]\nprovider = 'nowhere'\n")
    daemon.signal(signal.SIGHUP)
    notify_socket.next(lambda message: message.get("STATUS", "").startswith("reload refused"))
    assert daemon.stop() == 0
    lines = daemon.output().splitlines()
    assert lines and all(line[:3] in ("<3>", "<4>", "<6>") for line in lines), lines
    assert any(line.startswith("<3>reload refused, keeping the current tier table: ") for line in lines)
    assert "<6>stopped cleanly" in lines


@pytest.mark.parametrize("address", ["relative/notify.sock", "vsock:2:1234"])
def test_an_unusable_notify_socket_is_ignored(start_daemon, address):
    daemon = start_daemon(TABLE % "10/1m", env={"NOTIFY_SOCKET": address})
    with Client(socket=daemon.socket, timeout=10) as client:
        assert client.acquire("k", "rest").granted
    assert daemon.stop() == 0
    assert f"NOTIFY_SOCKET={address} is neither a path nor an abstract socket" in daemon.output()


def test_a_notify_socket_nobody_listens_on_is_reported_once(start_daemon, short_tmp):
    daemon = start_daemon(TABLE % "10/1m", env={"NOTIFY_SOCKET": str(short_tmp / "gone.sock"), "WATCHDOG_USEC": "20000"})
    with Client(socket=daemon.socket, timeout=10) as client:
        assert client.acquire("k", "rest").granted
    assert daemon.stop() == 0
    assert daemon.output().count("cannot notify systemd at NOTIFY_SOCKET=") == 1
