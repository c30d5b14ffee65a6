"""Text for ``ratelimitctl``: aligned human output of the daemon's replies, and JSON that keeps amounts exact.

Every function here is pure: a reply map in, a string out, so that the
commands only call the client and print. Amounts (``int`` or ``Decimal``) are
written exactly, in the human text and in JSON alike (``0.1`` stays ``0.1``);
a missing value is ``-``.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any, Iterable, Mapping, Sequence

from ratelimitd_client import Permit

__all__ = [
    "NONE",
    "to_json",
    "amount",
    "seconds",
    "moment",
    "span",
    "count",
    "columns",
    "pairs",
    "status_text",
    "keys_text",
    "usage_cells",
    "show_text",
    "hello_text",
    "permit_json",
    "permit_text",
    "reset_text",
    "reload_text",
]

NONE = "-"  # how a value that is missing or does not apply is shown


# -- JSON ------------------------------------------------------------------------------------


def to_json(value: Any) -> str:
    """Return ``value`` as JSON indented by two spaces, every ``Decimal`` written as the exact number it is.

    ``json`` would refuse a ``Decimal`` (or, through ``float``, round it); here
    ``Decimal("0.1")`` becomes the JSON number ``0.1`` and ``Decimal("15.0")``
    the number ``15``. Tuples become arrays.
    """
    return _encode(value, 0)


def _encode(value: Any, level: int) -> str:
    if isinstance(value, Decimal):
        return _decimal(value)
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        inner = "  " * (level + 1)
        items = [f"{inner}{json.dumps(str(name))}: {_encode(item, level + 1)}" for name, item in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + "  " * level + "}"
    if isinstance(value, (list, tuple)):
        if not value:
            return "[]"
        inner = "  " * (level + 1)
        return "[\n" + ",\n".join(inner + _encode(item, level + 1) for item in value) + "\n" + "  " * level + "]"
    return json.dumps(value)


# -- values ----------------------------------------------------------------------------------


def amount(value: Any) -> str:
    """Return an amount as written in a tier table (``59``, ``24.9``); ``-`` for None."""
    if value is None:
        return NONE
    if isinstance(value, Decimal):
        return _decimal(value)
    return str(value)


def _decimal(value: Decimal) -> str:
    """Return ``value`` in plain notation without trailing zeros (``15.0`` -> ``15``, ``1E-7`` -> ``0.0000001``)."""
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


def seconds(value: Any) -> str:
    """Return a duration in seconds to the millisecond, without trailing zeros (``60.1 s``, ``0 s``); ``-`` for None."""
    if value is None:
        return NONE
    text = f"{float(value):.3f}".rstrip("0").rstrip(".")
    return f"{text} s"


def moment(value: Any) -> str:
    """Return a Unix time as local date and time with its UTC offset; ``-`` for None."""
    if value is None:
        return NONE
    return datetime.fromtimestamp(float(value)).astimezone().isoformat(sep=" ", timespec="seconds")


def span(value: float) -> str:
    """Return a long duration in days, hours, minutes and seconds (``1d 2h 3m 4s``)."""
    whole = int(value)
    if whole < 60:
        return seconds(value)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, whole = divmod(whole, size)
        if count or parts:
            parts.append(f"{count}{unit}")
    return " ".join(parts)


def count(number: Any, plural: str) -> str:
    """Return ``number`` with the noun ``plural``, made singular for 1 (``1 key``, ``5 keys``)."""
    return f"{number} {plural[:-1] if number == 1 else plural}"


def columns(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Return ``rows`` under ``header`` as left-aligned columns two spaces apart, trailing spaces trimmed."""
    table = [list(header), *([str(cell) for cell in row] for row in rows)]
    widths = [max(len(row[index]) for row in table) for index in range(len(header))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in table)


def pairs(items: Iterable[tuple[str, Any]], indent: str = "") -> str:
    """Return ``label  value`` lines with the values aligned."""
    items = [(label, str(value)) for label, value in items]
    width = max((len(label) for label, _ in items), default=0)
    return "\n".join(f"{indent}{label.ljust(width)}  {value}".rstrip() for label, value in items)


# -- replies ---------------------------------------------------------------------------------


def status_text(status: Mapping[str, Any]) -> str:
    """Return the ``status`` reply as aligned ``label  value`` lines; ``reload error`` only when there is one."""
    state = status.get("state") or NONE
    if status.get("durability") and status.get("state"):
        state += f" ({status['durability']})"
    items = [
        ("ratelimitd", f"{status.get('version')} (protocol {status.get('protocol')}), pid {status.get('pid')}"),
        ("uptime", f"{span(status.get('uptime') or 0)} (since {moment(status.get('started'))})"),
        ("config", f"{status.get('config')} (loaded {moment(status.get('loaded'))})"),
        ("socket", status.get("socket")),
        ("state", state),
        ("keys", f"{status.get('keys')} ({count(status.get('buckets'), 'buckets')} in use)"),
        ("connections", status.get("connections")),
        ("waiters", status.get("waiters")),
        ("grants", status.get("grants")),
        ("denials", status.get("denials")),
        ("errors", status.get("errors")),
    ]
    if status.get("reload_error"):
        items.append(("reload error", status["reload_error"]))
    persistence = status.get("persistence") or {}
    if persistence.get("last_flush"):
        failures = persistence.get("failures") or 0
        items.append(("last flush", f"{moment(persistence['last_flush'])} ({count(failures, 'failed writes')})"))
    if persistence.get("last_error"):
        items.append(("write error", persistence["last_error"]))
    recovery = persistence.get("recovery") or {}
    if recovery:
        if recovery.get("clean"):
            text = f"clean start, {count(recovery.get('restored', 0), 'rows')} restored"
        else:
            text = (
                f"recovered from a crash at {moment(recovery.get('at'))}: {count(recovery.get('buckets_held', 0), 'buckets')} "
                f"held back up to {span(recovery.get('longest_hold_s') or 0)}"
            )
        if recovery.get("restored_age_s") is not None:
            text += f"; state was {span(recovery['restored_age_s'])} old"
        items.append(("restart", text))
    return pairs(items)


def state_text(report: Mapping[str, Any]) -> str:
    """Return what a state file says of its daemon: who holds it, its last run, its saved buckets."""
    last = report.get("last_run") or {}
    owners = (report.get("buckets") or {}).get("owners") or {}
    items = [
        ("state", report.get("path")),
        ("daemon", f"running, pid {report['daemon_pid']}" if report.get("daemon_pid") else "not running"),
        ("last run", f"pid {last.get('pid')}, {last.get('outcome')}" if last else NONE),
        ("last flush", moment(report["last_flush_at"] / 1e9) if report.get("last_flush_at") else NONE),
        ("stopped", "cleanly" if report.get("clean") else "NOT cleanly: the next start holds batched buckets back"),
        ("buckets", f"{count((report.get('buckets') or {}).get('rows', 0), 'rows')} for {count(len(owners), 'owners')}"),
    ]
    for owner, summary in sorted(owners.items()):
        items.append((f"  {owner}", ", ".join(summary.get("buckets", []))))
    return pairs(items)


def keys_text(keys: Sequence[Mapping[str, Any]]) -> str:
    """Return the key aliases as a table of key, provider, tier and group."""
    if not keys:
        return "no keys in the tier table"
    rows = [(k.get("key"), k.get("provider"), k.get("tier"), k.get("group") or NONE) for k in keys]
    return columns(("KEY", "PROVIDER", "TIER", "GROUP"), rows)


def _limit_text(bucket: Mapping[str, Any]) -> str:
    """Return what a bucket without rates limits: ``1 concurrent``, ``capacity 100 per wallet``, ``1000/month``."""
    quota = bucket.get("quota") or {}
    if "concurrent" in bucket:
        text = f"{bucket['concurrent']} concurrent"
    elif bucket.get("kind") == "capacity":
        text = f"capacity {amount(bucket.get('count_limit'))}"
    elif quota:
        text = f"{amount(quota.get('limit'))}/{quota.get('period')}"
    else:
        text = "unlimited" if bucket.get("kind") == "unlimited" else NONE
    return f"{text} per {bucket['per']}" if bucket.get("per") else text


def _holding_limit(bucket: Mapping[str, Any]) -> Any:
    """Return how much a concurrency or capacity bucket may hold (None: unlimited)."""
    return bucket.get("concurrent", bucket.get("count_limit"))


def usage_cells(bucket: Mapping[str, Any]) -> tuple[str, str]:
    """Return (USED/LIMIT, REMAINING) of a bucket without rates: what is held, or a quota's balance."""
    balance = bucket.get("balance")
    if balance is not None:
        limit = (bucket.get("quota") or {}).get("limit")
        return f"{amount(balance.get('used'))}/{amount(limit)}", amount(balance.get("remaining"))
    if "held" in bucket:
        limit = _holding_limit(bucket)
        left = None if limit is None else max(limit - bucket["held"], 0)
        return f"{amount(bucket['held'])}/{amount(limit)}", amount(left)
    return NONE, NONE


def _bucket_rows(bucket: Mapping[str, Any], usage: bool) -> list[tuple[str, ...]]:
    """Return one row per rate of ``bucket`` (one row when it has none); bucket fields on the first row only."""
    kind = bucket.get("kind", NONE)
    algorithm = bucket.get("algorithm", NONE) if kind == "rate" else NONE
    head = (bucket.get("name", NONE), kind, algorithm, bucket.get("owner", NONE))
    tail = (str(bucket.get("waiters", 0)), moment(bucket.get("held_until"))) if usage else ()
    rates = bucket.get("rates") or []
    if not rates:
        limit = _limit_text(bucket)
        middle = (limit, *usage_cells(bucket), NONE) if usage else (limit, NONE)
        return [head + middle + tail]
    rows = []
    for index, rate in enumerate(rates):
        if usage:
            middle = (
                rate.get("rate", NONE),
                f"{amount(rate.get('used'))}/{amount(rate.get('limit'))}",
                amount(rate.get("remaining")),
                seconds(rate.get("reset")),
            )
        else:
            middle = (rate.get("rate", NONE), seconds(rate.get("margin")))
        if index == 0:
            rows.append(head + middle + tail)
        else:
            rows.append(("",) * len(head) + middle + ("",) * len(tail))
    return rows


def _key_header(reply: Mapping[str, Any]) -> list[tuple[str, Any]]:
    items = [("key", reply.get("key")), ("provider", reply.get("provider")), ("tier", reply.get("tier"))]
    if "group" in reply:
        items.append(("group", reply.get("group") or NONE))
    items.append(("docs", reply.get("docs") or NONE))
    return items


def _info_text(info: Mapping[str, Any]) -> list[str]:
    if not info:
        return []
    return ["", "INFO", pairs(((name, amount(value)) for name, value in info.items()), "  ")]


def show_text(show: Mapping[str, Any]) -> str:
    """Return the ``show`` reply: the key, its buckets (a row per rate with its use), leases, scopes, quotas, endpoints, info.

    Concurrency and capacity buckets show what is held of the limit; the
    LEASES table lists every lease with what it holds where (``bucket[scope]
    amount``), its holder's pid and uid, age, idle time, end and state; SCOPES
    the counts per scope value (per wallet, per lease); QUOTAS each calendar
    quota's balance and the end of its period.
    """
    buckets = show.get("buckets") or []
    header = ("BUCKET", "KIND", "ALGORITHM", "OWNER", "RATE", "USED/LIMIT", "REMAINING", "RESET", "WAITERS", "HELD UNTIL")
    rows = [row for bucket in buckets for row in _bucket_rows(bucket, usage=True)]
    parts = [pairs(_key_header(show)), "", columns(header, rows) if rows else "no buckets"]
    from .lease_render import holding_sections  # it builds on this module's helpers

    for section in holding_sections(buckets):
        parts += ["", section]
    capped = [(b.get("name"), amount(b.get("max_cost"))) for b in buckets if b.get("max_cost") is not None]
    if capped:
        parts += ["", columns(("BUCKET", "MAX COST"), capped)]
    endpoints = show.get("endpoints") or {}
    if endpoints:
        parts += ["", columns(("ENDPOINT", "BUCKETS"), ((name, ", ".join(used)) for name, used in endpoints.items()))]
    parts += _info_text(show.get("info") or {})
    return "\n".join(parts)


def hello_text(hello: Mapping[str, Any], socket: str) -> str:
    """Return the ``hello`` reply: who answered on ``socket``, and the key's limits when asked for."""
    lines = [
        f"{hello.get('server')} (protocol {hello.get('protocol')}, pid {hello.get('pid')}) answers on {socket}",
        pairs([("server time", moment(hello.get("time")))]),
    ]
    limits = hello.get("limits")
    if limits:
        rows = [row for bucket in limits.get("buckets") or [] for row in _bucket_rows(bucket, usage=False)]
        lines += ["", pairs(_key_header(limits)), ""]
        lines.append(columns(("BUCKET", "KIND", "ALGORITHM", "OWNER", "RATE", "MARGIN"), rows) if rows else "no buckets")
        lines += _info_text(limits.get("info") or {})
    return "\n".join(lines)


def permit_json(permit: Permit, key: str, endpoint: str, cost: Any) -> dict[str, Any]:
    """Return what ``acquire --json`` prints: the request, then the ``Permit`` with named bucket fields."""
    return {
        "key": key,
        "endpoint": endpoint,
        "cost": cost,
        "granted": permit.granted,
        "retry_after": permit.retry_after,
        "remaining": permit.remaining,
        "reset": permit.reset,
        "scope": permit.scope,
        "buckets": {name: {"remaining": left, "reset": until} for name, (left, until) in permit.buckets.items()},
        "lease": permit.lease,
    }


def permit_text(permit: Permit, key: str, endpoint: str, cost: Any, wait: float | None = None) -> str:
    """Return a permit as lines: granted or denied (by which bucket, not within which wait), retry after, remaining, reset.

    A denial with ``wait`` says "not within WAIT s": the wait ran out, or the
    daemon saw at once that it could not be granted in time.
    """
    what = f"key {key}, endpoint {endpoint}" + ("" if cost is None else f", cost {amount(cost)}")
    if permit.granted:
        items = [("granted", what)]
    else:
        by = f", by bucket {permit.scope}" if permit.scope else ""
        waited = f", not within {wait:g} s" if wait else ""
        items = [("denied", what + by + waited), ("retry after", "when a holder releases" if permit.retry_after is None else seconds(permit.retry_after))]
    if permit.scope is not None:
        items.append(("remaining", f"{amount(permit.remaining)} (bucket {permit.scope})"))
        items.append(("reset", seconds(permit.reset)))
    if len(permit.buckets) > 1:
        items.append(
            ("buckets", "; ".join(f"{name} {amount(left)}, reset {seconds(until)}" for name, (left, until) in permit.buckets.items()))
        )
    if permit.lease is not None:
        reservation = permit.lease_state is not None and permit.lease_state.reservation
        text = f"{permit.lease} (a reservation: charged in full unless settled)" if reservation else permit.lease
        items.append(("lease", text))
    return pairs(items)


def reset_text(key: str, endpoint: str | None, names: Sequence[str]) -> str:
    """Return which buckets of ``key`` (on ``endpoint``) were reset."""
    what = f"key {key}" + (f", endpoint {endpoint}" if endpoint else "")
    if not names:
        return f"{what}: nothing to reset"
    return f"{what}: reset {', '.join(names)}"


def reload_text(reply: Mapping[str, Any]) -> str:
    """Return the ``reload`` reply: which table the daemon now serves and how many keys it has."""
    return f"reloaded {reply.get('config')}: {count(reply.get('keys'), 'keys')}"
