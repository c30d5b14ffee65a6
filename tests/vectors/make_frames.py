"""Write frames.json: the golden frames of docs/protocol.md, as bytes (hex) and as meaning.

Run ``python tests/vectors/make_frames.py`` only when the protocol changes on
purpose, and review the diff of frames.json byte by byte: the tests in
tests/client/test_vectors.py check the codec against this file, so
regenerating it to make a failing test pass defeats them.

In frames.json a decimal fraction (CBOR tag 4) is written ``{"$decimal": "0.1"}``
(JSON has no exact decimal); every other value is plain JSON, where ``60`` is an
integer and ``60.0`` a float, as on the wire.
"""

from __future__ import annotations

import json
import pathlib
import sys
from decimal import Decimal
from typing import Any

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "clients" / "python"))

from ratelimitd_client.wire import encode  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent

SHOW_BUCKET = {
    "name": "rest",
    "kind": "rate",
    "algorithm": "sliding-log",
    "scope": "key",
    "owner": "research",
    "waiters": 0,
    "held_until": None,
    "rates": [
        {"rate": "60/1m", "limit": 60, "window": 60.0, "margin": 0.1, "used": 3, "remaining": 57, "reset": 41.2}
    ],
}

# (name, kind, note, message); kind is request, reply or push
VECTORS: list[tuple[str, str, str, dict[str, Any]]] = [
    ("hello", "request", "the smallest request: op and id", {"op": "hello", "id": 1}),
    (
        "hello-key",
        "request",
        "hello naming a key (the reply then carries its limits) and the client",
        {"op": "hello", "id": 1, "key": "research", "client": "nightly-sync/1.2"},
    ),
    (
        "hello",
        "reply",
        "time is Unix seconds, a float",
        {"id": 1, "protocol": 1, "server": "ratelimitd/0.1.0", "time": 1705329600.123, "pid": 4242},
    ),
    (
        "acquire",
        "request",
        "no cost: the endpoint's default cost; no wait: answer at once",
        {"op": "acquire", "id": 2, "key": "research", "endpoint": "rest"},
    ),
    (
        "acquire-wait",
        "request",
        "integer cost, wait in float seconds (the Python client always sends a float), a priority",
        {"op": "acquire", "id": 3, "key": "research", "endpoint": "rest", "cost": 5, "wait": 30.0, "priority": 1},
    ),
    (
        "acquire-decimal-cost",
        "request",
        "a fractional cost is a decimal fraction, tag 4 [exponent, mantissa]: 0.1 = 4([-1, 1]) = c4 82 20 01",
        {"op": "acquire", "id": 4, "key": "struct-main", "endpoint": "webhook-event", "cost": Decimal("0.1")},
    ),
    (
        "acquire-granted",
        "reply",
        "granted: retry_after 0; scope is the bucket with the least remaining",
        {
            "id": 2,
            "granted": True,
            "retry_after": 0,
            "remaining": 59,
            "reset": 60.0,
            "scope": "rest",
            "buckets": {"rest": [59, 60.0]},
        },
    ),
    (
        "acquire-denied",
        "reply",
        "denied (at once or when wait ran out) is a reply, not an error",
        {
            "id": 2,
            "granted": False,
            "retry_after": 12.5,
            "remaining": 0,
            "reset": 12.5,
            "scope": "rest",
            "buckets": {"rest": [0, 12.5]},
        },
    ),
    (
        "acquire-denied-multi",
        "reply",
        "an endpoint of three buckets (minute, hour, day): scope names the one that refuses longest",
        {
            "id": 3,
            "granted": False,
            "retry_after": 41.5,
            "remaining": 0,
            "reset": 41.5,
            "scope": "quote-hour",
            "buckets": {"quote-minute": [2, 20.0], "quote-hour": [0, 41.5], "quote-day": [31, 3600.0]},
        },
    ),
    (
        "acquire-granted-decimal",
        "reply",
        "remaining amounts are exact too: 99.9 = 4([-1, 999])",
        {
            "id": 4,
            "granted": True,
            "retry_after": 0,
            "remaining": Decimal("99.9"),
            "reset": 60.0,
            "scope": "credits",
            "buckets": {"credits": [Decimal("99.9"), 60.0]},
        },
    ),
    ("status", "request", "", {"op": "status", "id": 5}),
    (
        "status",
        "reply",
        "counters since start; reload_error is null or why the last reload was refused",
        {
            "id": 5,
            "version": "0.1.0",
            "protocol": 1,
            "pid": 4242,
            "started": 1705329600.0,
            "uptime": 3600.5,
            "config": "/etc/ratelimitd/tiers.toml",
            "loaded": 1705329600.0,
            "socket": "/run/ratelimitd/ratelimitd.sock",
            "keys": 3,
            "buckets": 5,
            "connections": 2,
            "waiters": 0,
            "grants": 1200,
            "denials": 3,
            "errors": 0,
            "reload_error": None,
        },
    ),
    ("keys", "request", "", {"op": "keys", "id": 6}),
    (
        "keys",
        "reply",
        "",
        {
            "id": 6,
            "keys": [
                {"key": "research", "provider": "surchi", "tier": "explorer", "group": None},
                {"key": "struct-main", "provider": "struct", "tier": "growth", "group": "acme"},
            ],
        },
    ),
    ("show", "request", "", {"op": "show", "id": 7, "key": "research"}),
    (
        "show",
        "reply",
        "",
        {
            "id": 7,
            "key": "research",
            "provider": "surchi",
            "tier": "explorer",
            "group": None,
            "docs": "https://docs.surchi.example/rate-limits",
            "info": {},
            "endpoints": {"rest": ["rest"]},
            "buckets": [SHOW_BUCKET],
        },
    ),
    ("reload", "request", "", {"op": "reload", "id": 8}),
    (
        "reload-path",
        "request",
        "load another file",
        {"op": "reload", "id": 8, "path": "/etc/ratelimitd/tiers.toml"},
    ),
    (
        "reload",
        "reply",
        "",
        {"id": 8, "reloaded": True, "config": "/etc/ratelimitd/tiers.toml", "keys": 3},
    ),
    ("reset", "request", "", {"op": "reset", "id": 9, "key": "research"}),
    (
        "reset-endpoint",
        "request",
        "only the buckets of one endpoint",
        {"op": "reset", "id": 9, "key": "research", "endpoint": "rest"},
    ),
    ("reset", "reply", "the names of the buckets reset", {"id": 9, "reset": ["rest"]}),
    (
        "error-unknown-key",
        "reply",
        "an error reply: code and a message with the values",
        {
            "id": 7,
            "error": "unknown-key",
            "message": "unknown key 'reserch'; the tier table /etc/ratelimitd/tiers.toml defines ['research']",
        },
    ),
    (
        "error-invalid-table",
        "reply",
        "a refused reload names the file and the TOML path",
        {
            "id": 8,
            "error": "invalid-table",
            "message": "/etc/ratelimitd/tiers.toml: providers.surchi.tiers.explorer.rest: rate '60/1x' has an unknown unit 'x'",
        },
    ),
    (
        "error-frame-too-large",
        "reply",
        "no id: the daemon could not read the request; it then closes the connection",
        {"error": "frame-too-large", "message": "frame of 70000 bytes exceeds the maximum of 65536 bytes"},
    ),
    (
        "push",
        "push",
        "an example of the push envelope (no id, a push kind); clients ignore kinds they do not know",
        {"push": "lease-evicted", "lease": 17, "key": "research", "bucket": "ws", "message": "lease 17 of bucket 'ws' was evicted by a newer one"},
    ),
]


def to_json(value: Any) -> Any:
    """Return ``value`` with every Decimal written as ``{"$decimal": "..."}``."""
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, dict):
        return {key: to_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [to_json(item) for item in value]
    return value


def main() -> None:
    vectors = [
        {"name": name, "kind": kind, "note": note, "hex": encode(message).hex(), "message": to_json(message)}
        for name, kind, note, message in VECTORS
    ]
    document = {
        "about": (
            "Golden frames of the ratelimitd wire protocol (docs/protocol.md): hex is the whole frame, "
            "4-byte big-endian length then the CBOR body; message is its meaning. "
            'A decimal fraction (CBOR tag 4) is written {"$decimal": "0.1"}; 60 is an integer and 60.0 a float. '
            "Map keys appear in the order they were encoded; a decoder must not depend on that order."
        ),
        "vectors": vectors,
    }
    (HERE / "frames.json").write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
