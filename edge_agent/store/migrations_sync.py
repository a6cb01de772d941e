"""Schema migrations owned by the sync area (registered in edge_agent.store.schema)."""

from __future__ import annotations

import os
import sqlite3

from edge_agent.store.migrations import Migration


def _v3_outbox_accounting(db: sqlite3.Connection) -> None:
    # Key id per row (rotation: old rows keep the key they were sealed with) and a running
    # byte count per stream, so the quota check never scans the outbox.
    db.execute("ALTER TABLE outbox ADD COLUMN kid INTEGER NOT NULL DEFAULT 1")
    db.execute("ALTER TABLE outbox_streams ADD COLUMN priority INTEGER NOT NULL DEFAULT 5")
    db.execute("ALTER TABLE outbox_streams ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0")
    db.execute("ALTER TABLE outbox_streams ADD COLUMN rows INTEGER NOT NULL DEFAULT 0")
    db.execute("ALTER TABLE outbox_streams ADD COLUMN evicted INTEGER NOT NULL DEFAULT 0")
    db.execute("CREATE TABLE sync_state (key TEXT PRIMARY KEY, value TEXT NOT NULL)")


def _v31_downlink(db: sqlite3.Connection) -> None:
    # The applied version per document kind is the anti-rollback / anti-replay floor: it must
    # survive restarts. failed_* remembers a version that was applied and rolled back, so it
    # is not retried every poll. Reports wait here until the cloud has taken them.
    db.execute(
        "CREATE TABLE downlink_state (kind TEXT PRIMARY KEY, "
        "applied_version INTEGER NOT NULL DEFAULT 0, applied_sha256 TEXT NOT NULL DEFAULT '', "
        "applied_at REAL, failed_version INTEGER NOT NULL DEFAULT 0, "
        "failed_sha256 TEXT NOT NULL DEFAULT '')"
    )
    db.execute(
        "CREATE TABLE downlink_reports (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, "
        "version INTEGER NOT NULL, status TEXT NOT NULL, detail TEXT NOT NULL, at REAL NOT NULL)"
    )


def _v34_store_generation(db: sqlite3.Connection) -> None:
    # The store's generation joins every record's sync address (box, generation, stream,
    # seq). A store that already numbered records keeps the address it had ("": the first
    # generation as the cloud knows it); a new store draws a random one, so a box whose store
    # was replaced or wiped numbers from 1 again where the cloud has seen nothing.
    (numbered,) = db.execute("SELECT count(*) FROM outbox_streams").fetchone()
    generation = "" if numbered else os.urandom(16).hex()
    db.execute(
        "INSERT OR REPLACE INTO sync_state (key, value) VALUES ('generation', ?)", (generation,)
    )
    if numbered:
        # It synced already: everything it holds went through the outbox hook.
        db.execute("INSERT OR REPLACE INTO sync_state (key, value) VALUES ('backfill', 'done')")


V3_OUTBOX_ACCOUNTING = Migration(
    3, "sync", "outbox key ids, per-stream byte accounting, sync state", _v3_outbox_accounting
)
V31_DOWNLINK = Migration(
    31, "sync", "signed downlink applied versions and pending reports", _v31_downlink
)
V34_STORE_GENERATION = Migration(
    34, "sync", "store generation in the sync address", _v34_store_generation
)
