"""Measure the store: one batch of 10,000 dirty rows, loading 100,000 rows, and the fixed costs around them.

Run: python -m tests.store.bench_store [DIR]   (not collected by pytest; numbers go to docs/state.md)
Each row holds a sliding log of 10 grants ([[age_ns, cost], ...]), a typical small bucket;
a third of the costs are Decimal unless said otherwise (cbor2 decodes Decimal ~2.5x slower than int).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from decimal import Decimal

from ratelimitd.store import BucketRow, StateStore

T0 = 1_700_000_000 * 10**9


def rows(count: int, generation: int, decimals: bool = True) -> list[BucketRow]:
    log = [[i * 1_000_000_007, 1 if i % 3 or not decimals else Decimal("0.1")] for i in range(10)]
    return [
        BucketRow(f"key{n % 500}", f"bucket{n // 500}", n % 3, "sliding-log", "60/1m", log, T0 + generation)
        for n in range(count)
    ]


def timed(action, repeat: int = 5) -> tuple[float, float]:
    """Return the median and the worst of ``repeat`` runs, in ms."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = action()
        times.append((time.perf_counter() - start) * 1000)
        del result  # freeing a million objects is not part of loading them
    return statistics.median(times), max(times)


def main(directory: str) -> None:
    path = os.path.join(directory, "bench.db")
    store = StateStore.open(path)
    store.begin_run(os.getpid(), T0)
    store.write(rows(100_000, 0), [], T0)
    generation = iter(range(1, 1000))
    batch = rows(10_000, 0)
    report = {
        "write 10,000 rows, one transaction (batched: synchronous=NORMAL)": timed(
            lambda: store.write(batch, [], T0 + next(generation))
        ),
        "write 10,000 rows, one transaction (strict: synchronous=FULL)": timed(
            lambda: store.write(batch, [], T0 + next(generation), sync=True)
        ),
        "write 100 rows (a typical flush)": timed(lambda: store.write(batch[:100], [], T0 + next(generation)), 50),
        "write 1 row, strict (one group commit)": timed(
            lambda: store.write(batch[:1], [], T0 + next(generation), sync=True), 50
        ),
        "empty write (heartbeat)": timed(lambda: store.write([], [], T0 + next(generation)), 50),
        "load 100,000 rows (a third of the costs Decimal)": timed(store.load_buckets),
    }
    store.write(rows(100_000, 0, decimals=False), [], T0 + next(generation))
    report["load 100,000 rows (integer costs)"] = timed(store.load_buckets)
    store.end_run(T0 + 10**9)
    store.close()

    def reopen() -> None:
        again = StateStore.open(path)
        again.begin_run(os.getpid(), T0 + 2 * 10**9)  # moves 100,000 saved_at onto the new timeline
        again.end_run(T0 + 3 * 10**9)
        again.close()

    report["open + begin_run with 100,000 rows (quick_check, shift)"] = timed(reopen)
    size = os.path.getsize(path)
    for what, (median, worst) in report.items():
        print(f"{what:<66} median {median:8.1f} ms   worst {worst:8.1f} ms")
    print(f"file size with 100,000 rows: {size / 1e6:.1f} MB")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(sys.argv[1])
    else:
        with tempfile.TemporaryDirectory() as scratch:
            main(scratch)
