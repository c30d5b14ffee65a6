"""The wire codec on hostile bytes: random and mutated streams, fed to ``FrameDecoder.receive`` in random pieces.

A reference framer reads the whole stream at once; the decoder, fed the same
bytes in pieces, must agree with it: the same messages in the same order, a
``BadFrame`` exactly where a body does not decode, ``FrameTooLarge`` exactly
when a length prefix over the maximum has arrived and nothing else ever
raised, and never more buffered than the one frame not yet complete.
"""

from __future__ import annotations

import io

import struct
from decimal import Decimal
from typing import Any

import cbor2
from hypothesis import given, settings
from hypothesis import strategies as st
from ratelimitd_client.wire import DEFAULT_MAX_DEPTH, DEFAULT_MAX_FRAME, HEADER_SIZE, BadFrame, FrameDecoder, FrameTooLarge

from .hostile import frame, frame_bodies, mutated, valid_requests

CHECKS = settings(max_examples=300, deadline=None)

MAX_FRAMES = st.sampled_from([0, 1, 7, 64, 1000, DEFAULT_MAX_FRAME, 2**32 - 1])

_BAD = object()  # the reference's "this body does not decode"


def reference(stream: bytes, max_frame: int) -> tuple[list[tuple[int, bytes]], tuple[int, int] | None]:
    """Return the complete frames of ``stream`` as ``(end offset, body)``, and where a prefix over ``max_frame`` is.

    Framing stops at the first length prefix over the maximum; it is reported as
    ``(offset at which its 4 bytes are complete, announced length)``, or None.
    """
    frames = []
    pos = 0
    while len(stream) - pos >= HEADER_SIZE:
        (length,) = struct.unpack_from(">I", stream, pos)
        if length > max_frame:
            return frames, (pos + HEADER_SIZE, length)
        end = pos + HEADER_SIZE + length
        if end > len(stream):
            break
        frames.append((end, stream[pos + HEADER_SIZE : end]))
        pos = end
    return frames, None


def expected(body: bytes) -> Any:
    """Return the one CBOR item ``body`` holds, or ``_BAD`` when it holds not exactly one (``BadFrame`` then)."""
    stream = io.BytesIO(body)
    try:
        item = cbor2.CBORDecoder(stream, max_depth=DEFAULT_MAX_DEPTH).decode()
    except Exception:
        return _BAD
    return item if stream.tell() == len(body) else _BAD


def same(a: Any, b: Any) -> bool:
    """Report whether two decoded values are the same (NaN included), by their encodings when they have one."""
    try:
        return cbor2.dumps(a) == cbor2.dumps(b)
    except Exception:  # a value cbor2 does not encode back (a cyclic shared reference…): compare types
        return type(a) is type(b)


def pieces(stream: bytes, cuts: list[int]) -> list[bytes]:
    """Return ``stream`` cut at ``cuts`` (repeated cuts give empty pieces)."""
    points = [0, *sorted(cuts), len(stream)]
    return [stream[a:b] for a, b in zip(points, points[1:])]


def assert_messages(got: list[Any], bodies: list[bytes]) -> None:
    assert len(got) == len(bodies), f"{len(got)} messages out of {len(bodies)} complete frames"
    for index, (message, body) in enumerate(zip(got, bodies)):
        want = expected(body)
        if want is _BAD:
            assert isinstance(message, BadFrame), f"frame {index}: body {body[:40].hex()} does not decode, got {message!r:.80}"
        else:
            assert not isinstance(message, BadFrame), f"frame {index}: body {body[:40].hex()} decodes, got {message!r}"
            assert same(message, want), f"frame {index}: {message!r:.80} != {want!r:.80}"


def agree(stream: bytes, cuts: list[int], max_frame: int) -> None:
    """Feed ``stream`` in pieces and check the decoder against ``reference`` after every piece."""
    frames, oversized = reference(stream, max_frame)
    decoder = FrameDecoder(max_frame)
    got: list[Any] = []
    received = 0
    for piece in pieces(stream, cuts):
        before = received
        received += len(piece)
        try:
            got.extend(decoder.receive(piece))
        except FrameTooLarge as exc:
            assert oversized is not None, f"FrameTooLarge({exc}) but no length prefix over {max_frame} arrived"
            assert before < oversized[0] <= received, "FrameTooLarge raised by a piece that did not complete the prefix"
            assert (exc.length, exc.maximum) == (oversized[1], max_frame)
            assert decoder.buffered == 0, "nothing of an oversized frame is kept"
            # what earlier pieces completed came out; frames completed by this piece are lost with the stream
            assert_messages(got, [body for end, body in frames if end <= before])
            return
        done = [(end, body) for end, body in frames if end <= received]
        assert_messages(got, [body for _, body in done])
        consumed = done[-1][0] if done else 0
        assert decoder.buffered == received - consumed, "the buffer holds exactly what follows the last complete frame"
        assert decoder.buffered < HEADER_SIZE + max_frame, "never more than one partial frame is buffered"
    assert oversized is None or oversized[0] > len(stream), "a length prefix over the maximum arrived and nothing was raised"


_STREAMS = st.one_of(
    st.binary(max_size=3000),  # random bytes: mostly huge length prefixes
    st.lists(st.binary(max_size=80).map(frame), max_size=8).map(b"".join),  # framed random bodies
    st.lists(frame_bodies().map(frame), max_size=5).map(b"".join),  # framed hostile bodies
    mutated(st.lists(valid_requests().map(cbor2.dumps).map(frame), min_size=1, max_size=5).map(b"".join)),
)


@CHECKS
@given(stream=_STREAMS, max_frame=MAX_FRAMES, data=st.data())
def test_any_stream_in_any_pieces_agrees_with_the_reference_framer(stream, max_frame, data):
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=12), label="cuts")
    agree(stream, cuts, max_frame)


@CHECKS
@given(
    lengths=st.lists(st.integers(0, 70_000), min_size=1, max_size=4),
    max_frame=st.integers(0, 70_000),
    data=st.data(),
)
def test_length_prefixes_around_the_maximum(lengths, max_frame, data):
    """Bodies of random bytes whose lengths fall on both sides of the maximum: raised exactly at the first over it."""
    stream = b"".join(frame(bytes(length)) for length in lengths)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=6), label="cuts")
    agree(stream, cuts, max_frame)


def test_an_oversized_prefix_raises_before_its_body_arrives():
    decoder = FrameDecoder(100)
    assert decoder.receive(struct.pack(">I", 101)[:3]) == []
    try:
        decoder.receive(struct.pack(">I", 101)[3:])
    except FrameTooLarge as exc:
        assert (exc.length, exc.maximum) == (101, 100)
        assert "frame of 101 bytes exceeds the maximum of 100 bytes" in str(exc)
    else:
        raise AssertionError("a 101-byte prefix on a 100-byte decoder was accepted")
    assert decoder.buffered == 0


# Bodies that are never one decodable item: empty, a break or a reserved head where an
# item starts, a valid item cut short (CBOR is prefix-free), nesting past the maximum.
_GARBAGE = st.one_of(
    st.just(b""),
    st.binary(max_size=20).map(lambda tail: b"\xff" + tail),
    st.binary(max_size=20).map(lambda tail: b"\x1c" + tail),
    valid_requests().map(cbor2.dumps).flatmap(lambda body: st.integers(1, len(body) - 1).map(lambda n: body[:n])),
    st.integers(DEFAULT_MAX_DEPTH + 1, 100).map(lambda depth: b"\x81" * depth + b"\x00"),
)
_MESSAGES = st.dictionaries(
    st.text(max_size=8),
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.text(max_size=20),
        st.binary(max_size=10),
        st.floats(allow_nan=False),
        st.sampled_from([Decimal("0.1"), Decimal("-2.5"), Decimal("1E-20")]),
        st.lists(st.integers(), max_size=3),
    ),
    max_size=5,
)


@CHECKS
@given(items=st.lists(st.one_of(_MESSAGES.map(lambda m: ("message", m)), _GARBAGE.map(lambda g: ("garbage", g))), max_size=12), data=st.data())
def test_valid_frames_between_garbage_frames_all_come_out_in_order(items, data):
    stream = b"".join(frame(cbor2.dumps(value)) if kind == "message" else frame(value) for kind, value in items)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=12), label="cuts")
    decoder = FrameDecoder()
    got = []
    for piece in pieces(stream, cuts):
        got.extend(decoder.receive(piece))
        assert decoder.buffered < HEADER_SIZE + DEFAULT_MAX_FRAME
    assert decoder.buffered == 0
    assert len(got) == len(items)
    for index, ((kind, value), message) in enumerate(zip(items, got)):
        if kind == "message":
            assert type(message) is dict and message == value, f"frame {index}"
        else:
            assert isinstance(message, BadFrame) and message.reason.startswith("malformed CBOR"), f"frame {index}: {message!r:.80}"


def test_a_body_with_bytes_after_its_item_is_a_bad_frame():
    """A body is exactly one CBOR item (docs/protocol.md): bytes after it make a bad frame.

    Found by this fuzz (fixed in fcd06f9): ``decode_body(b"\\x01\\x02")`` returned 1,
    and a valid request with junk after it was carried out.
    """
    request = cbor2.dumps({"op": "hello", "id": 1})
    for body in (b"\x01\x02", request + b"\x00", request + request):
        assert isinstance(FrameDecoder().receive(frame(body))[0], BadFrame), body.hex()
