"""A real ``ratelimitd`` process for end-to-end tests: started on a real socket, stopped or killed for real.

Nothing is mocked: the test writes a tier table, runs the installed console
script, and talks to it through the real client or ``ratelimitctl``. Readiness
is the socket accepting a connection (polled briefly; not a timing assertion).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

__all__ = ["Daemon", "console_script", "ratelimitd_command"]


def console_script(name: str) -> str:
    """Return the path of the installed console script ``name``: beside this Python (a venv), else on PATH."""
    beside = Path(sys.executable).with_name(name)
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"the console script {name!r} is not installed; run: pip install -e clients/python -e .")
    return found


def ratelimitd_command() -> list[str]:
    """Return the command that runs the installed daemon."""
    return [console_script("ratelimitd")]


class Daemon:
    """One daemon process with its own tier table, socket and state file under ``directory``."""

    def __init__(self, directory: Path, table: str, *extra: str, env: dict[str, str] | None = None) -> None:
        self.directory = directory
        self.config = directory / "tiers.toml"
        self.socket = str(directory / "rl.sock")
        self.state = str(directory / "state.db")
        self.log = directory / "daemon.log"
        self.extra = list(extra)
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None
        self.write_table(table)

    def write_table(self, table: str) -> None:
        """Replace the tier table file (a running daemon reads it on reload)."""
        self.config.write_text(textwrap.dedent(table))

    @property
    def args(self) -> list[str]:
        """Report the full command line."""
        return [*ratelimitd_command(), "--config", str(self.config), "--socket", self.socket, "--state", self.state, *self.extra]

    def start(self, timeout: float = 15.0) -> "Daemon":
        """Start the process and return once its socket accepts connections."""
        env = dict(os.environ, **(self.env or {}))
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ratelimitd exited with {self.process.returncode}:\n{self.log.read_text()}")
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(self.socket)
                return self
            except OSError:
                time.sleep(0.01)
            finally:
                probe.close()
        self.kill()
        raise RuntimeError(f"ratelimitd did not listen on {self.socket} within {timeout}s:\n{self.log.read_text()}")

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the daemon."""
        assert self.process is not None
        self.process.send_signal(signum)

    def stop(self, timeout: float = 15.0) -> int:
        """Stop with SIGTERM and return the exit status."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self) -> None:
        """Kill with SIGKILL (a crash) and reap the process."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def output(self) -> str:
        """Return what the daemon logged."""
        return self.log.read_text() if self.log.exists() else ""
