"""The measurements beside the main table: many keys, waiting, start-up with buckets to restore.

Each ``measure_*`` runs its test ``runs`` times against a freshly started
daemon and returns a dict of medians (or a ``note`` saying why it could not
run); ``run.py`` prints them and checks the targets against them.
"""

from __future__ import annotations

import os
import signal
import time

from measure import collect_stamps, median, percentile, run_workers, summarise
from procs import HarnessError, rss_bytes
from servers import (
    WAIT_RATE,
    Unavailable,
    client_available,
    many_keys_table,
    probe,
    ratelimitd_help,
    start_ratelimitd,
    stop_server,
    tier_table,
)

__all__ = ["measure_many_keys", "measure_waiting", "measure_startup", "MANY_KEYS_RATE"]

# a few grants per key, far below the limit: the log then holds exactly `grants` entries per bucket
MANY_KEYS_RATE = "10/1m"
_CLIENTS = 4


def _key_slices(keys: int, clients: int) -> list[tuple[int, int]]:
    """Return (start, count) of each client's share of ``keys`` keys."""
    share, extra = divmod(keys, clients)
    slices, start = [], 0
    for i in range(clients):
        count = share + (1 if i < extra else 0)
        slices.append((start, count))
        start += count
    return slices


def measure_many_keys(tmp: str, keys: int, grants: int, runs: int, algorithm: str, log) -> dict:
    """Measure checks/s over ``keys`` distinct keys with ``grants`` each, and the daemon's RSS per bucket.

    RSS is VmRSS after the daemon loaded the table and answered ``hello``, and
    again after every key has had its grants (all buckets then idle). Runs with
    ``--durability memory`` (when the daemon has it) so that the figures are the
    engine's, not the state writer's.
    """
    table = many_keys_table(keys + 1, MANY_KEYS_RATE, algorithm)
    name = f"many-{algorithm}"
    samples, starts, per_bucket, rss_before, rss_after = [], [], [], [], []
    for run in range(runs):
        try:
            memory = "memory" if "--durability" in ratelimitd_help() else None
            server = start_ratelimitd(tmp, table, name=name, timeout=300.0, durability=memory)
            probe(server, f"k{keys}")  # the extra key: every measured key stays fresh
        except Unavailable as exc:
            return {"note": str(exc)}
        try:
            time.sleep(0.2)  # let start-up garbage settle before the first reading
            before = rss_bytes(server.pid)
            cfgs = [
                {"kind": "raw", "socket": server.socket, "endpoint": "rest", "key_prefix": "k", "key_start": start,
                 "key_count": count, "grants_per_key": grants, "out": os.path.join(tmp, f"lat-many-{i}.bin")}
                for i, (start, count) in enumerate(_key_slices(keys, _CLIENTS))
            ]  # fmt: skip
            results, timings = run_workers(cfgs, server.pid, timeout=60 + keys * grants / 500)
            after = rss_bytes(server.pid)
        finally:
            stop_server(server)
        sample = summarise(results, timings)
        if sample.errors:
            raise HarnessError(f"many keys ({algorithm}): {sample.errors} error replies")
        samples.append(sample)
        starts.append(server.started_s)
        rss_before.append(before)
        rss_after.append(after)
        per_bucket.append((after - before) / keys)
        log(f"  many keys {algorithm} run {run + 1}/{runs}: {sample.throughput:,.0f} checks/s, "
            f"{(after - before) / keys:,.0f} B/bucket, start {server.started_s:.2f} s")  # fmt: skip
    return {
        "algorithm": algorithm,
        "rate": MANY_KEYS_RATE,
        "keys": keys,
        "grants": grants,
        "throughput": median(s.throughput for s in samples),
        "p50": median(s.p50 for s in samples),
        "p99": median(s.p99 for s in samples),
        "server_cpu": median(s.server_cpu for s in samples),
        "denied": sum(s.denied for s in samples),
        "start_s": median(starts),
        "rss_before": median(rss_before),
        "rss_after": median(rss_after),
        "bytes_per_bucket": median(per_bucket),
    }


def measure_waiting(tmp: str, seconds: float, runs: int, log, threads: int = 16) -> dict:
    """Measure how late the daemon grants a freed slot to one of 64 waiters on one key.

    The key allows one grant per millisecond (sliding log ``1/1ms``, margin 0),
    so with waiters always queued the n-th grant should follow the one before by
    exactly 1 ms. Lateness = gap between consecutive grants' arrival at the
    clients minus 1 ms: it is how long after the slot freed the waiter had its
    grant (the daemon's timer lateness plus the delivery jitter of two replies).
    The first 64 grants (the queue filling) are not counted.
    """
    missing = client_available()
    client = "raw" if missing else "rl-client"
    client_label = "thin raw client" if missing else "`ratelimitd_client.Client`"
    interval_ns = 1_000_000  # WAIT_RATE
    lateness_p50, lateness_p99, lateness_p999, lateness_max, rates, counts = [], [], [], [], [], []
    for run in range(runs):
        try:
            server = start_ratelimitd(tmp, tier_table(), name="waiting")
            probe(server, "bench-wait")
        except Unavailable as exc:
            return {"note": str(exc)}
        try:
            cfgs = [
                {"mode": "waiters", "client": client, "socket": server.socket, "key": "bench-wait", "endpoint": "rest",
                 "threads": threads, "wait": 5.0, "duration": seconds, "out": os.path.join(tmp, f"stamps-{i}.bin")}
                for i in range(_CLIENTS)
            ]  # fmt: skip
            results, timings = run_workers(cfgs, server.pid, timeout=seconds + 60)
        finally:
            stop_server(server)
        errors = sum(r["errors"] for r in results)
        if errors:
            raise HarnessError(f"waiting: {errors} error replies (see the daemon's log)")
        stamps = collect_stamps(timings)[threads * _CLIENTS :]
        if len(stamps) < 3:
            return {"note": f"only {len(stamps)} grants after the queue filled; nothing to measure"}
        gaps = sorted(b - a - interval_ns for a, b in zip(stamps, stamps[1:]))
        lateness_p50.append(percentile(gaps, 0.5) / 1e3)
        lateness_p99.append(percentile(gaps, 0.99) / 1e3)
        lateness_p999.append(percentile(gaps, 0.999) / 1e3)
        lateness_max.append(gaps[-1] / 1e3)
        rates.append((len(stamps) - 1) / ((stamps[-1] - stamps[0]) / 1e9))
        counts.append(len(stamps))
        log(f"  waiting run {run + 1}/{runs}: {rates[-1]:,.0f} grants/s, lateness p99 {lateness_p99[-1]:,.0f} µs")
    return {
        "waiters": threads * _CLIENTS,
        "rate": WAIT_RATE,
        "client": client_label,
        "grants": median(counts),
        "grants_per_s": median(rates),
        "p50": median(lateness_p50),
        "p99": median(lateness_p99),
        "p999": median(lateness_p999),
        "max": median(lateness_max),
    }


def measure_startup(tmp: str, keys: int, runs: int, log) -> dict:
    """Measure the daemon's start-up (exec to first answer) with ``keys`` buckets to restore.

    Fills ``keys`` buckets (one grant each) under ``--durability batched``, stops
    the daemon with SIGTERM, and times restarts on the same state file. Reports
    "not yet" while the daemon has no persistence (no ``--durability`` option, or
    a restart that restores nothing).
    """
    not_yet = {"note": "not yet: persistence not implemented"}
    try:
        if "--durability" not in ratelimitd_help():
            return not_yet
    except Unavailable as exc:
        return {"note": str(exc)}
    table = many_keys_table(keys, MANY_KEYS_RATE, "sliding-log")
    state = os.path.join(tmp, "startup-state.db")
    try:
        server = start_ratelimitd(tmp, table, name="startup", durability="batched", timeout=300.0, state=state)
    except Unavailable as exc:
        return {"note": str(exc)}
    try:
        empty_start = server.started_s
        cfgs = [
            {"kind": "raw", "socket": server.socket, "endpoint": "rest", "key_prefix": "k", "key_start": start,
             "key_count": count, "grants_per_key": 1, "out": os.path.join(tmp, f"lat-startup-{i}.bin")}
            for i, (start, count) in enumerate(_key_slices(keys, _CLIENTS))
        ]  # fmt: skip
        run_workers(cfgs, server.pid, timeout=60 + keys / 500)
        server.proc.send_signal(signal.SIGTERM)
        server.proc.wait(timeout=60)
    finally:
        stop_server(server)
    if not os.path.exists(state):
        return not_yet
    times, restored = [], None
    for run in range(runs):
        try:
            again = start_ratelimitd(tmp, table, name="startup", durability="batched", timeout=300.0, state=state)
        except Unavailable as exc:
            return {"note": str(exc)}
        try:
            restored = _buckets(again.socket)
        finally:
            stop_server(again)
        times.append(again.started_s)
        log(f"  start-up run {run + 1}/{runs}: {again.started_s:.2f} s, {restored} buckets restored")
    if not restored or restored < keys:
        return {"note": f"not yet: persistence not implemented (a restart restored {restored} of {keys} buckets)"}
    return {"keys": keys, "start_s": median(times), "empty_start_s": empty_start, "restored": restored}


def _buckets(path: str) -> int | None:
    """Return the ``buckets`` count of the daemon's ``status`` reply, or None when it has none."""
    from worker import RawClient

    client = RawClient(path)
    try:
        reply = client.request({"op": "status"})
    finally:
        client.sock.close()
    value = reply.get("buckets") if isinstance(reply, dict) else None
    return value if isinstance(value, int) else None
