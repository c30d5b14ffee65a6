"""Running the command of ``ratelimitctl run``: inherited stdio, signals passed on, a shell's exit status.

While the command runs, ``ratelimitctl`` stays its parent so that the permit's
connection (and any lease on it) lives exactly as long as the command. SIGTERM
and SIGHUP sent to ``ratelimitctl`` are passed on to the command; SIGINT from
the terminal already reaches the whole process group, so ``ratelimitctl``
ignores it and lets the command decide. A ``Watch`` (the lease of ``run``)
is looked after while the command runs: its file descriptor is waited on
together with the command's exit (a pidfd), so nothing polls on a timer
while all is well.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import threading
from collections.abc import Sequence
from typing import Protocol

import click

__all__ = ["run_command", "Watch", "EXIT_CANNOT_EXECUTE", "EXIT_NOT_FOUND", "RETRY"]

# the statuses a POSIX shell uses for a command it cannot run
EXIT_CANNOT_EXECUTE = 126
EXIT_NOT_FOUND = 127

_PASSED_ON = (signal.SIGTERM, signal.SIGHUP)

# Seconds between calls of a Watch that has no file descriptor to wait on (it is reconnecting),
# and between checks of the command where a pidfd is not available.
RETRY = 0.5


class Watch(Protocol):
    """Something looked after while the command runs."""

    def fileno(self) -> int | None:
        """Return the descriptor to wait on; None when there is none now (``check`` is then called every RETRY s)."""

    def check(self, process: subprocess.Popen[bytes]) -> bool:
        """Handle what made the descriptor readable (or the retry); return False to stop watching."""


def run_command(argv: Sequence[str], watch: Watch | None = None) -> int:
    """Run ``argv`` until it exits and return its exit status as a shell reports it.

    A command killed by signal N reports ``128 + N``. A command that cannot be
    started reports 127 (not found) or 126 (found, not executable), with the
    reason on stderr. ``watch``, if given, is looked after until the command
    exits or it asks to stop.
    """
    try:
        process = subprocess.Popen(list(argv))
    except FileNotFoundError:
        click.echo(f"ratelimitctl: {argv[0]}: command not found", err=True)
        return EXIT_NOT_FOUND
    except OSError as exc:
        click.echo(f"ratelimitctl: {argv[0]}: {exc.strerror or exc}", err=True)
        return EXIT_CANNOT_EXECUTE
    with _signals_to(process):
        status = process.wait() if watch is None else _wait_watching(process, watch)
    return 128 - status if status < 0 else status


def _wait_watching(process: subprocess.Popen[bytes], watch: Watch) -> int:
    """Wait for ``process`` to exit, calling ``watch.check`` whenever its descriptor is readable; return the status."""
    try:
        pidfd: int | None = os.pidfd_open(process.pid)
    except (AttributeError, OSError):
        pidfd = None  # not Linux 5.3+: look at the command every RETRY seconds instead
    try:
        while True:
            status = process.poll()
            if status is not None:
                return status
            fd = watch.fileno()
            waiting = select.poll()
            if pidfd is not None:
                waiting.register(pidfd, select.POLLIN)
            if fd is not None:
                waiting.register(fd, select.POLLIN)
            timeout = None if fd is not None and pidfd is not None else RETRY * 1000
            ready = {ready_fd for ready_fd, _ in waiting.poll(timeout)}
            if (fd is None or fd in ready) and process.poll() is None and not watch.check(process):
                return process.wait()
    finally:
        if pidfd is not None:
            os.close(pidfd)


class _signals_to:
    """Pass SIGTERM and SIGHUP on to ``process`` and ignore SIGINT while it runs (main thread only)."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process
        self.saved: dict[int, object] = {}

    def _pass_on(self, signum: int, frame: object) -> None:
        if self.process.returncode is None:
            try:
                os.kill(self.process.pid, signum)
            except ProcessLookupError:
                pass

    def __enter__(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in _PASSED_ON:
            self.saved[signum] = signal.signal(signum, self._pass_on)
        self.saved[signal.SIGINT] = signal.signal(signal.SIGINT, signal.SIG_IGN)

    def __exit__(self, *exc_info: object) -> None:
        for signum, handler in self.saved.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
