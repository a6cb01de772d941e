"""The store's schema: the one linear migration sequence, applied in order at open.

The version is PRAGMA user_version. Every area's migrations are registered here, in version
order, at the end of MIGRATIONS; a new one is numbered one above the last (see
edge_agent.store.migrations for why, and tests/test_migrations.py for the check).
"""

from __future__ import annotations

import os
import sqlite3

from edge_agent.errors import StoreError
from edge_agent.store import migrations_core, migrations_rules, migrations_sync
from edge_agent.store.migrations import Migration, linear

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "Migration", "connect", "migrate", "schema_version"]

MIGRATIONS: tuple[Migration, ...] = linear(
    (
        migrations_core.V1_INITIAL,
        migrations_rules.V2_RULES,
        migrations_sync.V3_OUTBOX_ACCOUNTING,
        # 4-19 and 21-30 were once reserved per area and are never to be used: deployed
        # stores are at 31, so anything numbered below it would be skipped.
        migrations_rules.V20_HACCP,
        migrations_sync.V31_DOWNLINK,
        migrations_rules.V32_HACCP_RECEIPTS,
        migrations_rules.V33_NOTIFICATIONS,
        migrations_sync.V34_STORE_GENERATION,
        # New migrations go here, numbered 35, 36, ...
    )
)
SCHEMA_VERSION = MIGRATIONS[-1].version


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, migrations: tuple[Migration, ...] = MIGRATIONS) -> int:
    """Bring the database to the sequence's last version; refuse one written by a newer agent."""
    target = migrations[-1].version
    current = schema_version(conn)
    if current > target:
        raise StoreError(
            f"store schema version {current} is newer than this agent understands "
            f"({target}); upgrade the agent rather than risk the data"
        )
    for m in migrations:
        if m.version <= current:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            m.apply(conn)
            conn.execute(f"PRAGMA user_version = {m.version}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        current = m.version
    return current


def _create_private(path: str) -> None:
    """Create the database file 0600 if it is missing: SQLite gives its -wal and -shm the
    main file's mode, so they are private from their creation too."""
    if path == ":memory:" or path.startswith("file:"):
        return
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return
    os.close(fd)


def connect(path: str, *, readonly: bool = False) -> sqlite3.Connection:
    """Open the store in WAL mode with explicit transactions (isolation_level=None)."""
    try:
        if readonly:
            conn = sqlite3.connect(
                f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
            )
        else:
            _create_private(path)
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA busy_timeout=5000")
        conn.execute("PRAGMA foreign_keys=OFF")
    except (sqlite3.Error, OSError) as exc:
        raise StoreError(f"cannot open store {path}: {exc}") from exc
    return conn
