"""Text for ``ratelimitctl`` about leases: the leases, scope counts and quota balances of ``show``, and the lease commands.

Pure like ``render``, whose value helpers it uses: a reply in, a string out.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from .render import NONE, amount, columns, moment, pairs, span, usage_cells

__all__ = ["holding_sections", "end_reason", "leases_text", "lease_text", "released_text", "settled_text"]


def holding_sections(buckets: Sequence[Mapping[str, Any]]) -> list[str]:
    """Return the tables ``show`` adds after its buckets: LEASES, SCOPES and QUOTAS, each only when not empty."""
    sections = []
    held = _lease_holdings(buckets)
    if held:
        rows = [
            (ident, lease.get("endpoint") or NONE, ", ".join(holds), *_lease_cells(lease))
            for ident, (lease, holds) in held.items()
        ]
        sections.append(columns(("LEASE", "ENDPOINT", "HOLDS", "PID", "UID", "AGE", "IDLE", "ENDS IN", "STATE"), rows))
    scope_rows = _scope_rows(buckets)
    if scope_rows:
        sections.append(columns(("BUCKET", "SCOPE", "USED/LIMIT", "REMAINING", "LEASES"), scope_rows))
    quota_rows = _quota_rows(buckets)
    if quota_rows:
        header = ("QUOTA", "USED/LIMIT", "REMAINING", "PERIOD END", "OVERAGE", "BILLED", "ON EXHAUST")
        sections.append(columns(header, quota_rows))
    return sections


def _scope_rows(buckets: Sequence[Mapping[str, Any]]) -> list[tuple[str, ...]]:
    """Return a row per scope value of each scoped bucket: what that value holds (or used) of the limit."""
    rows = []
    for bucket in buckets:
        for value, scoped in (bucket.get("scopes") or {}).items():
            used, left = usage_cells({**bucket, **scoped})
            rows.append((bucket.get("name", NONE), value, used, left, str(len(scoped.get("leases") or []))))
    return rows


def _lease_holdings(buckets: Sequence[Mapping[str, Any]]) -> dict[str, tuple[Mapping[str, Any], list[str]]]:
    """Return each lease held in ``buckets`` (and their scope values) with what it holds where, in order of appearance."""
    found: dict[str, tuple[Mapping[str, Any], list[str]]] = {}
    for bucket in buckets:
        places = [(bucket.get("name"), None, bucket)] + [
            (bucket.get("name"), value, scoped) for value, scoped in (bucket.get("scopes") or {}).items()
        ]
        for name, value, holder in places:
            for lease in holder.get("leases") or []:
                where = f"{name}[{value}]" if value else str(name)
                entry = found.setdefault(str(lease.get("lease")), (lease, []))
                entry[1].append(f"{where} {amount(lease.get('amount'))}")
    return found


def _lease_state(lease: Mapping[str, Any]) -> str:
    """Return what is special about a lease: orphaned, a reservation, inside another; else ``held``."""
    states = []
    if lease.get("orphaned"):
        states.append("orphaned")
    if lease.get("reservation"):
        states.append("reservation")
    if lease.get("parent"):
        states.append(f"inside {lease['parent']}")
    return ", ".join(states) or "held"


def _lease_cells(lease: Mapping[str, Any]) -> tuple[str, ...]:
    """Return PID, UID, AGE, IDLE, ENDS IN and STATE of a lease description."""
    ends = lease.get("ends_in")
    return (
        NONE if lease.get("pid") is None else str(lease["pid"]),
        NONE if lease.get("uid") is None else str(lease["uid"]),
        span(lease.get("age") or 0),
        span(lease.get("idle_for") or 0),
        NONE if ends is None else span(ends),
        _lease_state(lease),
    )


def _quota_rows(buckets: Sequence[Mapping[str, Any]]) -> list[tuple[str, ...]]:
    """Return a row per quota bucket: used of the limit, remaining, period end, overage and billed."""
    rows = []
    for bucket in buckets:
        balance = bucket.get("balance")
        if balance is None:
            continue
        quota = bucket.get("quota") or {}
        rows.append((
            bucket.get("name", NONE),
            f"{amount(balance.get('used'))}/{amount(quota.get('limit'))}",
            amount(balance.get("remaining")),
            moment(balance.get("period_end")),
            amount(balance.get("overage")),
            amount(balance.get("billed")),
            str(quota.get("on_exhaust") or NONE),
        ))
    return rows


def end_reason(lease: Any) -> str:
    """Return why a ``Lease`` ended, with the bucket that evicted it (``evicted by bucket ws``)."""
    reason = lease.end_reason or NONE
    bucket = (lease.end_message or {}).get("bucket")
    return f"{reason} by bucket {bucket}" if bucket else reason


def leases_text(leases: Sequence[Mapping[str, Any]]) -> str:
    """Return the ``leases`` reply as a table: lease, key, endpoint, holder pid and uid, age, idle, end, state."""
    if not leases:
        return "no leases held"
    rows = [(lease.get("lease"), lease.get("key"), lease.get("endpoint") or NONE, *_lease_cells(lease)) for lease in leases]
    return columns(("LEASE", "KEY", "ENDPOINT", "PID", "UID", "AGE", "IDLE", "ENDS IN", "STATE"), rows)


def lease_text(lease: Mapping[str, Any]) -> str:
    """Return one lease description (a ``renew`` reply) as aligned lines."""
    pid, uid, age, idle, ends, state = _lease_cells(lease)
    return pairs([
        ("lease", lease.get("lease")),
        ("key", lease.get("key")),
        ("endpoint", lease.get("endpoint") or NONE),
        ("holder", f"pid {pid}, uid {uid}"),
        ("age", age),
        ("idle", idle),
        ("ends in", ends),
        ("state", state),
    ])


def released_text(lease: str, released: Sequence[str]) -> str:
    """Return what ``release`` freed: the lease, and the leases that were inside it."""
    inside = [other for other in released if other != lease]
    return f"released {lease}" + (f" and the leases inside it: {', '.join(inside)}" if inside else "")


def settled_text(lease: str, cost: Any, difference: Any) -> str:
    """Return how a settle changed the charge: more charged, refunded, or as reserved."""
    if difference > 0:
        change = f"charged {amount(difference)} more than reserved"
    elif difference < 0:
        change = f"refunded {amount(-difference)}"
    else:
        change = "as reserved"
    return f"settled {lease} at {amount(cost)}: {change}"
