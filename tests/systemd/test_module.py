"""``server/systemd.py`` in-process: the notification datagrams, the watchdog setting, inherited sockets, the status line,
and ``run_service``'s watchdog and status tasks on Trio's MockClock (exact instants, no wall time).
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid

import pytest
import trio
import trio.testing

from ratelimitd.errors import ConfigError
from ratelimitd.server.app import Server, Settings
from ratelimitd.server.listener import ListenError, bind_unix
from ratelimitd.server.systemd import Notifier, inherited_socket, run_service, status_line, watchdog_interval
from ratelimitd.tiers import load_text

from .notifications import NotifySocket

# -- Notifier ---------------------------------------------------------------------------------


@pytest.mark.parametrize("abstract", [False, True], ids=["path", "abstract"])
def test_a_message_is_one_datagram_of_lines(short_tmp, abstract):
    address = f"@rl-test-{uuid.uuid4().hex}" if abstract else str(short_tmp / "n.sock")
    listener = NotifySocket(address)
    try:
        notify = Notifier.from_environ({"NOTIFY_SOCKET": address})
        assert notify.enabled
        assert notify(READY=1, STATUS="reload refused:\nline two") is True
        message, skipped = listener.next("READY")
        assert skipped == [] and message == {"READY": "1", "STATUS": "reload refused: line two"}
        before = time.monotonic_ns() // 1000
        notify(RELOADING=1)
        reloading, _ = listener.next("RELOADING")
        assert before <= int(reloading["MONOTONIC_USEC"]) <= time.monotonic_ns() // 1000
        notify.close()
        assert notify(STOPPING=1)  # opens its socket again
        assert listener.next("STOPPING")[0] == {"STOPPING": "1"}
    finally:
        listener.close()


@pytest.mark.parametrize("environ", [{}, {"NOTIFY_SOCKET": ""}, {"NOTIFY_SOCKET": "run/notify"}, {"NOTIFY_SOCKET": "vsock:2:9"}])
def test_without_a_usable_notify_socket_nothing_is_sent(environ):
    notify = Notifier.from_environ(environ)
    assert not notify.enabled
    assert notify(READY=1) is False


def test_a_failed_send_is_reported_as_false_and_logged_once(short_tmp, caplog):
    notify = Notifier(str(short_tmp / "nobody.sock"))
    with caplog.at_level(logging.WARNING, logger="ratelimitd"):
        assert notify(READY=1) is False
        assert notify(WATCHDOG=1) is False
    assert [r.getMessage() for r in caplog.records] == [
        f"cannot notify systemd at NOTIFY_SOCKET={short_tmp / 'nobody.sock'}: No such file or directory"
    ]


# -- watchdog_interval ------------------------------------------------------------------------

MY_PID = str(os.getpid())


@pytest.mark.parametrize(
    ("environ", "interval"),
    [
        ({}, None),
        ({"WATCHDOG_USEC": "200000"}, 0.2),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": MY_PID}, 30.0),
        ({"WATCHDOG_USEC": "200000", "WATCHDOG_PID": "1"}, None),  # meant for another process
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "-5"}, None),
        ({"WATCHDOG_USEC": "30s"}, None),
        ({"WATCHDOG_USEC": ""}, None),
    ],
)
def test_watchdog_interval(environ, interval):
    assert watchdog_interval(environ) == interval


# -- inherited_socket -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "environ",
    [
        {},
        {"LISTEN_FDS": "1", "LISTEN_PID": "1", "LISTEN_FDNAMES": "ratelimitd.socket"},  # for another process
        {"LISTEN_FDS": "0", "LISTEN_PID": MY_PID},
        {"LISTEN_FDNAMES": "x"},
    ],
)
def test_no_socket_inherited_and_the_variables_are_consumed(environ):
    assert inherited_socket(environ) is None
    assert not {"LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"} & environ.keys()


def test_a_malformed_listen_fds_is_an_error():
    with pytest.raises(ListenError, match="LISTEN_FDS='one' is not a number of descriptors"):
        inherited_socket({"LISTEN_FDS": "one", "LISTEN_PID": MY_PID})


# -- status_line ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "rate", "line"),
    [
        ({"keys": 5, "waiters": 0, "connections": 0, "reload_error": None}, 0.0, "5 keys, 0.0 grants/s, 0 waiting, 0 connections"),
        ({"keys": 1, "waiters": 3, "connections": 8}, 1234.56, "1 keys, 1234.6 grants/s, 3 waiting, 8 connections"),
        (
            {"keys": 2, "waiters": 0, "connections": 1, "reload_error": "t.toml: keys.k.tier: no tier 'gold'\n(see docs)"},
            0.5,
            "2 keys, 0.5 grants/s, 0 waiting, 1 connections; last reload refused, previous table kept: t.toml: keys.k.tier: no tier 'gold' (see docs)",
        ),
    ],
)
def test_status_line(status, rate, line):
    assert status_line(status, rate) == line


# -- run_service on MockClock -----------------------------------------------------------------


class Recorder:
    """A notifier that records (trio time, fields) instead of sending."""

    enabled = True

    def __init__(self) -> None:
        self.sent: list[tuple[float, dict[str, object]]] = []

    def __call__(self, **fields: object) -> bool:
        self.sent.append((trio.current_time(), fields))
        return True


class FakeServer:
    """The two things run_service uses of a Server: serve() and status()."""

    def __init__(self, notify: Recorder) -> None:
        self.notify = notify
        self.grants = 0
        self.stop = trio.Event()

    async def serve(self, listening, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        await trio.sleep(3)  # restoring state: the watchdog must ping meanwhile
        task_status.started()
        self.notify(READY=1)
        await self.stop.wait()
        self.notify(STOPPING=1)

    def status(self) -> dict[str, object]:
        return {"keys": 2, "grants": self.grants, "waiters": 1, "connections": 4, "reload_error": None}


@pytest.fixture
def autojump_clock():
    return trio.testing.MockClock(autojump_threshold=0)


async def test_watchdog_pings_at_half_the_interval_and_status_every_period(autojump_clock):
    notify = Recorder()
    server = FakeServer(notify)

    async def traffic() -> None:
        await trio.sleep(5)
        server.grants += 50  # between the status lines at 3 and 13: 5 grants/s
        await trio.sleep(20)
        server.stop.set()

    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(traffic)
        await run_service(server, None, notify, 4.0, 10.0)
    assert trio.current_time() - start == 25  # returns when serve returns: the helpers end with it
    sent = [(t - start, fields) for t, fields in notify.sent]
    assert [t for t, fields in sent if fields == {"WATCHDOG": 1}] == [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24]
    others = [(t, fields) for t, fields in sent if fields != {"WATCHDOG": 1}]
    assert others == [
        (3, {"READY": 1}),
        (3, {"STATUS": "2 keys, 0.0 grants/s, 1 waiting, 4 connections"}),
        (13, {"STATUS": "2 keys, 5.0 grants/s, 1 waiting, 4 connections"}),
        (23, {"STATUS": "2 keys, 0.0 grants/s, 1 waiting, 4 connections"}),
        (25, {"STOPPING": 1}),
    ]


async def test_without_a_manager_only_the_server_runs(autojump_clock):
    notify = Recorder()
    notify.enabled = False
    server = FakeServer(notify)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(run_service, server, None, notify, 4.0, 10.0)
        await trio.sleep(10)
        server.stop.set()
    assert [fields for _, fields in notify.sent] == [{"READY": 1}, {"STOPPING": 1}]  # serve's own, nothing else


# -- the Server's notify hook, in-process on MockClock ----------------------------------------

TABLE = """
[providers.api.endpoints]
"rest" = ["rest"]
[providers.api.tiers.basic]
rest = { rate = "%s" }
[keys.k]
provider = "api"
tier = "basic"
"""


async def test_server_notifies_ready_reloads_and_stopping(short_tmp):
    config = short_tmp / "tiers.toml"
    config.write_text(TABLE % "10/1m")
    path = str(short_tmp / "rl.sock")
    server = Server(Settings(config=str(config), socket=path, durability="memory"), load_text(TABLE % "10/1m"))
    sent: list[dict[str, object]] = []
    server.notify = lambda **fields: sent.append(fields)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve, bind_unix(path))
        assert sent == [{"READY": 1}]
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.connect(path)  # READY was sent with the socket served
        probe.close()
        await server.reload()
        config.write_text("[keys.k]\nprovider = 'nowhere'\n")
        with pytest.raises(ConfigError, match="names no tier"):
            await server.reload()
        server.stop()
        server.stop()  # a second SIGTERM: STOPPING only once
    assert sent[1:3] == [{"RELOADING": 1}, {"READY": 1, "STATUS": f"reloaded {config}: 1 keys"}]
    assert sent[3] == {"RELOADING": 1}
    assert set(sent[4]) == {"READY", "STATUS"} and sent[4]["STATUS"].startswith(f"reload refused, previous table kept: {config}")
    assert sent[5:] == [{"STOPPING": 1}]
