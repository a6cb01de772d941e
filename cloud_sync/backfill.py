"""Records a box accepted before it was provisioned reach the cloud after enrolment.

Until a box has an identity there is no key to seal with, so the outbox hook is not installed
and readings and events are committed to the store alone. When the sync stack first starts on
a store, the last reading and event committed so far are written down (`sync_state`,
`backfill`) *before* the writer commits anything through the hook; everything up to those
bounds is then copied into the outbox, oldest first, in bounded transactions, with a cursor,
so a restart resumes where it stopped and nothing is sent twice. Records after the bounds
entered the outbox through the hook. A store that already synced before this existed is
marked done by its migration. HACCP chain records have their own pump and need none of this.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from typing import Any

from cloud_sync.outbox import Outbox
from edge_agent.messages import Event, Quality, Reading, Severity
from edge_agent.store.schema import connect, migrate
from edge_agent.store.writer import StoreWriter

log = logging.getLogger(__name__)

KEY = "backfill"
DONE = "done"
CHUNK = 5000


def plan(store_path: str) -> dict[str, list[int]] | None:
    """Write down the bounds, once per store; call before the writer commits through the
    outbox hook (the agent installs the hook before its writer runs). None when done."""
    conn = connect(store_path)
    try:
        migrate(conn)
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute("SELECT value FROM sync_state WHERE key=?", (KEY,)).fetchone()
            if row is None:
                (r,) = conn.execute("SELECT coalesce(max(rowid), 0) FROM readings").fetchone()
                (e,) = conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()
                value = DONE if r == e == 0 else json.dumps({"readings": [0, r], "events": [0, e]})
                conn.execute("INSERT INTO sync_state (key, value) VALUES (?, ?)", (KEY, value))
            else:
                value = str(row[0])
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    finally:
        conn.close()
    return None if value == DONE else dict(json.loads(value))


def _quality(q: int) -> Quality:
    return Quality(q) if q in Quality._value2member_map_ else Quality.UNCERTAIN


def _severity(s: int) -> Severity:
    return Severity(s) if s in Severity._value2member_map_ else Severity.WARNING


def _chunk(conn: sqlite3.Connection, outbox: Outbox) -> int:
    row = conn.execute("SELECT value FROM sync_state WHERE key=?", (KEY,)).fetchone()
    if row is None or row[0] == DONE:
        return 0
    state: dict[str, list[int]] = json.loads(row[0])
    records: list[Reading | Event] = []
    r_at, r_to = state["readings"]
    if r_at < r_to:
        rows = conn.execute(
            "SELECT r.rowid, s.device_id, s.point, s.unit, r.ts, r.value, r.quality "
            "FROM readings r JOIN series s ON s.id = r.series_id "
            "WHERE r.rowid > ? AND r.rowid <= ? ORDER BY r.rowid LIMIT ?",
            (r_at, r_to, CHUNK),
        ).fetchall()
        for rowid, dev, point, unit, ts, value, quality in rows:
            records.append(Reading(dev, point, value, ts, unit or "", _quality(quality)))
            r_at = rowid
        if len(rows) < CHUNK:
            r_at = r_to  # retention may have removed some: nothing left below the bound
    else:
        e_at, e_to = state["events"]
        rows = conn.execute(
            "SELECT id, ts, kind, source, severity, message, data FROM events "
            "WHERE id > ? AND id <= ? ORDER BY id LIMIT ?",
            (e_at, e_to, CHUNK),
        ).fetchall()
        for eid, ts, kind, source, severity, message, data in rows:
            body: dict[str, Any] = json.loads(data) if data else {}
            records.append(Event(kind, ts, source, _severity(severity), message or "", body))
            e_at = eid
        if len(rows) < CHUNK:
            e_at = e_to
        state["events"] = [e_at, e_to]
    state["readings"] = [r_at, r_to]
    if records:
        outbox.in_transaction(conn, records)
    finished = state["readings"][0] >= state["readings"][1] and (
        state["events"][0] >= state["events"][1]
    )
    conn.execute(
        "UPDATE sync_state SET value=? WHERE key=?", (DONE if finished else json.dumps(state), KEY)
    )
    return len(records) or (0 if finished else 1)


async def run(writer: StoreWriter, outbox: Outbox) -> int:
    """Copy what the store accepted before the sync stack first ran into the outbox."""
    total = 0
    while True:
        n: int = await writer.transact(lambda conn: _chunk(conn, outbox))
        if n == 0:
            break
        total += n
    if total:
        log.info("sync: %d records accepted before provisioning queued for the cloud", total)
    return total
