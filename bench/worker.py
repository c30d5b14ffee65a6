"""One benchmark client process: sets up a backend's client, waits for "go", times its checks.

Run by the harness as ``python bench/worker.py CONFIG_JSON``. It connects and
warms up, prints ``ready``, blocks until the harness writes ``go`` on stdin (so
every worker starts together and start-up is not timed), runs its loop, bounded
in count (``n``) and in time (``max_seconds``: a slow backend stops early and
says so),
writes its latencies (int64 ns, native order) to ``CONFIG["out"]`` and prints one
JSON line: checks done, denied, errors, loop start/end (CLOCK_MONOTONIC ns, the
same clock in every process), and the CPU seconds this process used in the loop
(``resource.getrusage``, all its threads). Only Unix sockets are used.
"""

from __future__ import annotations

import json
import resource
import socket
import struct
import sys
import threading
import time
from array import array
from typing import Any, Callable

from ratelimitd_client.wire import FrameDecoder, encode

__all__ = ["RawClient", "main"]

_RECV = 65536
_IO_TIMEOUT = 30.0
_clock = time.perf_counter_ns  # CLOCK_MONOTONIC on Linux: comparable across processes


class RawClient:
    """A thin blocking client that speaks the wire framing directly: one ``sendall``, one read loop."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(_IO_TIMEOUT)
        self.sock.connect(path)
        # bound every call by kernel timeouts on a blocking socket: settimeout() would make
        # CPython poll() before each send and recv, two extra syscalls per call (~2 µs)
        self.sock.settimeout(None)
        limit = struct.pack("ll", int(_IO_TIMEOUT), 0)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, limit)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, limit)
        self.decoder = FrameDecoder(max_frame=1 << 24)
        self.next_id = 0
        self.pending: list[Any] = []

    def request(self, message: dict) -> dict:
        """Send ``message`` with a fresh id and return the daemon's reply to it."""
        self.next_id += 1
        message["id"] = self.next_id
        self.sock.sendall(encode(message))
        return self._read(1)[0]

    def pipeline(self, messages: list[dict]) -> list[dict]:
        """Send every message in one write and return their replies (in arrival order)."""
        frames = []
        for message in messages:
            self.next_id += 1
            message["id"] = self.next_id
            frames.append(encode(message))
        self.sock.sendall(b"".join(frames))
        return self._read(len(messages))

    def _read(self, count: int) -> list[dict]:
        """Return the next ``count`` messages from the socket, skipping pushes (no ``id``)."""
        got = self.pending
        while len(got) < count:
            data = self.sock.recv(_RECV)
            if not data:
                raise ConnectionError("the server closed the connection")
            got.extend(m for m in self.decoder.receive(data) if not (isinstance(m, dict) and "push" in m))
        self.pending = got[count:]
        return got[:count]


def _granted(reply: Any) -> bool | None:
    """Report True/False for a granted/denied reply, None for an error reply."""
    if isinstance(reply, dict) and "granted" in reply:
        return bool(reply["granted"])
    return None


def _make_check(cfg: dict) -> Callable[[str], bool | None]:
    """Return ``check(key) -> granted`` (None on an error reply) for the backend in ``cfg``."""
    kind = cfg["kind"]
    endpoint = cfg.get("endpoint", "rest")
    if kind == "raw":
        client = RawClient(cfg["socket"])
        return lambda key: _granted(client.request({"op": "acquire", "key": key, "endpoint": endpoint}))
    if kind == "rl-client":
        from ratelimitd_client import Client

        client = Client(socket=cfg["socket"])
        acquire = client.acquire
        return lambda key: acquire(key, endpoint).granted
    if kind.startswith("limits-"):
        from limits import parse, storage, strategies

        store = storage.storage_from_string(f"redis+unix://{cfg['socket']}")
        strategy = {
            "limits-moving": strategies.MovingWindowRateLimiter,
            "limits-fixed": strategies.FixedWindowRateLimiter,
            "limits-sliding": strategies.SlidingWindowCounterRateLimiter,
        }[kind](store)
        item = parse(cfg["rate"])
        return lambda key: strategy.hit(item, key)
    # PyrateLimiter: the default blocking=True (the limit never denies, so it never waits; and
    # blocking=False trips over filelock 4, whose acquire() no longer takes a positional bool)
    if kind == "pyrate-redis":
        from pyrate_limiter import Duration, Limiter, Rate, RedisBucket
        from redis import Redis

        bucket = RedisBucket.init([Rate(cfg["limit"], Duration.MINUTE)], Redis(unix_socket_path=cfg["socket"]), "bench")
        limiter = Limiter(bucket)
        return lambda key: limiter.try_acquire(key)
    if kind == "pyrate-sqlite":
        from pyrate_limiter import Duration, Limiter, Rate, SQLiteBucket

        bucket = SQLiteBucket.init_from_file(
            [Rate(cfg["limit"], Duration.MINUTE)], table="bench", db_path=cfg["socket"], use_file_lock=True
        )
        limiter = Limiter(bucket)
        return lambda key: limiter.try_acquire(key)
    raise SystemExit(f"unknown worker kind {kind!r}")


def _keys(cfg: dict) -> list[str]:
    """Return the key of every timed check, in order: one shared key, or many keys round-robin."""
    if "key_count" in cfg:
        prefix, start, count = cfg["key_prefix"], cfg["key_start"], cfg["key_count"]
        names = [f"{prefix}{i}" for i in range(start, start + count)]
        return names * cfg.get("grants_per_key", 1)
    return [cfg["key"]] * cfg["n"]


def _one_at_a_time(cfg: dict) -> dict:
    """Run the timed loop of single checks and return the result fields."""
    check = _make_check(cfg)
    for _ in range(cfg.get("warmup", 0)):
        check(cfg.get("warmup_key", cfg.get("key", "bench")))
    keys = _keys(cfg)
    n = len(keys)
    lat = array("q", bytes(8 * n))
    denied = errors = 0
    _handshake()
    clock = _clock
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = clock()
    stop_at = t0 + int(cfg.get("max_seconds", 1e6) * 1e9)
    done = n
    for i in range(n):
        s = clock()
        ok = check(keys[i])
        e = clock()
        lat[i] = e - s
        if ok is not True:
            if ok is None:
                errors += 1
            else:
                denied += 1
        if e > stop_at:
            done = i + 1
            break
    t1 = clock()
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    return _result(cfg, lat[:done], done, denied, errors, t0, t1, r0, r1, cut=done < n)


def _pipelined(cfg: dict) -> dict:
    """Run the timed loop of batches of ``depth`` requests in flight; latencies are per batch."""
    depth = cfg["depth"]
    endpoint = cfg.get("endpoint", "rest")
    key = cfg["key"]
    client = RawClient(cfg["socket"])
    for _ in range(cfg.get("warmup", 0) // depth + 1):
        client.pipeline([{"op": "acquire", "key": key, "endpoint": endpoint} for _ in range(depth)])
    batches = max(1, cfg["n"] // depth)
    lat = array("q", bytes(8 * batches))
    denied = errors = 0
    _handshake()
    clock = _clock
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = clock()
    stop_at = t0 + int(cfg.get("max_seconds", 1e6) * 1e9)
    done = batches
    for b in range(batches):
        s = clock()
        replies = client.pipeline([{"op": "acquire", "key": key, "endpoint": endpoint} for _ in range(depth)])
        e = clock()
        lat[b] = e - s
        for reply in replies:
            ok = _granted(reply)
            if ok is not True:
                if ok is None:
                    errors += 1
                else:
                    denied += 1
        if e > stop_at:
            done = b + 1
            break
    t1 = clock()
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    return _result(cfg, lat[:done], done * depth, denied, errors, t0, t1, r0, r1, cut=done < batches)


def _async_pipelined(cfg: dict) -> dict:
    """Run ``depth`` asyncio tasks sharing one ``AsyncClient`` (one pipelined connection), each
    doing its share of the checks one after another; latencies are per call."""
    import asyncio

    from ratelimitd_client import AsyncClient

    depth, key, endpoint = cfg["depth"], cfg["key"], cfg.get("endpoint", "rest")
    per_task = max(1, cfg["n"] // depth)
    n = per_task * depth
    lat = array("q", bytes(8 * n))
    counts = {"denied": 0, "errors": 0}

    done = [0] * depth
    stop_at = [0]

    async def task(client, index: int) -> None:
        clock, acquire, base = _clock, client.acquire, index * per_task
        for i in range(per_task):
            s = clock()
            permit = await acquire(key, endpoint)
            e = clock()
            lat[base + i] = e - s
            done[index] = i + 1
            if not permit.granted:
                counts["denied"] += 1
            if e > stop_at[0]:
                break

    async def run() -> dict:
        async with AsyncClient(socket=cfg["socket"]) as client:
            for _ in range(cfg.get("warmup", 0)):
                await client.acquire(key, endpoint)
            _handshake()  # blocks the loop while nothing else runs on it
            r0 = resource.getrusage(resource.RUSAGE_SELF)
            t0 = _clock()
            stop_at[0] = t0 + int(cfg.get("max_seconds", 1e6) * 1e9)
            await asyncio.gather(*(task(client, i) for i in range(depth)))
            t1 = _clock()
            r1 = resource.getrusage(resource.RUSAGE_SELF)
        kept = array("q", (v for i in range(depth) for v in lat[i * per_task : i * per_task + done[i]]))
        return _result(cfg, kept, sum(done), counts["denied"], counts["errors"], t0, t1, r0, r1, cut=sum(done) < n)

    return asyncio.run(run())


def _waiters(cfg: dict) -> dict:
    """Run ``threads`` clients that each re-queue a waiting acquire on one key until the deadline.

    Latencies are not per call here: ``out`` receives the CLOCK_MONOTONIC time at
    which each grant reached its client, for the harness to merge across processes.
    """
    threads, key, endpoint = cfg["threads"], cfg["key"], cfg.get("endpoint", "rest")
    wait, duration = cfg["wait"], cfg["duration"]
    use_client = cfg.get("client") == "rl-client"
    clients = []
    for _ in range(threads):
        if use_client:
            from ratelimitd_client import Client

            c = Client(socket=cfg["socket"])
            clients.append(lambda c=c: c.acquire(key, endpoint, wait=wait).granted)
        else:
            c = RawClient(cfg["socket"])
            clients.append(lambda c=c: _granted(c.request({"op": "acquire", "key": key, "endpoint": endpoint, "wait": wait})))
    stamps: list[list[int]] = [[] for _ in range(threads)]
    counts = {"denied": 0, "errors": 0}
    lock = threading.Lock()
    start = threading.Event()
    deadline = [0]

    def loop(index: int) -> None:
        acquire, mine = clients[index], stamps[index]
        start.wait()
        while _clock() < deadline[0]:
            ok = acquire()
            now = _clock()
            if ok is True:
                mine.append(now)
            else:
                with lock:
                    counts["errors" if ok is None else "denied"] += 1

    pool = [threading.Thread(target=loop, args=(i,), daemon=True) for i in range(threads)]
    for t in pool:
        t.start()
    _handshake()
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = _clock()
    deadline[0] = t0 + int(duration * 1e9)
    start.set()
    for t in pool:
        t.join(timeout=duration + wait + 30)
    t1 = _clock()
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    merged = array("q", sorted(s for mine in stamps for s in mine))
    return _result(cfg, merged, len(merged), counts["denied"], counts["errors"], t0, t1, r0, r1)


def _handshake() -> None:
    """Tell the harness this worker is ready, and block until it says go."""
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    if sys.stdin.readline().strip() != "go":
        raise SystemExit(0)  # the harness went away or gave up on this run


def _result(cfg: dict, lat: array, n: int, denied: int, errors: int, t0: int, t1: int, r0, r1, cut: bool = False) -> dict:
    """Write the latencies to ``cfg['out']`` and return the summary fields (``cut``: stopped at ``max_seconds``)."""
    with open(cfg["out"], "wb") as f:
        lat.tofile(f)
    cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
    return {"n": n, "denied": denied, "errors": errors, "t0": t0, "t1": t1, "cpu": cpu, "samples": len(lat), "cut": cut}


def main(argv: list[str]) -> None:
    """Run the worker described by the JSON config in ``argv[1]`` and print its result line."""
    cfg = json.loads(argv[1])
    mode = cfg.get("mode", "single")
    run = {"single": _one_at_a_time, "pipelined": _pipelined, "async": _async_pipelined, "waiters": _waiters}[mode]
    result = run(cfg)
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv)
