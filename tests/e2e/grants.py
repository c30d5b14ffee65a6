"""Run worker processes against a daemon and check what a provider would see of their grants."""

from __future__ import annotations

import subprocess
import sys
import time
from bisect import bisect_left
from pathlib import Path

WORKER = str(Path(__file__).with_name("worker.py"))
# time for every worker process to start and connect before the common start (2 cores, 8 Pythons)
STARTUP = 2.0


def run_workers(
    socket: str, key: str, plans: list[list[str]], seconds: float, directory: Path
) -> tuple[list[list[tuple[float, str]]], float]:
    """Run one worker per plan (the endpoints it calls in turn) for ``seconds``.

    Returns each worker's grants as (time, endpoint), and the time the run ended.
    """
    start = time.time() + STARTUP
    until = start + seconds
    outputs = [directory / f"worker{i}.txt" for i in range(len(plans))]
    procs = [
        subprocess.Popen([sys.executable, WORKER, socket, key, ",".join(plan), str(start), str(until), str(out)])
        for plan, out in zip(plans, outputs)
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
    return result, until


def busiest_window(times: list[float], window: float) -> int:
    """Return the most grants that fall in any half-open interval [t, t + window)."""
    times = sorted(times)
    return max((bisect_left(times, t + window) - i for i, t in enumerate(times)), default=0)


def utilisation(times: list[float], limit: int, window: float, until: float) -> float:
    """Return the grants' share of what a perfect limiter could grant in whole windows of the run.

    The measured interval starts at the first grant and spans as many whole
    windows as fit before ``until``; a perfect limiter grants ``limit`` in each.
    """
    first = min(times)
    windows = int((until - first) // window)
    assert windows >= 1, "the run is shorter than one window"
    end = first + windows * window
    return sum(1 for stamp in times if stamp < end) / (limit * windows)
