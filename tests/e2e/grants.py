"""Run worker processes against a daemon and check what a provider would see of their grants."""

from __future__ import annotations

import subprocess
import sys
import time
from bisect import bisect_left
from pathlib import Path

WORKER = str(Path(__file__).with_name("worker.py"))


def run_workers(socket: str, key: str, endpoints: list[str], processes: int, seconds: float, directory: Path) -> list[list[tuple[float, str]]]:
    """Run ``processes`` workers for ``seconds``; return each one's grants as (time, endpoint)."""
    until = time.time() + seconds
    outputs = [directory / f"worker{i}.txt" for i in range(processes)]
    procs = [
        subprocess.Popen([sys.executable, WORKER, socket, key, ",".join(endpoints), str(until), str(out)])
        for out in outputs
    ]
    for proc in procs:
        assert proc.wait(seconds + 60) == 0, "a worker process failed"
    result = []
    for out in outputs:
        grants = []
        for line in out.read_text().splitlines():
            stamp, endpoint = line.split()
            grants.append((float(stamp), endpoint))
        result.append(grants)
    return result


def busiest_window(times: list[float], window: float) -> int:
    """Return the most grants that fall in any half-open interval [t, t + window)."""
    times = sorted(times)
    return max((bisect_left(times, t + window) - i for i, t in enumerate(times)), default=0)


def utilisation(times: list[float], limit: int, window: float) -> float:
    """Return the grants' share of what the limit allows over the time they cover.

    The grants cover the span from the first to the last, plus the window the
    last one opens; a perfect limiter fills each window with ``limit`` grants.
    """
    span = max(times) - min(times) + window
    return len(times) / (limit * span / window)
