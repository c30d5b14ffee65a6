"""Access lists of a tier table: ``allow`` on a key and ``[access] admins``, names resolved to ids.

Names are resolved once, when the table is loaded, so that a check on the
hot path is a set lookup; a user or group that does not exist on this machine
is a precise error rather than a silently empty list.
"""

from __future__ import annotations

import grp
import pwd
from typing import Any

from . import fields
from .merge import Origins
from .model import Access

__all__ = ["ACCESS_FIELDS", "parse_access"]

ACCESS_FIELDS = ("users", "groups")

Path = tuple[Any, ...]


def parse_access(value: Any, path: Path, what: str, origins: Origins) -> Access:
    """Return the ``Access`` that ``{ users = [...], groups = [...] }`` at ``path`` describes."""
    raw = fields.table(value, path, what, '{ users = ["trader"], groups = ["traders"] }', origins)
    fields.check_fields(raw, ACCESS_FIELDS, path, what, origins)
    uids: set[int] = set()
    gids: set[int] = set()
    names: list[str] = []
    for field, lookup, into in (("users", _uid, uids), ("groups", _gid, gids)):
        entries = raw.get(field, [])
        if not isinstance(entries, list):
            raise origins.error(f"{field} must be a list of names or numeric ids, not {entries!r}", path + (field,))
        for index, entry in enumerate(entries):
            at = path + (field, index)
            if isinstance(entry, bool) or not isinstance(entry, (str, int)):
                raise origins.error(f"{entry!r} is not a {field[:-1]} name or numeric id", at)
            into.add(lookup(entry, at, origins))
            names.append(f"{field[:-1]} {entry}")
    return Access(frozenset(uids), frozenset(gids), tuple(names))


def _uid(entry: str | int, at: Path, origins: Origins) -> int:
    if isinstance(entry, int):
        return entry
    try:
        return pwd.getpwnam(entry).pw_uid
    except KeyError:
        raise origins.error(f"no user {entry!r} on this machine (give a numeric uid if it is created later)", at) from None


def _gid(entry: str | int, at: Path, origins: Origins) -> int:
    if isinstance(entry, int):
        return entry
    try:
        return grp.getgrnam(entry).gr_gid
    except KeyError:
        raise origins.error(f"no group {entry!r} on this machine (give a numeric gid if it is created later)", at) from None
