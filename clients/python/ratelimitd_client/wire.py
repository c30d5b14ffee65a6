"""The wire codec: 4-byte big-endian length, then one CBOR map. Sans-I/O.

This module is the only place that knows the framing. The daemon and every
Python client use it; it depends on the standard library and cbor2 only, so
the client package installs without trio or sqlite-utils. It never touches a
socket: bytes go in through ``FrameDecoder.receive``, messages come out, and
``encode`` turns a message back into bytes.
"""

from __future__ import annotations

import struct
from io import BytesIO
from typing import Any

import cbor2
from cbor2 import CBORDecoder

__all__ = [
    "HEADER_SIZE",
    "DEFAULT_MAX_FRAME",
    "DEFAULT_MAX_DEPTH",
    "BadFrame",
    "FrameTooLarge",
    "FrameDecoder",
    "encode",
    "decode_body",
]

_HEADER = struct.Struct(">I")
HEADER_SIZE = _HEADER.size

# A request is a map of a few short fields (a few hundred bytes at most); 64 KiB
# leaves room for batch requests while keeping what one bad client can make the
# daemon buffer small. Replies of `show`/`status` for many keys can be larger, so
# clients decode with a higher limit (see ``CLIENT_MAX_FRAME`` in the client).
DEFAULT_MAX_FRAME = 64 * 1024

# Requests nest two or three levels; a deep nesting is an attack on the decoder.
DEFAULT_MAX_DEPTH = 16

_pack = _HEADER.pack
_unpack_from = _HEADER.unpack_from
_dumps = cbor2.dumps


class FrameTooLarge(Exception):
    """Raised when a length prefix announces a frame over the decoder's maximum.

    The stream cannot be resynchronised after this (the body is not read), so
    the connection must be closed after replying.
    """

    def __init__(self, length: int, maximum: int) -> None:
        super().__init__(f"frame of {length} bytes exceeds the maximum of {maximum} bytes")
        self.length = length
        self.maximum = maximum


class BadFrame:
    """A frame whose length was valid but whose body is not one decodable CBOR item.

    Returned in place of a message, so that the caller can answer it with an
    error and carry on with the frames after it: the framing is still intact.
    """

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __repr__(self) -> str:
        return f"BadFrame({self.reason!r})"


def encode(message: Any) -> bytes:
    """Return the frame for ``message``: its length prefix followed by its CBOR body."""
    body = _dumps(message)
    return _pack(len(body)) + body


def decode_body(body: bytes | bytearray | memoryview, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """Return the message of one frame body, or a ``BadFrame`` saying why it is not one.

    The body must be exactly one CBOR item: bytes after it are an error (they
    would be a second message the sender meant, or garbage). Any failure of the
    decoder on untrusted bytes is the sender's fault, so it is reported as a
    value rather than raised.
    """
    stream = BytesIO(body)
    try:
        message = CBORDecoder(stream, max_depth=max_depth).decode()
    except (cbor2.CBORError, ValueError, TypeError, OverflowError, RecursionError, MemoryError) as exc:
        return BadFrame(f"malformed CBOR: {exc}")
    if stream.tell() != len(body):
        return BadFrame(f"malformed CBOR: {len(body) - stream.tell()} bytes after the frame's one item")
    return message


class FrameDecoder:
    """Turns a byte stream into messages, buffering at most one partial frame.

    ``receive(data)`` returns every message completed by ``data`` (possibly none),
    in order. A frame whose body does not decode yields a ``BadFrame`` and the
    decoder carries on. A length prefix over ``max_frame`` raises ``FrameTooLarge``
    before any of that frame's body is buffered.
    """

    __slots__ = ("_buffer", "max_frame", "max_depth")

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME, max_depth: int = DEFAULT_MAX_DEPTH) -> None:
        self._buffer = bytearray()
        self.max_frame = max_frame
        self.max_depth = max_depth

    @property
    def buffered(self) -> int:
        """Report how many bytes of an incomplete frame are waiting for the rest."""
        return len(self._buffer)

    def receive(self, data: bytes) -> list[Any]:
        """Add ``data`` to the stream and return the messages it completes.

        Costs time in proportion to ``data`` (amortised), however the sender cuts
        its frames: a frame trickled in one byte at a time is not re-copied per byte.
        """
        buffer = self._buffer
        if not buffer:
            messages, used = self._frames(data)
            if used < len(data):
                buffer += data[used:]
            return messages
        buffer += data
        messages, used = self._frames(buffer)
        if used:
            del buffer[:used]
        return messages

    def _frames(self, data: bytes | bytearray) -> tuple[list[Any], int]:
        """Return the messages of the complete frames at the start of ``data`` and how many bytes they took."""
        size = len(data)
        pos = 0
        messages: list[Any] = []
        max_frame = self.max_frame
        max_depth = self.max_depth
        while size - pos >= HEADER_SIZE:
            (length,) = _unpack_from(data, pos)
            if length > max_frame:
                self._buffer = bytearray()
                raise FrameTooLarge(length, max_frame)
            end = pos + HEADER_SIZE + length
            if end > size:
                break
            messages.append(decode_body(data[pos + HEADER_SIZE : end], max_depth))
            pos = end
        return messages, pos
