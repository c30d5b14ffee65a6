"""Hostile input as hypothesis strategies: odd CBOR values, request maps with wrong fields, hand-made byte tricks, mutations.

What a broken or malicious local client might send. Nothing here knows what
the daemon answers; the tests decide that. Request-shaped maps only ever name
the keys in ``HOSTILE_KEYS`` (plus junk), so a test can keep a key of its own
that no hostile frame touches and check its counts exactly.
"""

from __future__ import annotations

import operator
import struct
from decimal import Decimal

import cbor2
from cbor2 import CBORSimpleValue, CBORTag, undefined
from hypothesis import strategies as st
from ratelimitd_client.protocol import OPS

__all__ = [
    "BigInt",
    "HUGE_INTS",
    "DECIMALS",
    "DECIMAL_BOMB",
    "HOSTILE_KEYS",
    "ENDPOINTS",
    "frame",
    "head",
    "values",
    "ids",
    "requests",
    "acquires",
    "valid_requests",
    "hand_made",
    "mutated",
    "frame_bodies",
]



class BigInt(int):
    """An int whose repr names its size (hypothesis prints examples with repr, and str() refuses over 4300 digits)."""

    def __repr__(self) -> str:
        return f"BigInt(<{'-' if self < 0 else ''}{self.bit_length()} bits>)"


# Integers beyond 64 bits travel as bignums (tags 2 and 3). 10**5000 has more digits than
# str() converts by default (4300), so any message that formats such a value raises.
HUGE_INTS = tuple(map(BigInt, (2**64, 2**64 - 1, -(2**64) - 1, 2**200, 10**5000, -(10**5000))))

# A decimal fraction (tag 4) of a dozen bytes whose integer value has a million digits:
# turning it into an int takes the CPU for tens of seconds.
DECIMAL_BOMB = Decimal("1E+1000000")

DECIMALS = (
    Decimal("0.1"),
    Decimal("-0.1"),
    Decimal("-0"),
    Decimal("1E-30"),
    Decimal("1E+30"),
    Decimal("0.3333333333333333333333333333333333"),  # more digits than the default context keeps
    Decimal("1E-1000000"),
    Decimal("1E+5000"),  # an integer of 5001 digits: over str()'s limit
    DECIMAL_BOMB,
)

# The only key names a request-shaped hostile map uses (besides junk values of every type).
HOSTILE_KEYS = ("target", "nobody", "", "x" * 300)
ENDPOINTS = ("rest", "heavy", "ws", "paid", "nothing", "")

# Tags cbor2 decodes into objects (dates, bignums, decimals, regexps, MIME, UUIDs,
# IP addresses, sets, shared and string references, self-described CBOR), and a few it does not.
TAGS = (0, 1, 2, 3, 4, 5, 24, 25, 28, 29, 30, 32, 35, 36, 37, 52, 54, 100, 256, 258, 260, 261, 1004, 55799, 2**64 - 1)

_GIANT_TEXT = st.builds(operator.mul, st.sampled_from(["x", "é", "\x00", "😀"]), st.integers(1000, 15000))

_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from(HUGE_INTS),
    st.floats(),
    st.sampled_from([float("nan"), float("inf"), -float("inf"), -0.0, 1e308, 5e-324]),
    st.sampled_from(DECIMALS),
    st.text(max_size=20),
    st.binary(max_size=20),
    _GIANT_TEXT,
    st.just(undefined),
    st.builds(CBORSimpleValue, st.integers(0, 19) | st.integers(32, 255)),
)


def _containers(children: st.SearchStrategy) -> st.SearchStrategy:
    odd_keys = st.one_of(st.integers(), st.binary(max_size=4), st.none(), st.floats(allow_nan=False))
    return st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=8), children, max_size=4),
        st.dictionaries(odd_keys, children, max_size=3),
        st.builds(CBORTag, st.sampled_from(TAGS) | st.integers(0, 2**64 - 1), children),
    )


def values() -> st.SearchStrategy:
    """Return a strategy of any value cbor2 encodes: scalars of every type and size, containers, tags."""
    return st.recursive(_SCALARS, _containers, max_leaves=8)


def ids() -> st.SearchStrategy:
    """Return a strategy of request ids, the valid (int, text) and every other type."""
    return st.one_of(
        st.integers(0, 2**63),
        st.integers(-(2**70), -1),
        st.sampled_from(HUGE_INTS),
        st.text(max_size=20),
        _GIANT_TEXT,
        st.floats(),
        st.booleans(),
        st.binary(max_size=8),
        st.lists(st.integers(), max_size=3),
        st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
        st.builds(CBORTag, st.sampled_from(TAGS), st.integers()),
    )


_NUMBERS = st.one_of(
    st.integers(-5, 10),
    st.sampled_from([0.1, -0.1, 2.5, 1e300, -1e300, float("nan"), float("inf"), -float("inf"), 2**63, -(2**63)]),
    st.sampled_from(DECIMALS),
    st.sampled_from(HUGE_INTS),
)

# Plausible values per field: right or nearly right types, edge values, names of this test's keys.
_PLAUSIBLE = {
    "key": st.sampled_from(("target",) * 4 + HOSTILE_KEYS),
    "endpoint": st.sampled_from(("rest", "heavy", "ws") * 2 + ENDPOINTS),
    "cost": _NUMBERS,
    "wait": st.one_of(st.sampled_from([0, 0.001, 0.02, 86400, 86401, 1e12]), _NUMBERS),
    "priority": st.one_of(st.integers(-2000, 2000), st.sampled_from(HUGE_INTS)),
    "scopes": st.one_of(
        st.dictionaries(st.sampled_from(["wallet", "lease", "connection", ""]), st.text(max_size=5), max_size=2),
        st.dictionaries(st.text(max_size=3), values(), max_size=2),
    ),
    "reserve": _NUMBERS,
    "lease": st.one_of(st.sampled_from(["L-1", "L-2", "", "x" * 300]), st.text(max_size=12)),
    "path": st.one_of(st.sampled_from(["/", "", "/nonexistent/tiers.toml", "tiers.toml", "a\x00b"]), st.text(max_size=12)),
    "status": st.one_of(st.sampled_from([0, 99, 100, 200, 402, 429, 503, 599, 600, -1]), st.sampled_from(HUGE_INTS)),
    "retry_after": _NUMBERS,
    "reset_at": st.one_of(_NUMBERS, st.sampled_from([1.7e9, 1e10, 1e11])),
    "remaining": _NUMBERS,
    "limit": _NUMBERS,
    "bucket": st.sampled_from(["rest", "heavy", "ws", "premium", "nothing", ""]),
    "client": st.text(max_size=20),
}
FIELDS = tuple(_PLAUSIBLE)


_KEYED = ("acquire", "report", "show", "routes", "reset", "hello", "leases")


@st.composite
def requests(draw) -> dict:
    """Draw a request-shaped map: usually a known op and an id, the op's key and endpoint, other fields, unknown fields.

    Each field holds a plausible value (right or nearly right type, edge values)
    three times in four, else a value of any type.
    """
    message: dict = {}
    op = draw(st.one_of(st.sampled_from(OPS), st.sampled_from(OPS), st.sampled_from(OPS), st.text(max_size=12), values()))
    if draw(st.integers(0, 9)):
        message["op"] = op
    if draw(st.integers(0, 9)):
        message["id"] = draw(ids())
    names = draw(st.lists(st.sampled_from(FIELDS), max_size=5, unique=True))
    if op in _KEYED and draw(st.integers(0, 9)):
        names.insert(0, "key")
    if op in ("acquire", "report") and draw(st.integers(0, 9)):
        names.insert(1, "endpoint")
    for name in dict.fromkeys(names):
        plausible = _PLAUSIBLE[name]
        message[name] = draw(st.one_of(plausible, plausible, plausible, values()))
    message.update(draw(st.dictionaries(st.text(max_size=10).filter(lambda name: name not in message), values(), max_size=2)))
    return message


@st.composite
def acquires(draw) -> dict:
    """Draw an acquire on ``target`` with a valid endpoint and some of its other fields plausible or junk."""
    message = {"op": "acquire", "id": draw(st.integers(0, 2**32)), "key": "target", "endpoint": draw(st.sampled_from(["rest", "heavy", "ws"]))}
    for name in draw(st.lists(st.sampled_from(["cost", "wait", "priority", "scopes", "reserve"]), max_size=3, unique=True)):
        message[name] = draw(st.one_of(_PLAUSIBLE[name], _PLAUSIBLE[name], values()))
    return message


@st.composite
def valid_requests(draw) -> dict:
    """Draw a well-formed request on the hostile keys: the raw material for mutations."""
    op = draw(st.sampled_from(["acquire", "acquire", "hello", "status", "keys", "show", "report", "release", "routes"]))
    message: dict = {"op": op, "id": draw(st.integers(0, 1000))}
    if op in ("acquire", "show", "report", "routes"):
        message["key"] = "target"
    if op in ("acquire", "report"):
        message["endpoint"] = draw(st.sampled_from(["rest", "heavy", "ws"]))
    if op == "acquire":
        message["cost"] = draw(st.sampled_from([1, 2, Decimal("0.5")]))
    if op == "report":
        message["status"] = draw(st.sampled_from([200, 429]))
    if op == "release":
        message["lease"] = draw(st.sampled_from(["L-1", "x"]))
    return message


def head(major: int, argument: int) -> bytes:
    """Return a CBOR head: major type and argument in the shortest form (RFC 8949 §3)."""
    if argument < 24:
        return bytes([major << 5 | argument])
    for info, size in ((24, "B"), (25, ">H"), (26, ">I"), (27, ">Q")):
        if argument < 256 ** struct.calcsize(size):
            return bytes([major << 5 | info]) + struct.pack(size, argument)
    raise ValueError(argument)


def _pairs(pairs: list[tuple[bytes, bytes]], indefinite: bool = False, terminated: bool = True) -> bytes:
    body = b"".join(key + value for key, value in pairs)
    if indefinite:
        return b"\xbf" + body + (b"\xff" if terminated else b"")
    return head(5, len(pairs)) + body


_ENCODED_KEYS = st.one_of(
    st.sampled_from(["op", "id", "key", "endpoint", "cost"]).map(cbor2.dumps),  # duplicates are likely
    values().map(cbor2.dumps),  # keys of every type
    st.sampled_from([b"\x80", b"\xa0", b"\x81\x01", b"\xa1\x01\x02", b"\xc1\x00"]),  # arrays, maps and tags as keys
)
_ENCODED_VALUES = st.one_of(st.sampled_from(["acquire", "hello", "target", "rest", 1]).map(cbor2.dumps), values().map(cbor2.dumps))


@st.composite
def hand_made(draw) -> bytes:
    """Draw a body cbor2 would never write: duplicate or odd keys, indefinite lengths, deep nesting, trailing bytes."""
    kind = draw(st.sampled_from(["map", "indefinite", "deep", "deep-field", "chunked", "trailing"]))
    if kind == "map":
        return _pairs(draw(st.lists(st.tuples(_ENCODED_KEYS, _ENCODED_VALUES), min_size=1, max_size=6)))
    if kind == "indefinite":
        pairs = draw(st.lists(st.tuples(_ENCODED_KEYS, _ENCODED_VALUES), max_size=4))
        return _pairs(pairs, indefinite=True, terminated=draw(st.booleans()))
    if kind == "deep":
        depth = draw(st.integers(1, 200))
        opener = draw(st.sampled_from([b"\x81", b"\x9f", b"\xa1\x61a", b"\xc1"]))
        return opener * depth + b"\x00" + (b"\xff" * depth if opener == b"\x9f" else b"")
    if kind == "deep-field":
        depth = draw(st.integers(1, 40))
        nested = b"\x81" * depth + b"\x01"
        return _pairs([(cbor2.dumps("op"), cbor2.dumps("acquire")), (cbor2.dumps("id"), cbor2.dumps(1)),
                       (cbor2.dumps("key"), cbor2.dumps("target")), (cbor2.dumps("cost"), nested)])
    if kind == "chunked":
        chunks = draw(st.lists(st.one_of(st.text(max_size=4).map(cbor2.dumps), st.binary(max_size=4).map(cbor2.dumps)), max_size=4))
        opener = draw(st.sampled_from([b"\x7f", b"\x5f"]))
        return _pairs([(opener + b"".join(chunks) + b"\xff", cbor2.dumps("acquire"))])
    return cbor2.dumps(draw(valid_requests())) + draw(st.binary(min_size=1, max_size=8))


@st.composite
def mutated(draw, source: st.SearchStrategy[bytes]) -> bytes:
    """Draw ``source`` bytes with one to four bytes flipped, replaced, inserted or deleted, or cut short."""
    data = bytearray(draw(source))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        position = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and data:
            data[position] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=4))
        elif kind == "delete" and data:
            del data[position : position + draw(st.integers(1, 4))]
        elif kind == "truncate":
            del data[position:]
    return bytes(data)


def frame(body: bytes) -> bytes:
    """Return ``body`` behind its 4-byte big-endian length prefix."""
    return struct.pack(">I", len(body)) + body


def frame_bodies() -> st.SearchStrategy[bytes]:
    """Return a strategy of frame bodies of every hostile kind (some may exceed the daemon's maximum)."""
    return st.one_of(
        st.binary(max_size=200),  # random bytes
        values().map(cbor2.dumps),  # valid CBOR of any shape
        requests().map(cbor2.dumps),  # request-shaped maps with wrong fields
        requests().map(cbor2.dumps),
        acquires().map(cbor2.dumps),  # acquires that reach the engine, with odd costs, waits, scopes
        hand_made(),  # what cbor2 would never write
        mutated(valid_requests().map(cbor2.dumps)),  # a valid request with bytes changed
    )
