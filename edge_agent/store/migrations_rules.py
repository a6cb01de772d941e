"""Schema migrations owned by the rules area (registered in edge_agent.store.schema)."""

from __future__ import annotations

import sqlite3

from edge_agent.store.migrations import Migration, statements


def _v2_rules(db: sqlite3.Connection) -> None:
    # Durable rule-engine state: one JSON value per key (rule:<id>, flag:<dev>/<pt>, seen:<dev>).
    db.execute("CREATE TABLE rule_state (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated REAL)")
    db.execute(
        "CREATE TABLE alarms (id INTEGER PRIMARY KEY, rule_id TEXT NOT NULL, unit TEXT, "
        "device TEXT, point TEXT, priority TEXT NOT NULL, message TEXT, state TEXT NOT NULL, "
        "raised_at REAL NOT NULL, since REAL, value REAL, limit_value REAL, peak REAL, "
        "peak_at REAL, acked_by TEXT, acked_at REAL, action TEXT, action_by TEXT, "
        "action_at REAL, cleared_at REAL, closed_at REAL, escalation_level INTEGER NOT NULL "
        "DEFAULT 0)"
    )
    db.execute("CREATE INDEX alarms_state ON alarms(state, raised_at)")
    db.execute("CREATE INDEX alarms_rule ON alarms(rule_id, state)")
    db.execute(
        "CREATE TABLE alarm_history (id INTEGER PRIMARY KEY, alarm_id INTEGER NOT NULL "
        "REFERENCES alarms(id), ts REAL NOT NULL, action TEXT NOT NULL, actor TEXT, data TEXT)"
    )
    db.execute("CREATE INDEX alarm_history_alarm ON alarm_history(alarm_id, id)")


def _v20_haccp(db: sqlite3.Connection) -> None:
    # Append-only, hash-chained: hash = sha256(prev_hash + canonical JSON of the record).
    db.execute(
        "CREATE TABLE haccp_records (seq INTEGER PRIMARY KEY, ts REAL NOT NULL, "
        "unit TEXT NOT NULL, kind TEXT NOT NULL, data TEXT NOT NULL, prev_hash TEXT NOT NULL, "
        "hash TEXT NOT NULL)"
    )
    db.execute("CREATE INDEX haccp_unit_ts ON haccp_records(unit, ts)")
    db.execute("CREATE INDEX haccp_kind_ts ON haccp_records(kind, ts)")
    # Refuse edits through SQL; the hash chain catches edits made around these triggers.
    db.execute(
        "CREATE TRIGGER haccp_no_update BEFORE UPDATE ON haccp_records "
        "BEGIN SELECT RAISE(ABORT, 'haccp_records are append-only'); END"
    )
    db.execute(
        "CREATE TRIGGER haccp_no_delete BEFORE DELETE ON haccp_records "
        "BEGIN SELECT RAISE(ABORT, 'haccp_records are append-only'); END"
    )


V2_RULES = Migration(2, "rules", "rule state and alarms", _v2_rules)
V20_HACCP = Migration(20, "rules", "hash-chained HACCP records", _v20_haccp)
# The cloud's signed receipts for the box's chain anchors: offline proof of what the cloud
# holds, so truncation or rewriting shows even with no line to the cloud.
V32_HACCP_RECEIPTS = Migration(
    32,
    "rules",
    "cloud receipts for HACCP chain anchors",
    statements(
        "CREATE TABLE haccp_receipts (id INTEGER PRIMARY KEY, count INTEGER NOT NULL, "
        "head TEXT NOT NULL, anchored_at REAL NOT NULL, received_at REAL NOT NULL, "
        "box TEXT NOT NULL, venue TEXT NOT NULL, sig TEXT NOT NULL)"
    ),
)
# Off-box notifications as durable records, one per (alarm, step, recipient).
V33_NOTIFICATIONS = Migration(
    33,
    "rules",
    "durable alarm notifications",
    statements(
        "CREATE TABLE notifications (id INTEGER PRIMARY KEY, alarm_id INTEGER NOT NULL, "
        "step TEXT NOT NULL, recipient TEXT NOT NULL, kind TEXT NOT NULL, "
        "priority TEXT NOT NULL, title TEXT NOT NULL, body TEXT NOT NULL, state TEXT NOT NULL, "
        "attempts INTEGER NOT NULL, created REAL NOT NULL, next_at REAL NOT NULL, sent_at REAL, "
        "last_error TEXT NOT NULL DEFAULT '', UNIQUE (alarm_id, step, recipient))",
        "CREATE INDEX notifications_due ON notifications(state, next_at)",
    ),
)
