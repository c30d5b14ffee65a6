"""Run one measurement: start the client processes, release them together, collect what they timed.

``run_workers`` is the only place that starts workers; it bounds every phase
in time and ends every worker it started, whatever happens. ``Sample`` is the
result of one run of one backend; ``percentile`` and ``median`` summarise.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from array import array
from dataclasses import dataclass

from procs import HarnessError, cpu_between, cpu_snapshot, spawn, stop

__all__ = ["Sample", "run_workers", "summarise", "percentile", "median", "collect_stamps"]

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))


@dataclass
class Sample:
    """What one run of one backend measured (times in µs; CPU per check in µs; None: not measured)."""

    checks: int
    seconds: float
    throughput: float
    p50: float
    p99: float
    p999: float
    client_cpu: float
    server_cpu: float | None
    denied: int
    errors: int
    run: int = 0  # which interleaved round it was measured in (ratios pair samples of the same round)
    cut: bool = False  # some worker stopped at its time limit before doing all its checks


def percentile(sorted_values, q: float) -> float:
    """Return the nearest-rank ``q`` quantile (0..1) of the already sorted ``sorted_values``."""
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, int(q * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]


def median(values):
    """Return the median of ``values`` ignoring None (None when nothing is left)."""
    kept = sorted(v for v in values if v is not None)
    if not kept:
        return None
    mid = len(kept) // 2
    return kept[mid] if len(kept) % 2 else (kept[mid - 1] + kept[mid]) / 2


class _Lines:
    """Reads whole lines from several worker stdouts without blocking past a deadline."""

    def __init__(self, procs: list[subprocess.Popen]) -> None:
        self.procs = procs
        self.buffers = {p.stdout.fileno(): b"" for p in procs}

    def one_each(self, deadline: float, what: str) -> list[str]:
        """Return the next line of every worker, in worker order; raise HarnessError past ``deadline``."""
        lines: dict[int, str] = {}
        fds = {p.stdout.fileno(): p for p in self.procs}
        for fd, buf in self.buffers.items():
            if b"\n" in buf:
                line, self.buffers[fd] = buf.split(b"\n", 1)
                lines[fd] = line.decode()
        while len(lines) < len(fds):
            left = deadline - time.monotonic()
            if left <= 0:
                raise HarnessError(f"workers did not report {what} in time ({len(lines)}/{len(fds)} did)")
            ready, _, _ = select.select([fd for fd in fds if fd not in lines], [], [], min(left, 1.0))
            for fd in ready:
                data = os.read(fd, 1 << 16)
                if not data:
                    proc = fds[fd]
                    proc.wait(timeout=5)
                    err = proc.stderr.read().decode(errors="replace").strip().splitlines() if proc.stderr else []
                    raise HarnessError(f"a worker exited (status {proc.returncode}) before {what}: {' | '.join(err[-3:])}")
                self.buffers[fd] += data
                if b"\n" in self.buffers[fd]:
                    line, self.buffers[fd] = self.buffers[fd].split(b"\n", 1)
                    lines[fd] = line.decode()
        return [lines[p.stdout.fileno()] for p in self.procs]


def _launch(cfgs: list[dict]) -> list[subprocess.Popen]:
    """Start one worker process per config."""
    script = os.path.join(BENCH_DIR, "worker.py")
    return [
        spawn([sys.executable, script, json.dumps(cfg)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for cfg in cfgs
    ]


def run_workers(cfgs: list[dict], server_pid: int | None, timeout: float) -> tuple[list[dict], list[array]]:
    """Run one worker per config against a started server and return their results and timings.

    Workers connect and warm up, then all are released at once; the server's CPU
    time is read from /proc (``cpu_snapshot``) just before the release and just after the last
    result. Each result gets ``server_cpu`` (seconds, or None without a server
    process). Raises ``HarnessError`` when a worker fails or a phase overruns.
    """
    procs = _launch(cfgs)
    try:
        lines = _Lines(procs)
        ready = lines.one_each(time.monotonic() + 60.0, "ready")
        if any(line != "ready" for line in ready):
            raise HarnessError(f"unexpected worker output before the start: {ready!r}")
        cpu0 = cpu_snapshot(server_pid) if server_pid else None
        for p in procs:
            p.stdin.write(b"go\n")
            p.stdin.flush()
        results = [json.loads(line) for line in lines.one_each(time.monotonic() + timeout, "results")]
        used = cpu_between(cpu0, cpu_snapshot(server_pid)) if server_pid else None
        for result in results:
            result["server_cpu"] = used
        timings = []
        for cfg in cfgs:
            values = array("q")
            with open(cfg["out"], "rb") as f:
                values.frombytes(f.read())
            os.unlink(cfg["out"])
            timings.append(values)
        return results, timings
    finally:
        for p in procs:
            stop(p, grace=2.0)


def summarise(results: list[dict], timings: list[array]) -> Sample:
    """Return the ``Sample`` of one run from its workers' results and per-call latencies (ns)."""
    checks = sum(r["n"] for r in results)
    seconds = (max(r["t1"] for r in results) - min(r["t0"] for r in results)) / 1e9
    lat = sorted(v for values in timings for v in values)
    server = results[0]["server_cpu"]
    return Sample(
        checks=checks,
        seconds=seconds,
        throughput=checks / seconds if seconds > 0 else float("nan"),
        p50=percentile(lat, 0.50) / 1e3,
        p99=percentile(lat, 0.99) / 1e3,
        p999=percentile(lat, 0.999) / 1e3,
        client_cpu=sum(r["cpu"] for r in results) / checks * 1e6,
        server_cpu=None if server is None else server / checks * 1e6,
        denied=sum(r["denied"] for r in results),
        errors=sum(r["errors"] for r in results),
        cut=any(r.get("cut") for r in results),
    )


def collect_stamps(timings: list[array]) -> list[int]:
    """Return every worker's grant timestamps (ns) merged in time order."""
    return sorted(v for values in timings for v in values)
