"""Migrations: applied once, idempotent, refused on foreign or newer files, and able to evolve a file."""

from __future__ import annotations

import sqlite3

import pytest
from sqlite_utils import Database, Migrations

from ratelimitd.store import BucketRow, StateStore, StoreIncompatible
from ratelimitd.store.schema import KNOWN_MIGRATIONS, MIGRATION_SET, m001_initial, migrations

from .store_support import T0



def dump_schema(path) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name").fetchall()


def applied_rows(path) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT migration_set, name, applied_at FROM _sqlite_migrations ORDER BY id").fetchall()


def test_applying_the_migrations_twice_changes_nothing(tmp_path):
    path = tmp_path / "m.db"
    db = Database(path)
    migrations.apply(db)
    schema, applied = dump_schema(path), applied_rows(path)
    migrations.apply(db)
    db.close()
    assert dump_schema(path) == schema
    assert applied_rows(path) == applied
    assert [name for _, name, _ in applied] == list(KNOWN_MIGRATIONS)


def test_reopening_a_state_file_keeps_schema_rows_and_migration_records(open_store, state_path):
    store = open_store()
    store.begin_run(1, T0)
    store.write([BucketRow("k", "rest", 0, "sliding-log", "60/1m", [[1, 1]], T0)], [], T0)
    store.end_run(T0)
    store.close()
    schema, applied = dump_schema(state_path), applied_rows(state_path)
    again = open_store()
    assert again.schema() == list(KNOWN_MIGRATIONS)
    assert len(again.load_buckets()) == 1
    again.close()
    assert dump_schema(state_path) == schema
    assert applied_rows(state_path) == applied


def test_state_file_is_in_wal_mode(open_store, state_path):
    open_store()
    with sqlite3.connect(state_path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_later_migration_evolves_an_existing_file_and_keeps_its_rows(open_store, state_path, monkeypatch):
    store = open_store()
    store.begin_run(1, T0)
    store.write([BucketRow("k", "rest", 0, "sliding-log", "60/1m", [[1, 1]], T0)], [], T0)
    store.end_run(T0)
    store.close()

    evolved = Migrations(MIGRATION_SET)
    evolved()(m001_initial)  # the released step, then one more


    @evolved()
    def m999_leases(db):
        db["leases"].create({"owner": str, "bucket": str, "lease": str, "expires_at": int}, pk="lease")

    import ratelimitd.store.schema as schema
    import ratelimitd.store.opening as opening

    monkeypatch.setattr(opening, "migrations", evolved)
    monkeypatch.setattr(schema, "KNOWN_MIGRATIONS", (*KNOWN_MIGRATIONS, "m999_leases"))
    again = open_store()
    assert again.schema() == [*KNOWN_MIGRATIONS, "m999_leases"]
    assert [row.state for row in again.load_buckets()] == [[[1, 1]]]
    with sqlite3.connect(state_path) as conn:
        assert conn.execute("SELECT count(*) FROM leases").fetchone() == (0,)


def test_a_file_written_by_a_newer_version_is_refused(open_store, state_path):
    open_store().close()
    with sqlite3.connect(state_path) as conn:
        conn.execute(
            "INSERT INTO _sqlite_migrations (migration_set, name, applied_at) VALUES (?, 'm042_future', 'x')",
            (MIGRATION_SET,),
        )
    with pytest.raises(StoreIncompatible) as caught:
        open_store()
    message = str(caught.value)
    assert str(state_path) in message and "newer ratelimitd" in message and "'m042_future'" in message


def test_another_programs_database_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total TEXT)")
    before = path.read_bytes()
    with pytest.raises(StoreIncompatible) as caught:
        StateStore.open(path, lock_timeout=0)
    assert str(caught.value) == (
        f"{path} is an SQLite database but not a ratelimitd state file (tables: invoices); "
        "choose another --state PATH"
    )
    assert path.read_bytes() == before
