"""The golden frames decode to their meaning and their meaning encodes to the same bytes."""

from __future__ import annotations

import struct
from decimal import Decimal
from typing import Any

import pytest

from ratelimitd_client import wire

from .fake_daemon import vectors

VECTORS = vectors()
IDS = [f"{v['kind']}-{v['name']}" for v in VECTORS]


def same(a: Any, b: Any, where: str = "message") -> None:
    """Assert that ``a`` and ``b`` are equal with the same types throughout (1, 1.0, True, Decimal(1) differ)."""
    assert type(a) is type(b), f"{where}: {a!r} ({type(a).__name__}) vs {b!r} ({type(b).__name__})"
    if isinstance(a, dict):
        assert list(a) == list(b), f"{where}: keys {list(a)} vs {list(b)}"
        for key in a:
            same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list):
        assert len(a) == len(b), f"{where}: {len(a)} items vs {len(b)}"
        for index, (x, y) in enumerate(zip(a, b)):
            same(x, y, f"{where}[{index}]")
    elif isinstance(a, Decimal):
        assert a.as_tuple() == b.as_tuple(), f"{where}: {a!r} vs {b!r}"
    else:
        assert a == b, f"{where}: {a!r} vs {b!r}"


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_vector_decodes_to_its_meaning(vector: dict[str, Any]) -> None:
    decoder = wire.FrameDecoder()
    messages = decoder.receive(vector["frame"])
    assert len(messages) == 1 and decoder.buffered == 0
    same(messages[0], vector["meaning"])


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_meaning_encodes_to_the_vector(vector: dict[str, Any]) -> None:
    assert wire.encode(vector["meaning"]).hex() == vector["hex"]


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_length_prefix_counts_the_body(vector: dict[str, Any]) -> None:
    (length,) = struct.unpack_from(">I", vector["frame"])
    assert length == len(vector["frame"]) - 4


def test_vectors_cover_every_op_and_shape() -> None:
    names = {(v["kind"], v["name"]) for v in VECTORS}
    for op in ("hello", "acquire", "status", "keys", "show", "reload", "reset", "release", "renew", "settle", "leases"):
        assert ("request", op) in names and any(k == "reply" and n.startswith(op) for k, n in names), op
    for shape in ("acquire-granted", "acquire-denied", "acquire-granted-decimal", "error-unknown-key", "error-frame-too-large"):
        assert ("reply", shape) in names
    assert any(kind == "push" for kind, _ in names)
    assert ("reply", "acquire-granted-lease") in names and ("reply", "error-unknown-lease") in names


def test_hand_checked_bytes() -> None:
    """A few frames written out by hand from RFC 8949, so the file is not only checked against itself."""
    by_name = {(v["kind"], v["name"]): v["frame"] for v in VECTORS}
    # {"op": "hello", "id": 1}: map(2), text(2) "op", text(5) "hello", text(2) "id", unsigned 1
    assert by_name[("request", "hello")] == bytes.fromhex("0000000e" "a2" "626f70" "6568656c6c6f" "626964" "01")
    # cost 0.1 = tag 4 [exponent -1, mantissa 1] = c4 82 20 01, the last field of the map
    assert by_name[("request", "acquire-decimal-cost")].endswith(bytes.fromhex("64636f7374" "c4822001"))
    # 99.9 = tag 4 [-1, 999]
    assert bytes.fromhex("c482201903e7") in by_name[("reply", "acquire-granted-decimal")]


def test_stream_of_every_vector_decodes_whatever_the_split() -> None:
    stream = b"".join(v["frame"] for v in VECTORS)
    expected = [v["meaning"] for v in VECTORS]
    for step in (1, 3, 7, 64, len(stream)):
        decoder = wire.FrameDecoder()
        got: list[Any] = []
        for start in range(0, len(stream), step):
            got.extend(decoder.receive(stream[start : start + step]))
        same(got, expected, f"split every {step} bytes")
