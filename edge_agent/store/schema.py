"""Versioned schema migrations, applied in order at open; the version is PRAGMA user_version."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from edge_agent.errors import StoreError

if TYPE_CHECKING:
    import sqlite_utils


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    apply: Callable[[sqlite_utils.Database], None]


def _v1_initial(db: sqlite_utils.Database) -> None:
    db.table("series").create(
        {"id": int, "device_id": str, "point": str, "unit": str},
        pk="id",
        not_null={"device_id", "point"},
    )
    db.table("series").create_index(["device_id", "point"], unique=True)
    # value has no declared type on purpose: numbers stay numbers, states stay text.
    db.execute(
        "CREATE TABLE readings (series_id INTEGER NOT NULL REFERENCES series(id), "
        "ts REAL NOT NULL, value, quality INTEGER NOT NULL DEFAULT 0)"
    )
    db.execute("CREATE INDEX readings_series_ts ON readings(series_id, ts)")
    db.execute(
        "CREATE TABLE latest (series_id INTEGER PRIMARY KEY REFERENCES series(id), "
        "ts REAL NOT NULL, value, quality INTEGER NOT NULL DEFAULT 0)"
    )
    db.execute(
        "CREATE TABLE readings_rollup (series_id INTEGER NOT NULL REFERENCES series(id), "
        "bucket REAL NOT NULL, bucket_s REAL NOT NULL, min REAL, max REAL, avg REAL, "
        "count INTEGER NOT NULL, PRIMARY KEY (series_id, bucket)) WITHOUT ROWID"
    )
    db.table("events").create(
        {
            "id": int,
            "ts": float,
            "kind": str,
            "source": str,
            "severity": int,
            "message": str,
            "data": str,
        },
        pk="id",
        not_null={"ts", "kind", "source", "severity"},
    )
    db.table("events").create_index(["ts"])
    db.table("events").create_index(["kind", "ts"])
    # Filled by the sync work: one row per record, ordered per stream, encrypted payloads.
    db.table("outbox").create(
        {"id": int, "stream": str, "seq": int, "priority": int, "created": float, "payload": bytes},
        pk="id",
        not_null={"stream", "seq", "priority", "created", "payload"},
    )
    db.table("outbox").create_index(["stream", "seq"], unique=True)
    db.table("outbox").create_index(["priority", "id"])
    db.table("outbox_streams").create(
        {"stream": str, "next_seq": int, "acked_seq": int}, pk="stream", not_null={"next_seq"}
    )


def _all_migrations() -> tuple[Migration, ...]:
    # Each area owns its migrations module; versions are unique and applied in order.
    from edge_agent.store import migrations_rules, migrations_sync

    found: tuple[Migration, ...] = (Migration(1, "initial schema", _v1_initial),)
    found += migrations_rules.MIGRATIONS + migrations_sync.MIGRATIONS
    return tuple(sorted(found, key=lambda m: m.version))


MIGRATIONS: tuple[Migration, ...] = _all_migrations()
SCHEMA_VERSION = MIGRATIONS[-1].version


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the database to SCHEMA_VERSION; refuse one written by a newer agent."""
    current = schema_version(conn)
    if current > SCHEMA_VERSION:
        raise StoreError(
            f"store schema version {current} is newer than this agent understands "
            f"({SCHEMA_VERSION}); upgrade the agent rather than risk the data"
        )
    if current == SCHEMA_VERSION:
        return current
    # Imported only when a migration runs: sqlite-utils pulls in numpy when it is installed,
    # megabytes a running agent has no use for.
    import sqlite_utils

    db = sqlite_utils.Database(conn)
    for m in MIGRATIONS:
        if m.version <= current:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            m.apply(db)
            conn.execute(f"PRAGMA user_version = {m.version}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        current = m.version
    return current


def connect(path: str, *, readonly: bool = False) -> sqlite3.Connection:
    """Open the store in WAL mode with explicit transactions (isolation_level=None)."""
    try:
        if readonly:
            conn = sqlite3.connect(
                f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
            )
        else:
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA busy_timeout=5000")
        conn.execute("PRAGMA foreign_keys=OFF")
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open store {path}: {exc}") from exc
    return conn
