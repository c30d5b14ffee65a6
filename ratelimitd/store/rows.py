"""The rows the store persists, and the CBOR encoding of their opaque state.

A ``BucketRow`` is the state of one rate of one bucket of one owner, exactly
as a limiter's ``dump(now)`` returned it. The store never looks inside
``state``: it is CBOR-encoded as it is (cbor2 round-trips ints of any size,
``Decimal``, str, bytes, lists, maps, None and booleans; tuples come back as
lists). ``BucketKey`` names a row, or with ``idx`` None every rate of a bucket.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import cbor2

__all__ = ["BucketRow", "BucketKey", "Reset", "encode_state", "decode_state"]


@dataclass(frozen=True, slots=True)
class BucketRow:
    """One rate's state: ``owner`` (key alias or "group:NAME"), ``bucket``, ``idx`` (the rate's index).

    ``algorithm`` and ``rate`` (e.g. "sliding-log", "60/1m") say how ``state``
    was produced, so the engine can tell whether it still applies after a
    reload. ``saved_at`` is the engine time (Unix ns) at which it was dumped.
    """

    owner: str
    bucket: str
    idx: int
    algorithm: str
    rate: str
    state: Any
    saved_at: int

    @property
    def key(self) -> "BucketKey":
        """Return the row's ``(owner, bucket, idx)``."""
        return BucketKey(self.owner, self.bucket, self.idx)


class BucketKey(NamedTuple):
    """A row to delete: ``(owner, bucket, idx)``, or every rate of the bucket when ``idx`` is None."""

    owner: str
    bucket: str
    idx: int | None = None


@dataclass(frozen=True, slots=True)
class Reset:
    """A ``reset OWNER [BUCKETS…]`` at engine time ``at``; ``buckets`` None resets every bucket of the owner."""

    owner: str
    buckets: tuple[str, ...] | None
    at: int


def encode_state(state: Any, where: str = "state") -> bytes:
    """Return ``state`` as CBOR bytes, or raise ``ValueError`` naming ``where`` if it is not CBOR-able."""
    try:
        return cbor2.dumps(state)
    except (cbor2.CBOREncodeError, TypeError, ValueError) as exc:
        raise ValueError(f"{where}: state {state!r:.80} cannot be stored as CBOR ({exc})") from exc


def decode_state(blob: bytes) -> Any:
    """Return the value CBOR-encoded in ``blob``; raises ``cbor2.CBORDecodeError`` (the caller names the row)."""
    return cbor2.loads(blob)
