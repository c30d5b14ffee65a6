"""Socket activation for real: ``systemd-socket-activate`` holds the socket, the daemon adopts it, a client gets a grant.

``systemd-socket-activate`` listens first and starts the daemon only when a
connection arrives, as ``ratelimitd.socket`` does at boot. The first client has
therefore connected before the daemon even existed: the kernel queues it, and
it is answered once the daemon is ready, never refused.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import pytest
from ratelimitd_client import Client, DaemonUnavailable

from ..daemon import console_script
from .notifications import NotifySocket

pytestmark = pytest.mark.skipif(shutil.which("systemd-socket-activate") is None, reason="systemd-socket-activate is not installed")

TABLE = """
[providers.api.endpoints]
"rest" = ["rest"]
[providers.api.tiers.basic]
rest = { rate = "10/1m" }
[keys.k]
provider = "api"
tier = "basic"
"""


class Activator:
    """``systemd-socket-activate`` running the installed daemon on sockets in ``directory``."""

    def __init__(self, directory: Path, *options: str, env: dict[str, str] | None = None) -> None:
        self.config = directory / "tiers.toml"
        self.config.write_text(textwrap.dedent(TABLE))
        self.log = directory / "activate.log"
        # the tool passes the child only PATH, HOME, TERM, LISTEN_* and what -E names
        setenv = [f"--setenv={name}={value}" for name, value in (env or {}).items()]
        daemon = [console_script("ratelimitd"), "--config", str(self.config), "--state", str(directory / "state.db")]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                ["systemd-socket-activate", *options, *setenv, *daemon], stdout=log, stderr=subprocess.STDOUT
            )

    def output(self) -> str:
        """Return what the tool and the daemon wrote."""
        return self.log.read_text()

    def wait_for_log(self, text: str, timeout: float = 15.0) -> None:
        """Return once ``text`` appears in the output; fail after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while text not in self.output():
            assert time.monotonic() < deadline, f"{text!r} not logged within {timeout}s:\n{self.output()}"
            time.sleep(0.01)

    def stop(self) -> None:
        """End the tool (and the daemon it became or spawned)."""
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(15)


def connect_first(path: str, timeout: float = 15.0) -> Client:
    """Return a client connected to ``path`` once the tool listens there (the tool binds, then listens)."""
    deadline = time.monotonic() + timeout
    client = Client(socket=path, timeout=30)
    while True:
        try:
            return client.connect()
        except DaemonUnavailable:
            assert time.monotonic() < deadline, f"nothing listens on {path} within {timeout}s"
            time.sleep(0.01)


@pytest.fixture
def activators():
    started: list[Activator] = []
    yield started
    for activator in started:
        activator.stop()


def test_the_daemon_adopts_the_socket_and_grants_a_queued_client(short_tmp, activators):
    path = str(short_tmp / "rl.sock")
    notify = NotifySocket(str(short_tmp / "notify.sock"))
    try:
        activator = Activator(short_tmp, f"--listen={path}", "--fdname=ratelimitd.socket", env={"NOTIFY_SOCKET": notify.address})
        activators.append(activator)
        with connect_first(path) as client:  # the connection that makes the tool start the daemon
            permit = client.acquire("k", "rest")
            assert permit.granted and permit.remaining == 9
            status = client.status()
        ready, before = notify.next("READY")
        assert ready == {"READY": "1"} and before == []
        assert status["socket"] == path  # no --socket given: the adopted socket's own path
        assert status["pid"] == activator.process.pid  # the tool exec()s the daemon: LISTEN_PID is its pid
        assert f"adopted the listening socket {path} from systemd" in activator.output()

        activator.process.send_signal(signal.SIGTERM)
        notify.next("STOPPING")
        assert activator.process.wait(15) == 0, activator.output()
        assert os.path.exists(path)  # the socket belongs to the socket unit: the daemon leaves it
    finally:
        notify.close()


def test_accept_yes_is_refused_with_a_precise_message(short_tmp, activators):
    # Accept=yes passes each connection, not the listening socket: the daemon cannot serve that
    path = str(short_tmp / "rl.sock")
    activator = Activator(short_tmp, "--accept", f"--listen={path}")
    activators.append(activator)
    with connect_first(path):
        activator.wait_for_log("inherited socket 3 (unknown) is not listening; the socket unit must not set Accept=yes")


def test_more_than_one_socket_is_refused(short_tmp, activators):
    first, second = str(short_tmp / "a.sock"), str(short_tmp / "b.sock")
    activator = Activator(short_tmp, f"--listen={first}", f"--listen={second}", "--fdname=one:two")
    activators.append(activator)
    with connect_first(first):
        assert activator.process.wait(15) == 1
    assert "systemd passed 2 Unix stream sockets (one, two); ratelimitd listens on exactly one" in activator.output()
