"""What the escalation ladder tells people off the box, written as notification records inside
the alarm's own transaction: the step's message to the step's recipients, and later the
acknowledgement and the clear to everyone the ladder already told."""

from __future__ import annotations

import datetime as dt
import sqlite3
import zoneinfo
from typing import Any

from rules import alarms
from rules.notify import records


def _when(ts: float | None, tz: str) -> str:
    if ts is None:
        return "-"
    return dt.datetime.fromtimestamp(ts, zoneinfo.ZoneInfo(tz)).strftime("%H:%M %Z")


def _num(v: Any) -> str:
    return "-" if v is None else f"{float(v):.1f} °C"


def _what(a: dict[str, Any]) -> str:
    return str(a.get("unit") or a.get("device") or a["rule_id"])


def on_escalation(
    conn: sqlite3.Connection,
    alarm_id: int,
    level: int,
    recipients: tuple[str, ...],
    now: float,
    venue: str,
    tz: str,
) -> tuple[str, int]:
    a = alarms.get(conn, alarm_id)
    if a is None or a["acked_at"] is not None or not recipients:
        return ("notified", 0)
    minutes = (now - a["raised_at"]) / 60
    title = f"[{venue}] ALARM {_what(a)}: {a['message']}"
    if level > 1:
        title += f" (step {level}, unacknowledged {minutes:.0f} min)"
    body = (
        f"{a['message']}\n"
        f"Unit: {_what(a)}. Value {_num(a['value'])}, limit {_num(a['limit_value'])}, "
        f"out of limit since {_when(a['since'] or a['raised_at'], tz)}.\n"
        f"Priority {a['priority']}; escalation step {level}. "
        f"Acknowledge it on the kitchen terminal and record what was done."
    )
    n = records.enqueue(
        conn, alarm_id, f"step{level}", recipients, "alarm", a["priority"], title, body, now
    )
    return ("notified", n)


def on_ack(
    conn: sqlite3.Connection, alarm_id: int, now: float, venue: str, tz: str
) -> tuple[str, int]:
    a = alarms.get(conn, alarm_id)
    told = records.told(conn, alarm_id)
    if a is None or not told:
        return ("notified", 0)
    title = f"[{venue}] acknowledged: {_what(a)}: {a['message']}"
    body = f"{a['acked_by']} acknowledged the alarm at {_when(a['acked_at'], tz)}."
    n = records.enqueue(
        conn, alarm_id, "acknowledged", told, "ack", a["priority"], title, body, now
    )
    return ("notified", n)


def on_clear(
    conn: sqlite3.Connection, alarm_id: int, now: float, venue: str, tz: str
) -> tuple[str, int]:
    a = alarms.get(conn, alarm_id)
    told = records.told(conn, alarm_id)
    if a is None or not told:
        return ("notified", 0)
    title = f"[{venue}] cleared: {_what(a)}: {a['message']}"
    body = f"Back within limit at {_when(a['cleared_at'], tz)}; peak {_num(a['peak'])}. " + (
        "Acknowledged by " + str(a["acked_by"]) + "." if a["acked_by"] else "Not acknowledged."
    )
    n = records.enqueue(conn, alarm_id, "cleared", told, "clear", a["priority"], title, body, now)
    return ("notified", n)
