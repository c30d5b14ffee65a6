"""The request handlers: one function per op, from a validated request map to a reply map.

Handlers are synchronous and fast; an op that must do I/O (``reload`` reads a
file) starts a task and answers later through ``Connection.push``. Field
validation happens in ``fields``; decisions in the engine; this module only
translates between the wire and those two.
"""

from __future__ import annotations

import logging
import os
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Callable

from ratelimitd_client.amounts import MAX_AMOUNT, normalize
from ratelimitd_client.display import shown
from ratelimitd_client.protocol import PROTOCOL_VERSION
from ratelimitd_client.wire import encode

from .. import __version__
from ..engine import Decision, describe_bucket
from ..engine.bucket import Bucket
from ..engine.feedback import apply_report
from ..engine.leases import LeaseRequest
from .access import check_admin, check_key
from ..limits.holding import NEVER
from ..errors import BadRequest, ConfigError, RequestError
from ..units import NS_PER_SECOND, to_ns
from . import fields

if TYPE_CHECKING:
    from .app import Server
    from .connection import Connection

__all__ = ["OPS", "acquire", "decision_reply", "error_reply"]

log = logging.getLogger("ratelimitd")

# reset_at is Unix seconds; beyond year 2286 is a unit mistake (milliseconds sent as seconds)
UNIX_TIME_MAX = 1e10

Handler = Callable[["Server", dict[str, Any], "Connection"], "dict[str, Any] | None"]


def _exact(value: Any) -> Any:
    """Return an amount as the protocol carries it: ``Decimal("24.0")`` as ``24``."""
    return normalize(value) if type(value) is Decimal else value


def decision_reply(rid: Any, decision: Decision) -> dict[str, Any]:
    """Return the wire reply for an acquire ``decision``."""
    reply = {
        "id": rid,
        "granted": decision.granted,
        # None: only a release can help (a full concurrency or capacity bucket), no time is known
        "retry_after": None if decision.retry_after >= NEVER else decision.retry_after / NS_PER_SECOND,
        "remaining": _exact(decision.remaining),
        "reset": decision.reset / NS_PER_SECOND,
        "scope": decision.scope,
        "buckets": {name: [_exact(left), reset / NS_PER_SECOND] for name, left, reset in decision.buckets},
    }
    if decision.reason is not None:
        reply["reason"] = decision.reason
    if decision.extra:
        reply.update(decision.extra)
    return reply


def error_reply(rid: Any, error: RequestError) -> dict[str, Any]:
    """Return the wire reply for a refused request."""
    reply = {"error": error.code, "message": str(error)}
    if rid is not None:
        reply["id"] = rid
    return reply


def acquire(server: "Server", message: dict[str, Any], conn: "Connection") -> bytes | None:
    """Decide an acquire; return the encoded reply, or None when the request now waits."""
    key = message.get("key")
    if type(key) is not str:
        key = fields.text(message, "key")
    endpoint = message.get("endpoint")
    if type(endpoint) is not str:
        endpoint = fields.text(message, "endpoint")
    cost = message.get("cost")
    if cost is not None and (type(cost) is not int or not 0 <= cost <= MAX_AMOUNT):
        cost = fields.amount(cost, "cost")
    wait = message.get("wait")
    priority = message.get("priority", 0)
    if type(priority) is not int or not -1000 <= priority <= 1000:
        priority = fields.integer(message, "priority", 0, -1000, 1000)
    if server.restricted:
        check_key(server.restricted, key, conn.peer, "acquire")
    now = server.clock.now()
    deadline = None
    if wait is not None:
        wait = fields.seconds_field(message, "wait")
        if wait:
            deadline = now + to_ns(wait)
            server.check_waiters(conn)
    rid = message.get("id")
    extras = None
    if "scopes" in message or "reserve" in message:
        extras = lease_request(message, conn)
    result = server.engine.acquire(key, endpoint, cost, now, deadline, priority, (conn, rid), extras, conn.ident)
    if server.engine.leases.notices:
        server.push_notices()
    if type(result) is Decision:
        if result.extra:
            server.adopt_lease(conn, result)
        if result.strict and server.persister is not None and result.granted:
            server.persister.hold_reply(conn, encode(decision_reply(rid, result)), rid)
            return None
        return encode(decision_reply(rid, result))
    conn.waiters.add(result)
    server.wake_scheduler()
    return None


def lease_request(message: dict[str, Any], conn: "Connection") -> LeaseRequest:
    """Return the lease-related fields of an acquire: scope values and a reservation's settle time."""
    scopes = message.get("scopes")
    if scopes is not None:
        if type(scopes) is not dict or not all(type(k) is str and type(v) is str for k, v in scopes.items()):
            raise BadRequest(f"field 'scopes' must map scope names to string values, e.g. {{'wallet': 'W1'}}, not {shown(scopes, 80)}")
    reserve = fields.seconds_field(message, "reserve")
    return LeaseRequest(scopes, conn.ident, conn.peer, None if reserve is None else to_ns(reserve))


def check_lease(server: "Server", lease_id: str, conn: "Connection", op: str) -> None:
    """Raise ``Forbidden`` unless ``conn`` may ``op`` the lease: its holder's user, or an admin."""
    lease = server.engine.leases.by_id.get(lease_id)
    if lease is None:
        return  # the engine answers unknown-lease
    check_key(server.restricted, lease.key, conn.peer, op)
    holder = lease.holder
    if holder is None or conn.peer is None or holder[1] == conn.peer.uid:
        return
    check_admin(server.engine.table, conn.peer, f"{op} lease {lease_id!r} held by uid {holder[1]}")


def release(server: "Server", message: dict[str, Any], conn: "Connection") -> dict[str, Any]:
    """Answer ``release``: give back a lease (and the leases inside it); waiters may then be served."""
    lease_id = fields.text(message, "lease")
    check_lease(server, lease_id, conn, "release")
    released = server.engine.release(lease_id, server.clock.now())
    for other in server.connections:
        other.leases.difference_update(released)
    server.wake_scheduler()
    return {"released": released}


def renew(server: "Server", message: dict[str, Any], conn: "Connection") -> dict[str, Any]:
    """Answer ``renew``: the lease is alive (idle timeout restarts); an orphaned one is adopted by this client."""
    lease_id = fields.text(message, "lease")
    check_lease(server, lease_id, conn, "renew")
    lease = server.engine.renew(lease_id, server.clock.now(), (conn, None))
    if lease.token is not None and lease.token[0] is conn:
        conn.leases.add(lease.id)
        lease.holder = lease.holder or conn.peer
    server.wake_scheduler()
    return {"lease": lease.id, "renewed": True, **lease.describe(server.clock.now())}


def settle(server: "Server", message: dict[str, Any], conn: "Connection") -> dict[str, Any]:
    """Answer ``settle``: charge a reservation's real cost (more, or refund the rest)."""
    lease_id = fields.text(message, "lease")
    check_lease(server, lease_id, conn, "settle")
    cost = fields.amount(message.get("cost"), "cost") if message.get("cost") is not None else None
    if cost is None:
        raise BadRequest("field 'cost' (the real cost to settle at) is required")
    difference = server.engine.settle(lease_id, cost, server.clock.now())
    conn.leases.discard(lease_id)
    server.wake_scheduler()
    return {"settled": lease_id, "difference": _exact(difference)}


def leases(server: "Server", message: dict[str, Any], conn: "Connection") -> dict[str, Any]:
    """Answer ``leases``: every lease held (of one key, if named), with holder and age."""
    key = fields.optional_text(message, "key")
    now = server.clock.now()
    return {
        "leases": [
            lease.describe(now) for lease in server.engine.leases.by_id.values() if key is None or lease.key == key
        ]
    }


def hello(server: "Server", message: dict[str, Any], conn: "Connection") -> dict[str, Any]:
    """Answer ``hello``: protocol version, server time, and a key's limits when asked."""
    reply: dict[str, Any] = {
        "protocol": PROTOCOL_VERSION,
        "server": f"ratelimitd/{__version__}",
        "time": server.clock.wall(),
        "pid": os.getpid(),
    }
    key_name = fields.optional_text(message, "key")
    if key_name is not None:
        key = server.engine.table.key(key_name)
        reply["limits"] = {
            "key": key.name,
            "provider": key.provider.name,
            "tier": key.tier,
            "docs": key.provider.docs,
            "info": dict(key.info),
            "buckets": [describe_bucket(Bucket(key.owner(spec), spec), 0, usage=False) for spec in key.buckets.values()],
        }
    return reply


def status(server: "Server", message: dict[str, Any], conn: "Connection") -> dict[str, Any]:
    """Answer ``status``: what the daemon is, what it serves, and its counters."""
    return server.status()


def keys(server: "Server", message: dict[str, Any], conn: "Connection") -> dict[str, Any]:
    """Answer ``keys``: every key alias with its provider, tier and group."""
    table = server.engine.table
    return {
        "keys": [
            {"key": key.name, "provider": key.provider.name, "tier": key.tier, "group": key.group}
            for key in table.keys.values()
        ]
    }


def show(server: "Server", message: dict[str, Any], conn: "Connection") -> dict[str, Any]:
    """Answer ``show``: a key's buckets with their use now."""
    return server.engine.show(fields.text(message, "key"), server.clock.now())


def reset(server: "Server", message: dict[str, Any], conn: "Connection") -> dict[str, Any]:
    """Answer ``reset``: forget what a key spent (on one endpoint's buckets, if named)."""
    key = fields.text(message, "key")
    check_admin(server.engine.table, conn.peer, f"reset key {key!r}")
    endpoint = fields.optional_text(message, "endpoint")
    now = server.clock.now()
    cleared = server.engine.reset(key, endpoint, now)
    names = [name for _owner, name in cleared]
    if server.persister is not None:
        for owner in dict.fromkeys(owner for owner, _name in cleared):
            server.persister.note_reset(owner, [name for who, name in cleared if who == owner], now)
    log.info("reset key %s%s: buckets %s", key, f" endpoint {endpoint}" if endpoint else "", ", ".join(names))
    server.wake_scheduler()
    return {"reset": names}


def report(server: "Server", message: dict[str, Any], conn: "Connection") -> dict[str, Any]:
    """Answer ``report``: apply what the provider said (a 429, its remaining count) to the key's buckets."""
    key = fields.text(message, "key")
    check_key(server.restricted, key, conn.peer, "report")
    status = fields.integer(message, "status", 0, 100, 599)
    if status == 0:
        raise BadRequest("field 'status' (the provider's HTTP status) is required")
    retry_after = fields.seconds_field(message, "retry_after")
    reset_at = fields.seconds_field(message, "reset_at", maximum=UNIX_TIME_MAX)
    window = fields.seconds_field(message, "window", maximum=366 * 86400.0)
    granted_at = fields.seconds_field(message, "granted_at", maximum=UNIX_TIME_MAX)
    now = server.clock.now()
    applied = apply_report(
        server.engine,
        key,
        fields.optional_text(message, "endpoint"),
        fields.optional_text(message, "bucket"),
        status,
        now,
        retry_after=None if retry_after is None else to_ns(retry_after),
        reset_at=None if reset_at is None else to_ns(reset_at),
        remaining=fields.optional_amount(message, "remaining"),
        limit=fields.optional_amount(message, "limit"),
        window=None if window is None else to_ns(window),
        granted_at=None if granted_at is None else to_ns(granted_at),
    )
    for item in applied:
        item["remaining"] = _exact(item["remaining"])
        if item["action"] == "hold":
            log.info("provider limited key %s bucket %s: held until %.3f", key, item["bucket"], item["until"])
    return {"applied": applied}


def routes(server: "Server", message: dict[str, Any], conn: "Connection") -> dict[str, Any]:
    """Answer ``routes``: the request patterns of a key's provider, first match first."""
    key = server.engine.table.key(fields.text(message, "key"))
    return {"provider": key.provider.name, "routes": [route.to_wire() for route in key.provider.routes]}


def reload(server: "Server", message: dict[str, Any], conn: "Connection") -> None:
    """Start reloading the tier table; the reply follows when the file has been read."""
    path = fields.optional_text(message, "path")
    check_admin(server.engine.table, conn.peer, "reload the tier table")
    rid = message.get("id")

    async def run() -> None:
        try:
            reply = await server.reload(path)
        except ConfigError as exc:
            reply = {"error": exc.code, "message": str(exc)}
        except Exception:  # a reload must never take the daemon down
            log.exception("internal error while reloading")
            reply = {"error": "internal", "message": "internal error while reloading; see the daemon's log"}
        reply["id"] = rid
        conn.push(encode(reply))

    server.spawn(run)
    return None


OPS: dict[str, Handler] = {
    "hello": hello,
    "status": status,
    "keys": keys,
    "show": show,
    "reset": reset,
    "reload": reload,
    "report": report,
    "routes": routes,
    "release": release,
    "renew": renew,
    "settle": settle,
    "leases": leases,
}

