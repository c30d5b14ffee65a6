"""A real daemon under hostile frames: it never dies, and a well-behaved client beside them gets exact answers.

One raw socket sends what hypothesis makes (random bytes, CBOR of wrong
shapes, request maps with wrong fields, hand-made byte tricks, mutated valid
frames, oversized prefixes) on the key ``target``; after every hostile move a
real ``ratelimitd_client.Client`` acquires on the key ``sentinel``, which no
hostile frame names, and its remaining count must go down by exactly one,
answered within ``LATENCY``. A second property reads the hostile client's own
replies: every one a known error code, never ``internal``, the id echoed.

One daemon serves the whole module. A failure here may have killed or stalled
it, so shrinking (which replays smaller examples against the same daemon) is
off: hypothesis reports the example as found, and the tests at the end hold
the minimal reproductions of what these properties found.
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass
from typing import Any, Iterator

import cbor2
import pytest
from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st
from ratelimitd_client import Client
from ratelimitd_client.protocol import ERROR_CODES
from ratelimitd_client.wire import DEFAULT_MAX_FRAME, decode_body, encode

from ..daemon import Daemon
from .hostile import DECIMAL_BOMB, BigInt, frame, frame_bodies, mutated, valid_requests
from .support import Closed, Raw, log_tail, module_daemon, revive, show

TABLE = """
[providers.api.endpoints]
"rest" = ["rest"]
"heavy" = ["rest", "heavy"]
"ws" = ["ws"]
"paid" = ["rest", "premium"]

[providers.api.tiers.basic]
rest = { rate = "5/1h" }
heavy = { rate = ["2/1h", "3/1d"] }
ws = { concurrent = 2, when_full = "evict-oldest" }

[providers.api.tiers.pro]
rest = { rate = "50/1h" }
heavy = { rate = "20/1h" }
ws = { concurrent = 5 }
premium = { rate = "1/1s" }

[keys.target]
provider = "api"
tier = "basic"

[providers.own.endpoints]
"call" = ["calls"]

[providers.own.tiers.only]
calls = { rate = "1000000/1d" }

[keys.sentinel]
provider = "own"
tier = "only"
"""

# The well-behaved client's answers must come this fast whatever the hostile one does
# (generous: this guards against a stalled daemon, it is not a benchmark).
LATENCY = 2.0

FUZZ = settings(
    max_examples=200,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # no shrinking: see the module docstring
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


@dataclass(frozen=True)
class Frame:
    """A body sent behind a correct length prefix on the example's hostile connection."""

    body: bytes


@dataclass(frozen=True)
class Stream:
    """Raw bytes (any framing, or none) sent on a connection of their own, which is then half-closed."""

    data: bytes


_VALID_FRAMES = valid_requests().map(cbor2.dumps).map(frame)
MOVES = st.one_of(
    frame_bodies().map(Frame),
    frame_bodies().map(Frame),
    st.binary(max_size=300).map(Stream),  # random bytes, framing included
    mutated(st.lists(_VALID_FRAMES, min_size=1, max_size=4).map(b"".join)).map(Stream),  # framing broken too
    _VALID_FRAMES.flatmap(lambda data: st.integers(1, len(data) - 1).map(lambda n: Stream(data[:n]))),  # cut short
    st.tuples(st.integers(DEFAULT_MAX_FRAME + 1, 2**32 - 1), st.binary(max_size=64)).map(
        lambda pair: Stream(struct.pack(">I", pair[0]) + pair[1])  # over the maximum
    ),
)


@pytest.fixture(scope="module")
def fuzzed_daemon() -> Iterator[Daemon]:
    with module_daemon(TABLE) as daemon:
        yield daemon


class Lab:
    """The daemon, the well-behaved client on ``sentinel``, what that client must be answered next, the last hostile move.

    The first failure is kept: hypothesis runs a failing example once more to
    report it, and that run finds the daemon already dead or stalled; it then
    reports the first failure again rather than a misleading one of its own.
    """

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.good = Client(socket=daemon.socket, timeout=LATENCY + 3)
        self.remaining = self.good.acquire("sentinel", "call").remaining  # where this test starts
        self.sent = 0
        self.last: Any = None
        self.failure: str | None = None

    def begin(self) -> None:
        """Start an example: moves are counted from one again."""
        self.sent = 0
        self.last = None

    def sending(self, move: Any) -> None:
        """Note the hostile move about to be sent, for failure messages."""
        self.sent += 1
        self.last = move

    def after(self) -> str:
        return f"after hostile move {self.sent} of the example ({show(self.last)})"

    def fail(self, message: str) -> AssertionError:
        """Return the error for this failure (or for the first one, which this may only be a consequence of)."""
        if self.failure is None:
            self.failure = message
        return AssertionError(self.failure)

    def connect(self) -> Raw:
        """Open a raw connection; a daemon that no longer accepts one is reported with what it logged."""
        if self.failure is not None:
            raise AssertionError(self.failure)
        try:
            return Raw(self.daemon.socket)
        except OSError as exc:
            status = self.daemon.process.poll() if self.daemon.process else None
            raise self.fail(
                f"the daemon accepts no connection {self.after()}: {exc!r}; exit status {status}\n{log_tail(self.daemon)}"
            ) from exc

    def check_good(self) -> None:
        """Acquire once on ``sentinel``: granted, remaining exactly one less, within ``LATENCY``; the daemon alive."""
        if self.failure is not None:
            raise AssertionError(self.failure)
        if self.daemon.process is None or self.daemon.process.poll() is not None:
            raise self.fail(f"the daemon died {self.after()}:\n{log_tail(self.daemon)}")
        started = time.monotonic()
        try:
            permit = self.good.acquire("sentinel", "call")
        except Exception as exc:
            raise self.fail(f"the good client failed {self.after()}: {exc!r}\n{log_tail(self.daemon)}") from exc
        elapsed = time.monotonic() - started
        self.remaining -= 1
        if not (permit.granted and permit.remaining == self.remaining):
            raise self.fail(f"{self.after()} the good client got {permit}, expected remaining {self.remaining}")
        if elapsed >= LATENCY:
            raise self.fail(f"the good client waited {elapsed:.2f}s {self.after()}")


@pytest.fixture
def lab(fuzzed_daemon: Daemon) -> Iterator[Lab]:
    lab = Lab(revive(fuzzed_daemon))
    yield lab
    lab.good.close()


class Hostile:
    """The example's hostile connection: sends a move, then a ``hello`` to learn that everything before it was read."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.raw: Raw | None = None
        self.syncs = 0

    def frame(self, body: bytes, timeout: float = LATENCY) -> tuple[list[Any], bool]:
        """Send one framed body and return the frames read up to the sync reply, and whether the daemon closed.

        A reply that does not come in time is not this method's concern (the
        caller's good client shows a stalled daemon); it returns what it read.
        """
        if self.raw is None or self.raw.closed:
            self.raw = self.lab.connect()
        raw = self.raw
        self.syncs += 1
        sync = f"sync-{self.syncs}"
        raw.send(frame(body) + encode({"op": "hello", "id": sync}))
        try:
            frames = raw.until(lambda message: isinstance(message, dict) and message.get("id") == sync, timeout)
            return frames[:-1], False
        except Closed as exc:
            return exc.args[1], True
        except TimeoutError:
            raw.close()
            self.raw = None
            return [], False

    def close(self) -> None:
        if self.raw is not None:
            self.raw.close()


def stream(lab: Lab, data: bytes, timeout: float = LATENCY) -> tuple[list[Any], bool]:
    """Send ``data`` on a connection of its own, half-close it; return the frames read and whether the daemon closed."""
    raw = lab.connect()
    try:
        raw.send(data)
        raw.shutdown()
        try:
            return raw.to_eof(timeout), True
        except TimeoutError:
            return [], False
    finally:
        raw.close()


@FUZZ
@given(moves=st.lists(MOVES, min_size=1, max_size=4))
def test_the_daemon_survives_hostile_frames_and_serves_a_good_client_exactly(lab, moves):
    lab.begin()
    hostile = Hostile(lab)
    try:
        for move in moves:
            lab.sending(move)
            if isinstance(move, Frame):
                hostile.frame(move.body)
            else:
                stream(lab, move.data)
            lab.check_good()
    finally:
        hostile.close()


def _errors_are_precise(frames: list[Any], move: Any) -> None:
    for message in frames:
        assert type(message) is dict, f"the daemon sent a {type(message).__name__}, not a map, for {show(move)}"
        code = message.get("error")
        if code is not None:
            assert code in ERROR_CODES, f"unknown error code {code!r} for {show(move)}"
            assert code != "internal", f"'internal' instead of a precise error for {show(move)}: {show(message)}"


def _immediate(message: dict) -> bool:
    """Report whether a request map must be answered before the next frame is read (it does not wait)."""
    return message.get("op") != "reload" and not (message.get("op") == "acquire" and message.get("wait") is not None)


def _oversized(data: bytes) -> bool:
    """Report whether walking ``data``'s length prefixes meets one over the daemon's maximum."""
    pos = 0
    while len(data) - pos >= 4:
        (length,) = struct.unpack_from(">I", data, pos)
        if length > DEFAULT_MAX_FRAME:
            return True
        pos += 4 + length
    return False


def _check_frame_replies(move: Frame, frames: list[Any], closed: bool) -> None:
    """Check the replies to one framed hostile body (``frames``: what came before the sync reply)."""
    errors = {message.get("error") for message in frames}
    if len(move.body) > DEFAULT_MAX_FRAME:
        assert closed and "frame-too-large" in errors, "an oversized frame is refused and the connection closed"
        return
    assert not closed or "resource-limit" in errors, "a frame within the maximum never closes the connection"
    message = decode_body(move.body)
    rid = message.get("id") if type(message) is dict else None
    if type(message) is not dict or (rid is not None and type(rid) not in (int, str)):
        assert any(reply.get("error") == "bad-request" and "id" not in reply for reply in frames), (
            "no id-less bad-request for a frame that is not a request map with a readable id"
        )
    elif rid is not None and _immediate(message):
        assert any(type(reply.get("id")) is type(rid) and reply.get("id") == rid for reply in frames), (
            f"no reply with id {show(rid, 60)}"
        )


@FUZZ
@given(moves=st.lists(MOVES, min_size=1, max_size=4))
def test_every_hostile_frame_gets_a_precise_answer(lab, moves):
    lab.begin()
    hostile = Hostile(lab)
    try:
        for move in moves:
            lab.sending(move)
            if isinstance(move, Stream):
                frames, closed = stream(lab, move.data)
                note(f"{show(move)} -> {show(frames, 500)} closed={closed}")
                assert closed, "the daemon kept a half-closed connection open"
                _errors_are_precise(frames, move)
                if _oversized(move.data):
                    assert any(reply.get("error") == "frame-too-large" and "id" not in reply for reply in frames)
            else:
                frames, closed = hostile.frame(move.body)
                note(f"{show(move)} -> {show(frames, 500)} closed={closed}")
                _errors_are_precise(frames, move)
                _check_frame_replies(move, frames, closed)
            lab.check_good()
    finally:
        hostile.close()


# -- minimal reproductions of what the properties above found -------------------------------------


def test_what_the_hostile_frames_left_is_persisted_and_restored(lab):
    """Odd amounts that reached the engine (tiny and long decimals) are written, and a clean restart restores them."""
    status = lab.good.status()
    assert status["persistence"]["failures"] == 0 and status["persistence"]["last_error"] is None, status["persistence"]
    before = lab.good.show("target")["buckets"]
    lab.good.close()
    assert lab.daemon.stop() == 0, log_tail(lab.daemon)
    lab.daemon.start()
    with Client(socket=lab.daemon.socket, timeout=LATENCY + 3) as again:
        after = again.show("target")["buckets"]
        assert again.acquire("sentinel", "call").remaining == lab.remaining - 1
    # buckets a provider report never touched (no hold or stricter count that could end meanwhile) come back exactly
    # (feedback counters are diagnostics and start anew after a restart; holds are restored)
    untouched = {b["name"] for b in before if not b["feedback"].get("reports")}

    def used(buckets: list[dict]) -> dict[str, list]:
        return {b["name"]: [rate["used"] for rate in b["rates"]] for b in buckets if b["name"] in untouched}

    assert used(after) == used(before)


# -- minimal reproductions of what the properties above found -------------------------------------


def _one(lab: Lab, message: Any, timeout: float = LATENCY) -> tuple[list[Any], float]:
    """Send one request on a new connection; return the frames before it closes or ``timeout`` runs out, and the time taken."""
    lab.sending(message)
    raw = lab.connect()
    started = time.monotonic()
    raw.send(frame(cbor2.dumps(message)))
    frames: list[Any] = []
    try:
        frames.append(raw.next(timeout))
    except (Closed, TimeoutError):
        pass
    raw.close()
    return frames, time.monotonic() - started


def test_an_op_that_is_a_huge_integer_gets_unknown_op_and_the_daemon_lives(lab):
    """Found by the fuzz (fixed in fcd06f9): ``{"op": 10**5000, "id": 1}`` (a 2 KB frame) killed the daemon.

    ``Server.handle`` formatted ``{op!r}`` for ``unknown-op``; repr of an int over 4300
    digits raises ValueError; the ``internal`` fallback formatted ``{op!r}`` again, and
    that second ValueError escaped the connection task and the server's nursery.
    """
    frames, _ = _one(lab, {"op": BigInt(10**5000), "id": 1})
    lab.check_good()
    assert frames and frames[0].get("error") in ("unknown-op", "bad-request") and frames[0].get("id") == 1, frames


@pytest.mark.parametrize("field", ["key", "endpoint", "cost", "wait"])
def test_a_huge_integer_field_gets_a_precise_error(lab, field):
    """Found by the fuzz (fixed in fcd06f9): a field holding an int over 4300 digits was answered ``internal``."""
    message = {"op": "acquire", "id": 1, "key": "target", "endpoint": "rest", field: BigInt(10**5000)}
    frames, _ = _one(lab, message)
    lab.check_good()
    assert frames and frames[0].get("error") in ("bad-request", "cost-too-large"), frames


@pytest.mark.parametrize(
    "message",
    [
        {"op": "acquire", "id": 1, "key": "target", "endpoint": "rest", "wait": BigInt(2**1100)},
        {"op": "acquire", "id": 1, "key": "target", "endpoint": "rest", "reserve": BigInt(-(2**1100))},
        {"op": "report", "id": 1, "key": "target", "endpoint": "rest", "status": 429, "retry_after": BigInt(2**1100)},
    ],
    ids=["wait", "reserve", "retry_after"],
)
def test_a_duration_too_large_for_a_float_gets_a_precise_error(lab, message):
    """Found by the fuzz (fixed in fcd06f9): ``float()`` of an int over ~1e308 raised OverflowError -> ``internal``."""
    frames, _ = _one(lab, message)
    lab.check_good()
    assert frames and frames[0].get("error") == "bad-request", frames


def test_a_status_of_a_huge_integer_gets_a_precise_error(lab):
    """Found by the fuzz (fixed in fcd06f9): ``report`` with ``status`` = 10**5000 was answered ``internal``."""
    frames, _ = _one(lab, {"op": "report", "id": 1, "key": "target", "endpoint": "rest", "status": BigInt(10**5000)})
    lab.check_good()
    assert frames and frames[0].get("error") == "bad-request", frames


@pytest.mark.parametrize("field", ["cost", "remaining"])
def test_a_decimal_with_a_huge_exponent_is_refused_at_once(lab, field):
    """Found by the fuzz (fixed in fcd06f9): a cost of ``Decimal("1E+1000000")`` (tag 4, 12 bytes) stalled the daemon ~20 s.

    ``amounts.to_amount`` -> ``normalize`` called ``int(value)`` on it, building a
    million-digit integer; every client waited meanwhile (1E+10000000: hours).
    """
    message = {"op": "acquire", "id": 1, "key": "target", "endpoint": "rest", "cost": DECIMAL_BOMB}
    if field == "remaining":
        message = {"op": "report", "id": 1, "key": "target", "endpoint": "rest", "status": 200, "remaining": DECIMAL_BOMB}
    frames, elapsed = _one(lab, message)
    assert elapsed < LATENCY and frames, f"no answer within {LATENCY}s (waited {elapsed:.1f}s)"
    assert frames[0].get("error") in ("bad-request", "cost-too-large"), frames
    lab.check_good()


def test_a_reload_path_with_a_nul_byte_is_refused_and_the_daemon_lives(lab):
    """Found by the fuzz (fixed in fcd06f9): ``{"op": "reload", "path": "a\\x00b"}`` killed the daemon.

    ``open()`` raised ValueError (embedded null byte), not the ``ConfigError`` that
    ``ops.reload``'s task caught; it escaped into the server's nursery.
    """
    frames, _ = _one(lab, {"op": "reload", "id": 1, "path": "a\x00b"})
    lab.check_good()
    assert frames and frames[0].get("error") in ("invalid-table", "bad-request"), frames


@pytest.mark.parametrize("priority", [1001, -1001, BigInt(2**64)])
def test_an_integer_priority_out_of_range_is_refused(lab, priority):
    """Found by the fuzz (fixed in fcd06f9): ``priority`` was range-checked (-1000..1000) only when not an int."""
    frames, _ = _one(lab, {"op": "acquire", "id": 1, "key": "target", "endpoint": "rest", "priority": priority})
    lab.check_good()
    assert frames and frames[0].get("error") == "bad-request", frames


def test_a_provider_limit_below_a_waiting_cost_leaves_the_daemon_running(lab):
    """Found by the engine model (fixed in fcd06f9): a report lowering a limit below a waiter's cost ended the daemon.

    The limiter raised ValueError for the waiter's cost in ``Engine.service``,
    that is in the scheduler task, at its next wake (here: another waiter).
    """
    lab.sending("reset target, fill rest, a waiter of cost 2, report limit 1, another waiter")
    raw = lab.connect()
    try:
        requests = [
            {"op": "reset", "id": 1, "key": "target"},
            {"op": "acquire", "id": 2, "key": "target", "endpoint": "rest", "cost": 5},
            {"op": "acquire", "id": 3, "key": "target", "endpoint": "rest", "cost": 2, "wait": 86400},
            {"op": "report", "id": 4, "key": "target", "endpoint": "rest", "status": 200, "limit": 1},
            {"op": "acquire", "id": 5, "key": "target", "endpoint": "heavy", "wait": 86400},
            {"op": "hello", "id": 6},
        ]
        raw.send(b"".join(encode(request) for request in requests))
        frames = raw.until(lambda message: message.get("id") == 6, LATENCY)
    finally:
        raw.close()
    replies = {message.get("id"): message for message in frames}
    assert replies[2]["granted"] is True and 3 not in replies and 5 not in replies, f"both must wait: {frames}"
    assert "applied" in replies[4], frames
    lab.check_good()
