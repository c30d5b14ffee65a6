"""Fixtures for the systemd tests: a notification socket, and a real daemon started without the readiness probe."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ..daemon import Daemon
from .notifications import NotifySocket


# What systemd may have set for the process running the tests; a daemon under test gets only its own.
SYSTEMD_VARIABLES = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "JOURNAL_STREAM")


def clean_environ(extra: dict[str, str]) -> dict[str, str]:
    """Return this process's environment without systemd's variables, plus ``extra``."""
    env = {name: value for name, value in os.environ.items() if name not in SYSTEMD_VARIABLES}
    env.update(extra)
    return env


@pytest.fixture
def notify_socket(short_tmp: Path) -> Iterator[NotifySocket]:
    """Yield a notification socket bound to a path in the test's directory."""
    listener = NotifySocket(str(short_tmp / "notify.sock"))
    yield listener
    listener.close()


@pytest.fixture
def spawn(short_tmp: Path) -> Iterator[Callable[..., Daemon]]:
    """Yield a function that starts a real daemon with extra environment and returns at once.

    Unlike ``start_daemon`` it does not probe the socket: these tests learn of
    readiness from ``READY=1``. Every daemon is stopped (or killed) afterwards.
    """
    started: list[Daemon] = []

    def spawn(table: str, env: dict[str, str], name: str = "d") -> Daemon:
        directory = short_tmp / name
        directory.mkdir(exist_ok=True)
        daemon = Daemon(directory, table)
        with open(daemon.log, "ab") as log:
            daemon.process = subprocess.Popen(daemon.args, stdout=log, stderr=subprocess.STDOUT, env=clean_environ(env))
        started.append(daemon)
        return daemon

    yield spawn
    for daemon in started:
        try:
            daemon.stop(timeout=10)
        except Exception:
            daemon.kill()
