"""Floods against a real daemon: thousands of idle connections, a client that never reads, oversized frames, piles of waiters.

Each flood is bounded in count and time. Beside it a well-behaved client keeps
acquiring on a key of its own: every answer exact (remaining one less each
time) and within ``LATENCY`` (generous: it guards against a stalled daemon, it
is not a benchmark). Each test also says what the daemon must do to the
flooding client (refuse it, or disconnect it, within a bound) and that one
user's flood must not keep another user out: going over a limit costs only
the client that did.

The daemon runs with small limits (``LIMITS``) so that the floods reach them
quickly; a second daemon runs with few file descriptors, as a service may.
"""

from __future__ import annotations

import os
import pwd
import resource
import selectors
import shutil
import socket
import struct
import time
from typing import Iterator

import pytest
from ratelimitd_client import Client
from ratelimitd_client.wire import DEFAULT_MAX_FRAME, FrameDecoder, encode

from ratelimitd.server.app import Settings

from ..daemon import Daemon
from .hostile import frame
from .support import Closed, Raw, connect_as, log_tail, module_daemon

TABLE = """
[providers.own.endpoints]
"call" = ["calls"]

[providers.own.tiers.only]
calls = { rate = "1000000/1d" }

[keys.sentinel]
provider = "own"
tier = "only"

[keys.visitor]
provider = "own"
tier = "only"

[providers.slow.endpoints]
"call" = ["calls"]

[providers.slow.tiers.only]
calls = { rate = "1/1h" }

[keys.queue]
provider = "slow"
tier = "only"
"""

LATENCY = 2.0  # seconds the well-behaved clients may wait for any answer
FLOOD = 2000  # idle connections
MAX_CONNECTIONS = 1500
PER_UID = 1000
FIRST_FRAME = 1.0  # seconds a silent connection may stay
SWEEP_SLACK = 3.0  # how late after FIRST_FRAME the daemon may close a silent connection
MAX_UNREAD = 256 * 1024
WAITERS_PER_CONNECTION = 100
WAITERS_PER_UID = Settings.max_waiters_per_uid  # the default: no command-line option sets it
LIMITS = (
    "--socket-mode", "0666",  # so that another user's client can connect
    "--first-frame-timeout", str(FIRST_FRAME),
    "--max-unread", str(MAX_UNREAD),
    "--max-connections", str(MAX_CONNECTIONS),
    "--max-connections-per-uid", str(PER_UID),
    "--max-waiters-per-connection", str(WAITERS_PER_CONNECTION),
)

try:
    _NOBODY = pwd.getpwnam("nobody")
    OTHER_UID, OTHER_GID = _NOBODY.pw_uid, _NOBODY.pw_gid
except KeyError:
    OTHER_UID, OTHER_GID = 65534, 65534

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to connect as another user (CI runs as root)")


def raise_open_files(wanted: int) -> None:
    """Let this test process hold ``wanted`` descriptors (the flood's sockets), up to the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        pytest.skip(f"this process may open only {soft} files; the flood needs {wanted}")


@pytest.fixture(scope="module")
def flood_daemon() -> Iterator[Daemon]:
    raise_open_files(FLOOD + 500)
    with module_daemon(TABLE, *LIMITS, directory_mode=0o755) as daemon:
        yield daemon


class Good:
    """A well-behaved client acquiring on ``key``: every answer must be exact and come within ``LATENCY``."""

    def __init__(self, daemon: Daemon, key: str = "sentinel") -> None:
        self.daemon = daemon
        self.key = key
        self.client = Client(socket=daemon.socket, timeout=LATENCY + 3)
        self.remaining = self.client.acquire(key, "call").remaining
        self.slowest = 0.0

    def check(self, during: str) -> None:
        started = time.monotonic()
        try:
            permit = self.client.acquire(self.key, "call")
        except Exception as exc:
            raise AssertionError(f"the good client failed during {during}: {exc!r}\n{log_tail(self.daemon)}") from exc
        elapsed = time.monotonic() - started
        self.slowest = max(self.slowest, elapsed)
        self.remaining -= 1
        assert permit.granted and permit.remaining == self.remaining, (
            f"during {during} the good client got {permit}, expected remaining {self.remaining}"
        )
        assert elapsed < LATENCY, f"the good client waited {elapsed:.2f}s during {during}"

    def close(self) -> None:
        self.client.close()


@pytest.fixture
def good(flood_daemon: Daemon) -> Iterator[Good]:
    client = Good(flood_daemon)
    yield client
    client.close()


def visit(daemon: Daemon, during: str) -> float:
    """Acquire once on ``visitor`` as another user; return the seconds it took (at most ``LATENCY``)."""
    started = time.monotonic()
    try:
        sock = connect_as(daemon.socket, OTHER_UID, OTHER_GID, timeout=LATENCY)
        raw = Raw(None, sock=sock)
        raw.send(encode({"op": "acquire", "id": 1, "key": "visitor", "endpoint": "call"}))
        reply = raw.next(max(LATENCY - (time.monotonic() - started), 0.01))
        raw.close()
    except (OSError, Closed, TimeoutError) as exc:
        raise AssertionError(
            f"a client of uid {OTHER_UID} was not served within {LATENCY}s during {during}: {exc!r}\n{log_tail(daemon)}"
        ) from exc
    elapsed = time.monotonic() - started
    assert reply.get("granted") is True, f"a client of uid {OTHER_UID} got {reply} during {during}"
    assert elapsed < LATENCY, f"a client of uid {OTHER_UID} waited {elapsed:.2f}s during {during}"
    return elapsed


def open_flood(path: str, count: int, good: Good | None, every: int = 200) -> list[socket.socket]:
    """Open ``count`` connections that send nothing (checking ``good`` every ``every``); stop early if connect hangs.

    A connect is refused with EAGAIN while the daemon's backlog is full and is
    tried again; one that cannot complete within ``LATENCY`` means the daemon
    has stopped accepting, and the flood ends there.
    """
    flood: list[socket.socket] = []
    try:
        for index in range(count):
            sock = connect_within(path, LATENCY)
            if sock is None:
                break
            flood.append(sock)
            if good is not None and index % every == every - 1:
                good.check(f"a flood of {index + 1} idle connections")
    except BaseException:
        close_all(flood)
        raise
    return flood


def connect_within(path: str, timeout: float) -> socket.socket | None:
    """Return a non-blocking socket connected to ``path``, or None when the daemon does not take it within ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            sock.connect(path)
            return sock
        except BlockingIOError:  # the backlog is full: the daemon has not accepted the ones before yet
            sock.close()
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.001)


def outcomes(flood: list[socket.socket], within: float) -> tuple[int, int, list[socket.socket]]:
    """Wait up to ``within`` seconds for the daemon to close every connection of ``flood``.

    Returns ``(refused, closed, still_open)``: refused ones got a
    ``resource-limit`` error before their end, closed ones just ended.
    """
    selector = selectors.DefaultSelector()
    decoders = {}
    for sock in flood:
        selector.register(sock, selectors.EVENT_READ)
        decoders[sock] = (FrameDecoder(), [])
    refused = closed = 0
    deadline = time.monotonic() + within
    while decoders and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=max(deadline - time.monotonic(), 0.0)):
            sock = key.fileobj
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                continue
            except ConnectionResetError:
                data = b""
            decoder, seen = decoders[sock]
            if data:
                seen.extend(decoder.receive(data))
                continue
            selector.unregister(sock)
            del decoders[sock]
            if any(isinstance(message, dict) and message.get("error") == "resource-limit" for message in seen):
                refused += 1
            else:
                closed += 1
    selector.close()
    return refused, closed, list(decoders)


def close_all(sockets: list[socket.socket]) -> None:
    for sock in sockets:
        sock.close()


def test_thousands_of_idle_connections_are_refused_or_closed_while_a_good_client_is_served(flood_daemon, good):
    flood: list[socket.socket] = []
    try:
        flood = open_flood(flood_daemon.socket, FLOOD, good)
        assert len(flood) == FLOOD, (
            f"the daemon stopped accepting after {len(flood)} connections: connects block instead of being refused"
        )
        status = good.client.status()
        assert status["connections"] <= PER_UID, f"{status['connections']} connections of one user held (limit {PER_UID})"
        good.check(f"a flood of {FLOOD} idle connections")
        opened = time.monotonic()
        refused, closed, still_open = outcomes(flood, FIRST_FRAME + SWEEP_SLACK)
        waited = time.monotonic() - opened
        assert not still_open, (
            f"{len(still_open)} of {FLOOD} silent connections still open {waited:.1f}s after the flood "
            f"(first-frame timeout {FIRST_FRAME}s); {refused} were refused, {closed} closed"
        )
        assert refused > 0, f"none of {FLOOD} connections of one user was refused (limit {PER_UID} per user)"
        good.check("the end of the flood")
    finally:
        close_all(flood)
    # the flood's connections no longer count: a new client of the same user is accepted and served
    with Client(socket=flood_daemon.socket, timeout=LATENCY + 3) as again:
        assert again.acquire("sentinel", "call").remaining == good.remaining - 1
    assert good.slowest < LATENCY


@as_root
def test_one_users_flood_does_not_keep_another_user_out(flood_daemon, good):
    flood: list[socket.socket] = []
    try:
        flood = open_flood(flood_daemon.socket, PER_UID + 200, good)
        visit(flood_daemon, f"a flood of {len(flood)} connections by uid 0 (its limit is {PER_UID})")
        good.check("another user's visit")
    finally:
        close_all(flood)


class ScarceDaemon(Daemon):
    """A daemon started with ``RLIMIT_NOFILE`` of ``files`` (soft and hard), as a tightly configured service may run."""

    files = 512

    @property
    def args(self) -> list[str]:
        return ["prlimit", f"--nofile={self.files}:{self.files}", "--", *super().args]


@as_root
@pytest.mark.skipif(shutil.which("prlimit") is None, reason="needs prlimit (util-linux) to start the daemon with few files")
def test_a_daemon_short_of_file_descriptors_still_serves_other_users():
    """With 512 open files and the default connection limits (4096, 1024 per user), one user can take every descriptor.

    What must hold: the connections the daemon cannot take are refused (it keeps
    descriptors in reserve for that), the client already connected is served, and
    so is another user who connects during the flood.
    """
    raise_open_files(2000)
    with module_daemon(TABLE, "--socket-mode", "0666", directory_mode=0o755, kind=ScarceDaemon) as daemon:
        good = Good(daemon)
        flood: list[socket.socket] = []
        try:
            flood = open_flood(daemon.socket, 1500, good)
            good.check(f"a flood of {len(flood)} connections against {ScarceDaemon.files} descriptors")
            visit(daemon, f"a flood of {len(flood)} connections by uid 0 against {ScarceDaemon.files} descriptors")
            refused, closed, still_open = outcomes(flood, LATENCY)
            assert refused + closed + len(still_open) == len(flood)
            # connections past what the daemon can hold must hear so, not hang unaccepted
            accepted_at_most = ScarceDaemon.files
            assert len(still_open) <= accepted_at_most, (
                f"{len(still_open)} of {len(flood)} connections neither accepted-and-held nor refused after {LATENCY}s "
                f"({refused} refused, {closed} closed): the daemon ran out of descriptors and stopped accepting"
            )
        finally:
            close_all(flood)
            good.close()


def test_a_client_that_never_reads_is_disconnected(flood_daemon, good):
    """It sends ``status`` requests (about 1 KB of reply each) as fast as the socket takes them and reads nothing.

    The daemon must drop it once it has left more than ``--max-unread`` bytes of
    replies unread (here 256 KiB), within a few seconds, and keep serving others.
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(flood_daemon.socket)
    sock.setblocking(False)
    burst = encode({"op": "status", "id": 1}) * 200
    sent = 0
    started = time.monotonic()
    last_check = started
    stalled_since: float | None = None
    dropped = False
    try:
        while time.monotonic() - started < 10.0:
            try:
                sent += sock.send(burst)
                stalled_since = None
            except BlockingIOError:
                stalled_since = stalled_since or time.monotonic()
                _wait_writable(sock, 0.05)
            except (BrokenPipeError, ConnectionResetError):
                dropped = True
                break
            if time.monotonic() - last_check >= 0.1:
                good.check("a client that never reads")
                last_check = time.monotonic()
        elapsed = time.monotonic() - started
        stalled = 0.0 if stalled_since is None else time.monotonic() - stalled_since
        assert dropped, (
            f"after {elapsed:.1f}s the daemon still holds a client that never read a reply: it took {sent} bytes of "
            f"requests (about {sent // len(encode({'op': 'status', 'id': 1}))} status requests), then stopped reading "
            f"them for the last {stalled:.1f}s instead of dropping the client (--max-unread {MAX_UNREAD})"
        )
        good.check("after the client that never reads")
    finally:
        sock.close()


def _wait_writable(sock: socket.socket, timeout: float) -> None:
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_WRITE)
        selector.select(timeout)


@pytest.mark.parametrize("length", [DEFAULT_MAX_FRAME + 1, 2**31, 2**32 - 1])
def test_oversized_frames_in_a_loop_are_refused_each_time(flood_daemon, good, length):
    for index in range(100):
        raw = Raw(flood_daemon.socket, timeout=LATENCY)
        try:
            raw.send(struct.pack(">I", length) + b"x" * 16)
            frames = raw.to_eof(LATENCY)
        finally:
            raw.close()
        assert frames and frames[0].get("error") == "frame-too-large" and "id" not in frames[0], frames
        assert f"frame of {length} bytes exceeds the maximum of {DEFAULT_MAX_FRAME} bytes" in frames[0]["message"]
        if index % 10 == 9:
            good.check(f"{index + 1} oversized prefixes of {length} bytes")


def test_oversized_bodies_sent_in_full_only_close_their_connection(flood_daemon, good):
    body = b"\x00" * (4 * DEFAULT_MAX_FRAME)
    for index in range(20):
        raw = Raw(flood_daemon.socket, timeout=LATENCY)
        try:
            raw.send(frame(body))  # the daemon closes after the prefix: the rest may meet a reset
            frames = raw.to_eof(LATENCY)  # EOF or reset, within LATENCY
        finally:
            raw.close()
        assert all(message.get("error") == "frame-too-large" for message in frames), frames
        good.check(f"{index + 1} oversized bodies")


def test_a_pile_of_waiters_is_bounded_per_connection_and_per_user(flood_daemon, good):
    """Waiting acquires beyond ``--max-waiters-per-connection`` and ``--max-waiters-per-uid`` are refused at once."""
    count = WAITERS_PER_CONNECTION + 50
    connections = []
    try:
        waiting = []
        for number in range(-(-WAITERS_PER_UID // WAITERS_PER_CONNECTION) + 1):  # enough to reach the limit, and one more
            raw = Raw(flood_daemon.socket, timeout=LATENCY)
            connections.append(raw)
            requests = [{"op": "acquire", "id": i, "key": "queue", "endpoint": "call", "wait": 86400} for i in range(count)]
            raw.send(b"".join(encode(request) for request in requests) + encode({"op": "hello", "id": "sync"}))
            replies = raw.until(lambda message: message.get("id") == "sync", LATENCY)[:-1]
            others = [reply for reply in replies if reply.get("error") != "resource-limit"]
            assert all(reply.get("granted") is True for reply in others), others  # the hour's one grant, no other answer
            waiting.append(count - len(replies))  # the requests not answered at once wait
            good.check(f"{number + 1} connections of {count} waiting acquires")
        assert all(queued <= WAITERS_PER_CONNECTION for queued in waiting), f"waiters queued per connection: {waiting}"
        assert waiting[-1] == 0, (
            f"the user already had {sum(waiting[:-1])} waiters (limit {WAITERS_PER_UID}), yet a new connection "
            f"queued {waiting[-1]} more"
        )
        assert sum(waiting) == WAITERS_PER_UID, f"{sum(waiting)} waiters of one user queued (limit {WAITERS_PER_UID})"
        assert good.client.status()["waiters"] == sum(waiting)
    finally:
        for raw in connections:
            raw.close()
    deadline = time.monotonic() + LATENCY
    while good.client.status()["waiters"] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert good.client.status()["waiters"] == 0, "the closed connections' waiters were not dropped"
