"""Who may do what: a key's ``allow`` list for spending it, and admins for the daemon's own operations.

Spending a key (acquire, report, release, renew, settle) is open to anyone who
can open the socket unless the key lists who may. Administering the daemon
(reload, reset, releasing someone else's lease) is for root, the daemon's own
user, and the tier table's ``[access] admins``. A refusal is a ``forbidden``
error that names the operation, the peer and who would be allowed.
"""

from __future__ import annotations

import os

from ..errors import Forbidden
from ..tiers.model import Access, TierTable
from .peers import Peer

__all__ = ["check_key", "check_admin", "restricted_keys"]


def restricted_keys(table: TierTable) -> dict[str, Access]:
    """Return the keys that list who may spend them (most keys do not: the lookup stays one dict miss)."""
    return {name: key.allow for name, key in table.keys.items() if key.allow is not None}


def check_key(restricted: dict[str, Access], key: str, peer: Peer | None, op: str) -> None:
    """Raise ``Forbidden`` unless ``peer`` may perform ``op`` on ``key``."""
    allow = restricted.get(key)
    if allow is None or peer is None or peer.uid == 0 or allow.allows(peer.uid, peer.gids):
        return
    raise Forbidden(f"{peer.describe()} may not {op} on key {key!r}: the tier table allows only {allow}")


def is_admin(table: TierTable, peer: Peer | None) -> bool:
    """Report whether ``peer`` may administer the daemon."""
    if peer is None or peer.uid in (0, os.getuid()):
        return True
    return table.admins is not None and table.admins.allows(peer.uid, peer.gids)


def check_admin(table: TierTable, peer: Peer | None, op: str) -> None:
    """Raise ``Forbidden`` unless ``peer`` may perform the administrative ``op``."""
    if not is_admin(table, peer):
        admins = f"root, the daemon's user{', ' + str(table.admins) if table.admins else ''}"
        raise Forbidden(f"{peer.describe()} may not {op}: only {admins} may (see [access] admins in the tier table)")
