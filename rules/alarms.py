"""The alarm lifecycle in the store: raised → acknowledged → corrective action → cleared → closed.

Every function here takes the writer's connection and runs inside its transaction; each
transition writes the alarm row, a history row and (for a HACCP unit) a chained HACCP record
together, so none exists without the others.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any, Literal

from rules.errors import RulesError
from rules.haccp import chain

Disposition = Literal["kept", "moved", "discarded"]
DISPOSITIONS = ("kept", "moved", "discarded")


class AlarmError(RulesError):
    """A lifecycle step that is not allowed now (e.g. a corrective action before acknowledging)."""


@dataclass(frozen=True, slots=True)
class NewAlarm:
    rule_id: str
    unit: str
    device: str
    point: str
    priority: str
    message: str
    at: float
    since: float | None
    value: float | None
    limit: float | None


_COLS = (
    "id, rule_id, unit, device, point, priority, message, state, raised_at, since, value, "
    "limit_value, peak, peak_at, acked_by, acked_at, action, action_by, action_at, cleared_at, "
    "closed_at, escalation_level"
)


def _row(r: tuple[Any, ...]) -> dict[str, Any]:
    keys = [c.strip() for c in _COLS.split(",")]
    d = dict(zip(keys, r, strict=True))
    d["action"] = json.loads(d["action"]) if d["action"] else None
    d["cleared"] = d["cleared_at"] is not None
    return d


def _history(
    conn: sqlite3.Connection,
    alarm_id: int,
    ts: float,
    action: str,
    actor: str | None,
    data: dict[str, Any],
) -> None:
    conn.execute(
        "INSERT INTO alarm_history (alarm_id, ts, action, actor, data) VALUES (?, ?, ?, ?, ?)",
        (alarm_id, ts, action, actor, json.dumps(data, sort_keys=True)),
    )


def get(conn: sqlite3.Connection, alarm_id: int) -> dict[str, Any] | None:
    r = conn.execute(f"SELECT {_COLS} FROM alarms WHERE id=?", (alarm_id,)).fetchone()
    return _row(r) if r else None


def open_for_rule(conn: sqlite3.Connection, rule_id: str) -> dict[str, Any] | None:
    r = conn.execute(
        f"SELECT {_COLS} FROM alarms WHERE rule_id=? AND cleared_at IS NULL "
        "ORDER BY id DESC LIMIT 1",
        (rule_id,),
    ).fetchone()
    return _row(r) if r else None


def active(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    rows = conn.execute(f"SELECT {_COLS} FROM alarms WHERE state != 'closed' ORDER BY raised_at")
    return [_row(r) for r in rows]


def history(
    conn: sqlite3.Connection, start: float | None = None, end: float | None = None, limit: int = 200
) -> list[dict[str, Any]]:
    rows = conn.execute(
        f"SELECT {_COLS} FROM alarms WHERE raised_at >= ? AND raised_at < ? "
        "ORDER BY raised_at DESC LIMIT ?",
        (start if start is not None else -1e18, end if end is not None else 1e18, limit),
    )
    out = [_row(r) for r in rows]
    for a in out:
        a["history"] = [
            {"ts": ts, "action": act, "actor": actor, "data": json.loads(d or "{}")}
            for ts, act, actor, d in conn.execute(
                "SELECT ts, action, actor, data FROM alarm_history WHERE alarm_id=? ORDER BY id",
                (a["id"],),
            )
        ]
    return out


@dataclass(frozen=True, slots=True)
class Raised:
    """The rule's uncleared alarm: created now, or the one already open (created False)."""

    alarm_id: int
    rule_id: str
    at: float
    created: bool


def raise_alarm(conn: sqlite3.Connection, a: NewAlarm) -> Raised:
    """A rule has at most one uncleared alarm: an open one is returned, not raised again."""
    existing = open_for_rule(conn, a.rule_id)
    if existing is not None:
        return Raised(int(existing["id"]), a.rule_id, a.at, created=False)
    cur = conn.execute(
        "INSERT INTO alarms (rule_id, unit, device, point, priority, message, state, raised_at, "
        "since, value, limit_value, peak, peak_at) VALUES (?, ?, ?, ?, ?, ?, 'raised', ?, ?, ?, "
        "?, ?, ?)",
        (
            a.rule_id,
            a.unit,
            a.device,
            a.point,
            a.priority,
            a.message,
            a.at,
            a.since,
            a.value,
            a.limit,
            a.value,
            a.at,
        ),
    )
    alarm_id = int(cur.lastrowid or 0)
    _history(conn, alarm_id, a.at, "raised", None, {"value": a.value, "limit": a.limit})
    if a.unit:
        chain.append(
            conn,
            a.at,
            a.unit,
            "excursion_start",
            {
                "alarm_id": alarm_id,
                "rule": a.rule_id,
                "device": a.device,
                "point": a.point,
                "value": a.value,
                "limit": a.limit,
                "since": a.since,
                "message": a.message,
            },
        )
    return Raised(alarm_id, a.rule_id, a.at, created=True)


def clear(
    conn: sqlite3.Connection,
    rule_id: str,
    at: float,
    value: float | None,
    peak: float | None = None,
    peak_at: float | None = None,
) -> int | None:
    a = open_for_rule(conn, rule_id)
    if a is None:
        return None
    if peak is not None and (a["peak"] is None or _worse(a, peak)):
        conn.execute("UPDATE alarms SET peak=?, peak_at=? WHERE id=?", (peak, peak_at, a["id"]))
        a["peak"], a["peak_at"] = peak, peak_at
    conn.execute("UPDATE alarms SET cleared_at=? WHERE id=?", (at, a["id"]))
    _history(conn, a["id"], at, "cleared", None, {"value": value})
    if a["unit"]:
        start = a["since"] if a["since"] is not None else a["raised_at"]
        chain.append(
            conn,
            at,
            a["unit"],
            "excursion_end",
            {
                "alarm_id": a["id"],
                "rule": rule_id,
                "value": value,
                "peak": a["peak"],
                "peak_at": a["peak_at"],
                "limit": a["limit_value"],
                "minutes_over_limit": round((at - start) / 60, 1),
            },
        )
    _maybe_close(conn, a["id"], at)
    return int(a["id"])


def _worse(a: dict[str, Any], v: float) -> bool:
    lim = a["limit_value"]
    peak = a["peak"]
    above = lim is None or a["value"] is None or a["value"] >= lim
    return bool(v > peak) if above else bool(v < peak)


def note_value(conn: sqlite3.Connection, alarm_id: int, v: float, at: float) -> None:
    a = get(conn, alarm_id)
    if a is not None and (a["peak"] is None or _worse(a, v)):
        conn.execute("UPDATE alarms SET peak=?, peak_at=? WHERE id=?", (v, at, alarm_id))


def acknowledge(conn: sqlite3.Connection, alarm_id: int, by: str, at: float) -> dict[str, Any]:
    a = get(conn, alarm_id)
    if a is None:
        raise AlarmError(f"no alarm {alarm_id}")
    if not by.strip():
        raise AlarmError("an acknowledgement needs the name of the staff member")
    if a["acked_at"] is not None:
        raise AlarmError(f"alarm {alarm_id} was already acknowledged by {a['acked_by']}")
    conn.execute(
        "UPDATE alarms SET acked_by=?, acked_at=?, state='acknowledged' WHERE id=?",
        (by, at, alarm_id),
    )
    _history(conn, alarm_id, at, "acknowledged", by, {})
    if a["unit"]:
        chain.append(
            conn,
            at,
            a["unit"],
            "acknowledged",
            {
                "alarm_id": alarm_id,
                "by": by,
                "minutes_to_ack": round((at - a["raised_at"]) / 60, 1),
            },
        )
    return get(conn, alarm_id) or {}


def corrective_action(
    conn: sqlite3.Connection,
    alarm_id: int,
    by: str,
    at: float,
    action: str,
    disposition: str,
    verification: float | None,
) -> dict[str, Any]:
    a = get(conn, alarm_id)
    if a is None:
        raise AlarmError(f"no alarm {alarm_id}")
    if a["acked_at"] is None:
        raise AlarmError("acknowledge the alarm before recording a corrective action")
    if not action.strip() or not by.strip():
        raise AlarmError("a corrective action needs what was done and who did it")
    if disposition not in DISPOSITIONS:
        raise AlarmError(f"disposition must be one of {', '.join(DISPOSITIONS)}")
    body = {"action": action, "disposition": disposition, "verification": verification}
    conn.execute(
        "UPDATE alarms SET action=?, action_by=?, action_at=?, state='actioned' WHERE id=?",
        (json.dumps(body, sort_keys=True), by, at, alarm_id),
    )
    _history(conn, alarm_id, at, "corrective_action", by, body)
    if a["unit"]:
        chain.append(
            conn,
            at,
            a["unit"],
            "corrective_action",
            {
                "alarm_id": alarm_id,
                "by": by,
                "limit": a["limit_value"],
                "peak": a["peak"],
                **body,
            },
        )
    _maybe_close(conn, alarm_id, at)
    return get(conn, alarm_id) or {}


def _maybe_close(conn: sqlite3.Connection, alarm_id: int, at: float) -> None:
    a = get(conn, alarm_id)
    if a and a["cleared_at"] is not None and a["action_at"] is not None and a["closed_at"] is None:
        conn.execute("UPDATE alarms SET closed_at=?, state='closed' WHERE id=?", (at, alarm_id))
        _history(conn, alarm_id, at, "closed", None, {})


def escalate(conn: sqlite3.Connection, alarm_id: int, level: int, at: float, step: str) -> None:
    conn.execute("UPDATE alarms SET escalation_level=? WHERE id=?", (level, alarm_id))
    _history(conn, alarm_id, at, "escalated", None, {"level": level, "step": step})


def unacknowledged(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    rows = conn.execute(
        f"SELECT {_COLS} FROM alarms WHERE acked_at IS NULL AND state != 'closed' ORDER BY id"
    )
    return [_row(r) for r in rows]
