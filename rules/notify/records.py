"""Notifications as durable records in the store: one row per (alarm, step, recipient).

Rows are written in the same transaction as the alarm change that calls for them, so a kill at
any instant leaves either both or neither; the unique key makes every enqueue idempotent (a
replayed escalation after a restart adds nothing). The notifier sends what is due, at least
once, and records every attempt on the row.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Pending:
    id: int
    alarm_id: int
    step: str
    recipient: str
    kind: str
    priority: str
    title: str
    body: str
    attempts: int
    created: float
    next_at: float


def enqueue(
    conn: sqlite3.Connection,
    alarm_id: int,
    step: str,
    recipients: list[str] | tuple[str, ...],
    kind: str,
    priority: str,
    title: str,
    body: str,
    now: float,
) -> int:
    """Add one row per recipient unless (alarm, step, recipient) exists; returns rows added."""
    added = 0
    for rid in recipients:
        cur = conn.execute(
            "INSERT OR IGNORE INTO notifications (alarm_id, step, recipient, kind, priority, "
            "title, body, state, attempts, created, next_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?)",
            (alarm_id, step, rid, kind, priority, title, body, now, now),
        )
        added += cur.rowcount
    return added


def told(conn: sqlite3.Connection, alarm_id: int) -> list[str]:
    """Everyone an alarm's ladder has notified (or is about to): they hear its ack and clear."""
    return [
        r
        for (r,) in conn.execute(
            "SELECT DISTINCT recipient FROM notifications WHERE alarm_id=? AND step LIKE 'step%' "
            "ORDER BY recipient",
            (alarm_id,),
        )
    ]


def due(conn: sqlite3.Connection, now: float, limit: int = 50) -> list[Pending]:
    return [
        Pending(*r)
        for r in conn.execute(
            "SELECT id, alarm_id, step, recipient, kind, priority, title, body, attempts, "
            "created, next_at FROM notifications WHERE state='pending' AND next_at <= ? "
            "ORDER BY next_at, id LIMIT ?",
            (now, limit),
        )
    ]


def next_due(conn: sqlite3.Connection) -> float | None:
    row = conn.execute("SELECT min(next_at) FROM notifications WHERE state='pending'").fetchone()
    return None if row is None or row[0] is None else float(row[0])


def sent_times(conn: sqlite3.Connection, recipient: str, since: float) -> list[float]:
    return [
        float(t)
        for (t,) in conn.execute(
            "SELECT sent_at FROM notifications WHERE recipient=? AND state='sent' AND sent_at > ?",
            (recipient, since),
        )
    ]


def mark_sent(conn: sqlite3.Connection, nid: int, now: float) -> None:
    conn.execute(
        "UPDATE notifications SET state='sent', attempts=attempts+1, sent_at=?, last_error='' "
        "WHERE id=?",
        (now, nid),
    )


def mark_failed(
    conn: sqlite3.Connection, nid: int, error: str, next_at: float | None, now: float
) -> None:
    """A failed attempt: retried at `next_at`, or given up (state failed) when None."""
    if next_at is None:
        conn.execute(
            "UPDATE notifications SET state='failed', attempts=attempts+1, last_error=?, "
            "next_at=? WHERE id=?",
            (error[:500], now, nid),
        )
    else:
        conn.execute(
            "UPDATE notifications SET attempts=attempts+1, last_error=?, next_at=? WHERE id=?",
            (error[:500], next_at, nid),
        )


def defer(conn: sqlite3.Connection, nid: int, until: float) -> None:
    conn.execute("UPDATE notifications SET next_at=? WHERE id=?", (until, nid))


def rows(conn: sqlite3.Connection, limit: int = 200) -> list[dict[str, object]]:
    cur = conn.execute(
        "SELECT id, alarm_id, step, recipient, kind, priority, title, state, attempts, created, "
        "next_at, sent_at, last_error FROM notifications ORDER BY id DESC LIMIT ?",
        (limit,),
    )
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur]
