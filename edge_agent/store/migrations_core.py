"""Schema migrations owned by the store itself: series, readings, events and the outbox."""

from __future__ import annotations

from edge_agent.store.migrations import Migration, statements

# The exact DDL sqlite-utils generated when this migration used it, so a store created today is
# identical to one created by every earlier release (tests/data/store_schema_v31.sql pins it).
# value has no declared type on purpose: numbers stay numbers, states stay text.
_V1_INITIAL = statements(
    'CREATE TABLE "series" (\n'
    '   "id" INTEGER PRIMARY KEY,\n'
    '   "device_id" TEXT NOT NULL,\n'
    '   "point" TEXT NOT NULL,\n'
    '   "unit" TEXT\n'
    ")",
    'CREATE UNIQUE INDEX "idx_series_device_id_point"\n    ON "series" ("device_id", "point")',
    "CREATE TABLE readings (series_id INTEGER NOT NULL REFERENCES series(id), "
    "ts REAL NOT NULL, value, quality INTEGER NOT NULL DEFAULT 0)",
    "CREATE INDEX readings_series_ts ON readings(series_id, ts)",
    "CREATE TABLE latest (series_id INTEGER PRIMARY KEY REFERENCES series(id), "
    "ts REAL NOT NULL, value, quality INTEGER NOT NULL DEFAULT 0)",
    "CREATE TABLE readings_rollup (series_id INTEGER NOT NULL REFERENCES series(id), "
    "bucket REAL NOT NULL, bucket_s REAL NOT NULL, min REAL, max REAL, avg REAL, "
    "count INTEGER NOT NULL, PRIMARY KEY (series_id, bucket)) WITHOUT ROWID",
    'CREATE TABLE "events" (\n'
    '   "id" INTEGER PRIMARY KEY,\n'
    '   "ts" REAL NOT NULL,\n'
    '   "kind" TEXT NOT NULL,\n'
    '   "source" TEXT NOT NULL,\n'
    '   "severity" INTEGER NOT NULL,\n'
    '   "message" TEXT,\n'
    '   "data" TEXT\n'
    ")",
    'CREATE INDEX "idx_events_ts"\n    ON "events" ("ts")',
    'CREATE INDEX "idx_events_kind_ts"\n    ON "events" ("kind", "ts")',
    # Filled by the sync work: one row per record, ordered per stream, encrypted payloads.
    'CREATE TABLE "outbox" (\n'
    '   "id" INTEGER PRIMARY KEY,\n'
    '   "stream" TEXT NOT NULL,\n'
    '   "seq" INTEGER NOT NULL,\n'
    '   "priority" INTEGER NOT NULL,\n'
    '   "created" REAL NOT NULL,\n'
    '   "payload" BLOB NOT NULL\n'
    ")",
    'CREATE UNIQUE INDEX "idx_outbox_stream_seq"\n    ON "outbox" ("stream", "seq")',
    'CREATE INDEX "idx_outbox_priority_id"\n    ON "outbox" ("priority", "id")',
    'CREATE TABLE "outbox_streams" (\n'
    '   "stream" TEXT PRIMARY KEY,\n'
    '   "next_seq" INTEGER NOT NULL,\n'
    '   "acked_seq" INTEGER\n'
    ")",
)

V1_INITIAL = Migration(1, "store", "initial schema", _V1_INITIAL)
