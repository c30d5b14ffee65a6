"""Running the command of ``ratelimitctl run``: inherited stdio, signals passed on, a shell's exit status.

While the command runs, ``ratelimitctl`` stays its parent so that the permit's
connection (and any lease on it) lives exactly as long as the command. SIGTERM
and SIGHUP sent to ``ratelimitctl`` are passed on to the command; SIGINT from
the terminal already reaches the whole process group, so ``ratelimitctl``
ignores it and lets the command decide.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Sequence

import click

__all__ = ["run_command", "EXIT_CANNOT_EXECUTE", "EXIT_NOT_FOUND"]

# the statuses a POSIX shell uses for a command it cannot run
EXIT_CANNOT_EXECUTE = 126
EXIT_NOT_FOUND = 127

_PASSED_ON = (signal.SIGTERM, signal.SIGHUP)


def run_command(argv: Sequence[str]) -> int:
    """Run ``argv`` until it exits and return its exit status as a shell reports it.

    A command killed by signal N reports ``128 + N``. A command that cannot be
    started reports 127 (not found) or 126 (found, not executable), with the
    reason on stderr.
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
        status = process.wait()
    return 128 - status if status < 0 else status


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
