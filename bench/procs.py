"""Start, watch and stop the benchmark's processes; read their CPU time and memory from /proc.

Every process the harness starts goes through ``spawn``, which records it and
asks the kernel to send it SIGTERM if the harness dies (PR_SET_PDEATHSIG), so
nothing outlives a run: ``stop_all`` ends whatever is left, newest first, and
``run.py`` calls it on every way out (normal end, error, Ctrl-C, SIGTERM).
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import time
from typing import Callable, Sequence

__all__ = [
    "spawn",
    "stop",
    "stop_all",
    "cpu_seconds",
    "cpu_snapshot",
    "cpu_between",
    "rss_bytes",
    "wait_until",
    "unix_connectable",
    "HarnessError",
]

_CLK_TCK = os.sysconf("SC_CLK_TCK")
_PR_SET_PDEATHSIG = 1
_live: list[subprocess.Popen] = []


class HarnessError(Exception):
    """Raised when the harness itself cannot go on (a backend it started misbehaves, a worker fails)."""


def _die_with_parent() -> None:
    """Ask the kernel to send SIGTERM to this child when the harness goes away (runs in the child)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


def spawn(args: Sequence[str], **kwargs) -> subprocess.Popen:
    """Start ``args`` as a recorded child that dies with the harness, and return its ``Popen``."""
    proc = subprocess.Popen(list(args), preexec_fn=_die_with_parent, **kwargs)
    _live.append(proc)
    return proc


def stop(proc: subprocess.Popen, grace: float = 3.0) -> int | None:
    """End ``proc`` (SIGTERM, then SIGKILL after ``grace`` seconds) and return its exit status."""
    if proc.poll() is None:
        try:
            proc.terminate()
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=grace)
        except ProcessLookupError:
            pass
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            try:
                stream.close()
            except OSError:
                pass
    if proc in _live:
        _live.remove(proc)
    return proc.returncode


def stop_all() -> None:
    """End every process the harness started that is still recorded, newest first."""
    while _live:
        proc = _live[-1]
        try:
            stop(proc, grace=2.0)
        except Exception:  # noqa: BLE001 - clean-up must reach every process
            if proc in _live:
                _live.remove(proc)


def cpu_seconds(pid: int) -> float:
    """Report the user+system CPU seconds process ``pid`` (all its threads) has used so far."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        stat = f.read()
    fields = stat[stat.rindex(b")") + 2 :].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def cpu_snapshot(pid: int) -> tuple[float, dict[int, int]]:
    """Return process ``pid``'s CPU seconds in clock ticks and each live thread's CPU ns (schedstat)."""
    threads: dict[int, int] = {}
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat", "rb") as f:
                    threads[int(tid)] = int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass
    except OSError:
        pass
    return cpu_seconds(pid), threads


def cpu_between(before: tuple[float, dict[int, int]], after: tuple[float, dict[int, int]]) -> float:
    """Report the CPU seconds a process used between two ``cpu_snapshot``s.

    Uses the nanosecond per-thread counters when every thread seen before is
    still there (a thread born in between counts whole); else falls back to
    /proc/PID/stat, whose clock-tick resolution (10 ms) also covers dead threads.
    """
    ticks0, threads0 = before
    ticks1, threads1 = after
    if threads0 and threads1 and all(tid in threads1 for tid in threads0):
        return (sum(threads1.values()) - sum(threads0.values())) / 1e9
    return ticks1 - ticks0


def rss_bytes(pid: int) -> int:
    """Report the resident set size of process ``pid`` in bytes (VmRSS of /proc/PID/status)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise HarnessError(f"no VmRSS line in /proc/{pid}/status")


def wait_until(ready: Callable[[], bool], timeout: float, proc: subprocess.Popen | None = None) -> bool:
    """Poll ``ready`` every 10 ms for up to ``timeout`` seconds; report whether it became true.

    Gives up early (False) when ``proc`` is given and has exited.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return True
        if proc is not None and proc.poll() is not None:
            return False
        time.sleep(0.01)
    return ready()


def unix_connectable(path: str) -> bool:
    """Report whether a Unix stream socket at ``path`` accepts a connection now."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(0.5)
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()
