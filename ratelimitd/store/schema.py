"""The schema of the state file, created and evolved only through sqlite-utils ``Migrations``.

Rules: a migration, once released, never changes (its name is recorded in
``_sqlite_migrations`` with set name "ratelimitd"); a change of schema is a
new migration appended below. Each runs in one transaction together with its
record, so applying the set twice changes nothing. State of a new shape that
is keyed like a bucket rate (quota balances, concurrency counts) goes into
``buckets`` under its own ``algorithm``; state keyed otherwise (leases) gets
its own table from a new migration.

Tables (docs/state.md shows them with their columns):

- ``buckets`` — one row per (owner, bucket, idx): algorithm, rate, CBOR state, saved_at.
- ``runs`` — one row per daemon run: pid, boot id, start and last flush (each
  as engine, wall and boottime ns), stop, outcome ("running", "clean",
  "unclean", "crashed") and the engine's recovery summary (CBOR).
- ``resets`` — the resets that were recorded (their rows are deleted with them).
- views ``bucket_summary`` and ``run_summary`` — the same with readable UTC times.
"""

from __future__ import annotations

from sqlite_utils import Database, Migrations

from .errors import StoreIncompatible

__all__ = ["MIGRATION_SET", "migrations", "check_schema", "KNOWN_MIGRATIONS"]

MIGRATION_SET = "ratelimitd"

migrations = Migrations(MIGRATION_SET)

_ISO = "strftime('%Y-%m-%dT%H:%M:%fZ', {column} / 1e9, 'unixepoch')"


@migrations()
def m001_initial(db: Database) -> None:
    db["buckets"].create(
        {
            "owner": str,
            "bucket": str,
            "idx": int,
            "algorithm": str,
            "rate": str,
            "state": bytes,
            "saved_at": int,
        },
        pk=("owner", "bucket", "idx"),
        not_null={"owner", "bucket", "idx", "algorithm", "rate", "state", "saved_at"},
    )
    db["runs"].create(
        {
            "run_id": int,
            "pid": int,
            "boot_id": str,
            "started_at": int,
            "started_wall": int,
            "started_boottime": int,
            "last_flush_at": int,
            "last_flush_wall": int,
            "last_flush_boottime": int,
            "stopped_at": int,
            "outcome": str,
            "recovery": bytes,
        },
        pk="run_id",
        not_null={
            "pid",
            "boot_id",
            "started_at",
            "started_wall",
            "started_boottime",
            "last_flush_at",
            "last_flush_wall",
            "last_flush_boottime",
            "outcome",
        },
    )
    db["resets"].create(
        {"id": int, "run_id": int, "owner": str, "buckets": str, "at": int},
        pk="id",
        not_null={"owner", "at"},
    )
    db.create_view(
        "bucket_summary",
        "SELECT owner, bucket, idx, algorithm, rate, "
        f"{_ISO.format(column='saved_at')} AS saved_utc, "
        "length(state) AS state_bytes FROM buckets",
    )
    db.create_view(
        "run_summary",
        "SELECT run_id, pid, outcome, "
        f"{_ISO.format(column='started_at')} AS started_utc, "
        f"{_ISO.format(column='last_flush_at')} AS last_flush_utc, "
        f"{_ISO.format(column='stopped_at')} AS stopped_utc, boot_id FROM runs",
    )


KNOWN_MIGRATIONS = tuple(
    migration.name for migration in migrations.pending(Database(memory=True, execute_plugins=False))
)


def check_schema(db: Database, path: str) -> list[str]:
    """Return the names of the migrations applied to ``db``, refusing a file that is not ours.

    Raises ``StoreIncompatible`` when the database has tables but no
    ratelimitd migrations (another program's file), or records a migration
    this version does not know (written by a newer ratelimitd).
    """
    tables = db.table_names()
    applied = [migration.name for migration in migrations.applied(db)]
    if tables and not applied:
        shown = ", ".join(sorted(tables)[:5])
        raise StoreIncompatible(
            f"{path} is an SQLite database but not a ratelimitd state file (tables: {shown}); "
            "choose another --state PATH",
            path=path,
        )
    unknown = [name for name in applied if name not in KNOWN_MIGRATIONS]
    if unknown:
        raise StoreIncompatible(
            f"state file {path} was written by a newer ratelimitd (schema step {unknown[0]!r} "
            "is unknown to this version); upgrade ratelimitd, or move the file aside "
            f"(mv {path} {path}.newer) to start from empty",
            path=path,
        )
    return applied
