"""Schema migrations owned by the sync area (versions 3, 30–39 reserved for it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from edge_agent.store.schema import Migration

if TYPE_CHECKING:
    import sqlite_utils


def _v3_outbox_accounting(db: sqlite_utils.Database) -> None:
    # Key id per row (rotation: old rows keep the key they were sealed with) and a running
    # byte count per stream, so the quota check never scans the outbox.
    db.execute("ALTER TABLE outbox ADD COLUMN kid INTEGER NOT NULL DEFAULT 1")
    db.execute("ALTER TABLE outbox_streams ADD COLUMN priority INTEGER NOT NULL DEFAULT 5")
    db.execute("ALTER TABLE outbox_streams ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0")
    db.execute("ALTER TABLE outbox_streams ADD COLUMN rows INTEGER NOT NULL DEFAULT 0")
    db.execute("ALTER TABLE outbox_streams ADD COLUMN evicted INTEGER NOT NULL DEFAULT 0")
    db.execute("CREATE TABLE sync_state (key TEXT PRIMARY KEY, value TEXT NOT NULL)")


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        3, "sync: outbox key ids, per-stream byte accounting, sync state", _v3_outbox_accounting
    ),
)
