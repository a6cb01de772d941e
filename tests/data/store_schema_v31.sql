-- index alarm_history_alarm on alarm_history
CREATE INDEX alarm_history_alarm ON alarm_history(alarm_id, id);
-- index alarms_rule on alarms
CREATE INDEX alarms_rule ON alarms(rule_id, state);
-- index alarms_state on alarms
CREATE INDEX alarms_state ON alarms(state, raised_at);
-- index haccp_kind_ts on haccp_records
CREATE INDEX haccp_kind_ts ON haccp_records(kind, ts);
-- index haccp_unit_ts on haccp_records
CREATE INDEX haccp_unit_ts ON haccp_records(unit, ts);
-- index idx_events_kind_ts on events
CREATE INDEX "idx_events_kind_ts"
    ON "events" ("kind", "ts");
-- index idx_events_ts on events
CREATE INDEX "idx_events_ts"
    ON "events" ("ts");
-- index idx_outbox_priority_id on outbox
CREATE INDEX "idx_outbox_priority_id"
    ON "outbox" ("priority", "id");
-- index idx_outbox_stream_seq on outbox
CREATE UNIQUE INDEX "idx_outbox_stream_seq"
    ON "outbox" ("stream", "seq");
-- index idx_series_device_id_point on series
CREATE UNIQUE INDEX "idx_series_device_id_point"
    ON "series" ("device_id", "point");
-- index readings_series_ts on readings
CREATE INDEX readings_series_ts ON readings(series_id, ts);
-- index sqlite_autoindex_downlink_state_1 on downlink_state (automatic)
-- index sqlite_autoindex_outbox_streams_1 on outbox_streams (automatic)
-- index sqlite_autoindex_rule_state_1 on rule_state (automatic)
-- index sqlite_autoindex_sync_state_1 on sync_state (automatic)
-- table alarm_history on alarm_history
CREATE TABLE alarm_history (id INTEGER PRIMARY KEY, alarm_id INTEGER NOT NULL REFERENCES alarms(id), ts REAL NOT NULL, action TEXT NOT NULL, actor TEXT, data TEXT);
-- table alarms on alarms
CREATE TABLE alarms (id INTEGER PRIMARY KEY, rule_id TEXT NOT NULL, unit TEXT, device TEXT, point TEXT, priority TEXT NOT NULL, message TEXT, state TEXT NOT NULL, raised_at REAL NOT NULL, since REAL, value REAL, limit_value REAL, peak REAL, peak_at REAL, acked_by TEXT, acked_at REAL, action TEXT, action_by TEXT, action_at REAL, cleared_at REAL, closed_at REAL, escalation_level INTEGER NOT NULL DEFAULT 0);
-- table downlink_reports on downlink_reports
CREATE TABLE downlink_reports (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, version INTEGER NOT NULL, status TEXT NOT NULL, detail TEXT NOT NULL, at REAL NOT NULL);
-- table downlink_state on downlink_state
CREATE TABLE downlink_state (kind TEXT PRIMARY KEY, applied_version INTEGER NOT NULL DEFAULT 0, applied_sha256 TEXT NOT NULL DEFAULT '', applied_at REAL, failed_version INTEGER NOT NULL DEFAULT 0, failed_sha256 TEXT NOT NULL DEFAULT '');
-- table events on events
CREATE TABLE "events" (
   "id" INTEGER PRIMARY KEY,
   "ts" REAL NOT NULL,
   "kind" TEXT NOT NULL,
   "source" TEXT NOT NULL,
   "severity" INTEGER NOT NULL,
   "message" TEXT,
   "data" TEXT
);
-- table haccp_records on haccp_records
CREATE TABLE haccp_records (seq INTEGER PRIMARY KEY, ts REAL NOT NULL, unit TEXT NOT NULL, kind TEXT NOT NULL, data TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
-- table latest on latest
CREATE TABLE latest (series_id INTEGER PRIMARY KEY REFERENCES series(id), ts REAL NOT NULL, value, quality INTEGER NOT NULL DEFAULT 0);
-- table outbox on outbox
CREATE TABLE "outbox" (
   "id" INTEGER PRIMARY KEY,
   "stream" TEXT NOT NULL,
   "seq" INTEGER NOT NULL,
   "priority" INTEGER NOT NULL,
   "created" REAL NOT NULL,
   "payload" BLOB NOT NULL
, kid INTEGER NOT NULL DEFAULT 1);
-- table outbox_streams on outbox_streams
CREATE TABLE "outbox_streams" (
   "stream" TEXT PRIMARY KEY,
   "next_seq" INTEGER NOT NULL,
   "acked_seq" INTEGER
, priority INTEGER NOT NULL DEFAULT 5, bytes INTEGER NOT NULL DEFAULT 0, rows INTEGER NOT NULL DEFAULT 0, evicted INTEGER NOT NULL DEFAULT 0);
-- table readings on readings
CREATE TABLE readings (series_id INTEGER NOT NULL REFERENCES series(id), ts REAL NOT NULL, value, quality INTEGER NOT NULL DEFAULT 0);
-- table readings_rollup on readings_rollup
CREATE TABLE readings_rollup (series_id INTEGER NOT NULL REFERENCES series(id), bucket REAL NOT NULL, bucket_s REAL NOT NULL, min REAL, max REAL, avg REAL, count INTEGER NOT NULL, PRIMARY KEY (series_id, bucket)) WITHOUT ROWID;
-- table rule_state on rule_state
CREATE TABLE rule_state (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated REAL);
-- table series on series
CREATE TABLE "series" (
   "id" INTEGER PRIMARY KEY,
   "device_id" TEXT NOT NULL,
   "point" TEXT NOT NULL,
   "unit" TEXT
);
-- table sync_state on sync_state
CREATE TABLE sync_state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- trigger haccp_no_delete on haccp_records
CREATE TRIGGER haccp_no_delete BEFORE DELETE ON haccp_records BEGIN SELECT RAISE(ABORT, 'haccp_records are append-only'); END;
-- trigger haccp_no_update on haccp_records
CREATE TRIGGER haccp_no_update BEFORE UPDATE ON haccp_records BEGIN SELECT RAISE(ABORT, 'haccp_records are append-only'); END;
