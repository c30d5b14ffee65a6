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
        "acquire-scopes",
        "request",
        "scope values for buckets counted per wallet, the new lease taken inside lease 3f9a1c-7",
        {"op": "acquire", "id": 10, "key": "trading", "endpoint": "position", "scopes": {"wallet": "W1", "lease": "3f9a1c-7"}},
    ),
    (
        "acquire-reserve",
        "request",
        "a reservation of the estimated cost 10, to be settled within 300 s",
        {"op": "acquire", "id": 11, "key": "struct-main", "endpoint": "rest", "cost": 10, "reserve": 300.0},
    ),
    (
        "acquire-granted-lease",
        "reply",
        "a grant that holds a slot carries its lease id (text); a full concurrency bucket has remaining 0, reset 0",
        {
            "id": 10,
            "granted": True,
            "retry_after": 0,
            "remaining": 0,
            "reset": 0.0,
            "scope": "ws",
            "buckets": {"ws": [0, 0.0]},
            "lease": "3f9a1c-7",
        },
    ),
    (
        "acquire-denied-full",
        "reply",
        "a full when_full = \"reject\" bucket: no time can be known, retry_after is null",
        {
            "id": 12,
            "granted": False,
            "retry_after": None,
            "remaining": 0,
            "reset": 0.0,
            "scope": "stream",
            "buckets": {"stream": [0, 0.0]},
        },
    ),
    ("release", "request", "", {"op": "release", "id": 13, "lease": "3f9a1c-7"}),
    (
        "release",
        "reply",
        "every lease ended: those taken inside it first, then the lease itself",
        {"id": 13, "released": ["3f9a1c-8", "3f9a1c-7"]},
    ),
    ("renew", "request", "a heartbeat; also how a client reattaches an orphan after a restart", {"op": "renew", "id": 14, "lease": "3f9a1c-7"}),
    (
        "renew",
        "reply",
        "the lease description; ends_in null: only a release ends it",
        {
            "id": 14,
            "lease": "3f9a1c-7",
            "renewed": True,
            "key": "research",
            "endpoint": "ws",
            "pid": 4242,
            "uid": 1000,
            "age": 12.5,
            "idle_for": 0.0,
            "ends_in": None,
            "orphaned": False,
            "parent": None,
            "reservation": False,
        },
    ),
    (
        "settle",
        "request",
        "the real cost of a reservation, exact",
        {"op": "settle", "id": 15, "lease": "3f9a1c-9", "cost": Decimal("3.5")},
    ),
    (
        "settle",
        "reply",
        "difference: charged on top (positive) or refunded (negative); 10 reserved, 3.5 used: -6.5 = 4([-1, -65])",
        {"id": 15, "settled": "3f9a1c-9", "difference": Decimal("-6.5")},
    ),
    ("leases", "request", "", {"op": "leases", "id": 16}),
    ("leases-key", "request", "only one key's leases", {"op": "leases", "id": 16, "key": "research"}),
    (
        "leases",
        "reply",
        "an orphan kept over a restart: no holder yet, ends_in is what is left of its grace",
        {
            "id": 16,
            "leases": [
                {
                    "lease": "7b20e4-2",
                    "key": "markets",
                    "endpoint": "",
                    "pid": None,
                    "uid": None,
                    "age": 12.4,
                    "idle_for": 12.4,
                    "ends_in": 17.6,
                    "orphaned": True,
                    "parent": None,
                    "reservation": False,
                }
            ],
        },
    ),
    (
        "error-unknown-lease",
        "reply",
        "release, renew or settle of a lease that ended",
        {
            "id": 13,
            "error": "unknown-lease",
            "message": "lease '3f9a1c-7' is not held (released, ended, or from an unknown daemon run)",
        },
    ),
    (
        "push",
        "push",
        "a lease taken away by a newer one on a full evict-oldest bucket: no id, the push kind, the reason, the bucket",
        {"push": "lease-ended", "lease": "3f9a1c-7", "key": "research", "endpoint": "ws", "reason": "evicted", "bucket": "ws"},
    ),
    (
        "push-idle",
        "push",
        "a lease ended by its bucket's idle timeout (reasons: evicted, ttl, idle, time-quota, orphaned, parent-ended, reservation-expired)",
        {"push": "lease-ended", "lease": "3f9a1c-4", "key": "lasersell-main", "endpoint": "stream", "reason": "idle"},
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
