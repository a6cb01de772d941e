"""Today's manual checks, due and done, derived from the venue's HACCP units, the configured
check list and the log.

No schedule is stored: what is due follows from the check specs (by default SFBB's opening and
closing checks and a probe reading for every holding unit each day, and a thermometer
calibration each week) and what is done is whatever `check` records the log already holds. A
check that failed is done but not complete until a `check_action` is recorded against it. A
check still not done at its deadline becomes a `missed_check` record. Pure: units, specs, day
bounds and records in, rows out.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from rules.haccp.chain import HaccpRecord
from rules.haccp.checks import DEFAULT_CHECKS, CheckSpec
from rules.model import Unit

HOLDING_KINDS = ("cold_hold", "freezer", "hot_hold", "cellar")
CALIBRATION_EVERY_S = 7 * 86400.0
THERMOMETER = "thermometer"  # the unit a calibration is recorded against
VENUE_UNIT = "venue"  # the unit of a venue-wide check other than calibration
# How far back records must reach for the longest-period check (the weekly calibration).
LOOKBACK_S = 366 * 86400.0


@dataclass(frozen=True, slots=True)
class Day:
    name: str  # YYYY-MM-DD in the venue's time zone
    start: float
    end: float


def venue_day(now: float, timezone: str) -> Day:
    tz = zoneinfo.ZoneInfo(timezone)
    local = dt.datetime.fromtimestamp(now, tz).date()
    start = dt.datetime.combine(local, dt.time(), tz)
    end = dt.datetime.combine(local + dt.timedelta(days=1), dt.time(), tz)
    return Day(local.isoformat(), start.timestamp(), end.timestamp())


def _due(day: Day, spec: CheckSpec, timezone: str) -> float:
    # On the wall clock of the day (a DST day is 23 or 25 hours long).
    tz = zoneinfo.ZoneInfo(timezone)
    d = dt.date.fromisoformat(day.name)
    h, m = spec.due_by.split(":")
    if int(h) >= 24:
        return day.end
    return min(day.end, dt.datetime.combine(d, dt.time(int(h), int(m)), tz).timestamp())


def _unit_of(spec: CheckSpec) -> str:
    return THERMOMETER if spec.id == "calibration" else VENUE_UNIT


def checks_due(
    units: Sequence[Unit],
    day: Day,
    records: Iterable[HaccpRecord],
    specs: Sequence[CheckSpec] = DEFAULT_CHECKS,
    timezone: str = "UTC",
) -> list[dict[str, Any]]:
    """One row per expected check: id, check, check_label, unit, label, due_at, done_at,
    done_by, seq, passed, status (done, needs_action, due, missed).
    `records` are `check`, `check_action` and `missed_check` records reaching back at least
    the longest check period before the day."""
    recs = list(records)
    actions = {int(r.data.get("check_seq", 0)) for r in recs if r.kind == "check_action"}
    missed = {
        (str(r.data.get("check")), r.unit, str(r.data.get("day")))
        for r in recs
        if r.kind == "missed_check"
    }
    holding = [u for u in units if u.kind in HOLDING_KINDS]
    if not holding:
        return []
    rows: list[dict[str, Any]] = []
    for spec in specs:
        window = spec.every_days * 86400.0
        targets = (
            [(u.id, u.label or u.id) for u in holding] if spec.per_unit else [(_unit_of(spec), "")]
        )
        for unit, label in targets:
            done: HaccpRecord | None = None
            for r in recs:
                if r.kind != "check" or r.data.get("check") != spec.id:
                    continue
                if spec.per_unit and r.unit != unit:
                    continue
                if spec.every_days == 1:
                    if not day.start <= r.ts < day.end:
                        continue
                    if done is None:  # the first one of the day counts
                        done = r
                elif day.end - window <= r.ts < day.end and (done is None or r.ts > done.ts):
                    done = r
            rows.append(
                _row(spec, unit, label, _due(day, spec, timezone), done, actions, day, missed)
            )
    return rows


def _row(
    spec: CheckSpec,
    unit: str,
    label: str,
    due_at: float,
    rec: HaccpRecord | None,
    actions: set[int],
    day: Day,
    missed: set[tuple[str, str, str]],
) -> dict[str, Any]:
    passed = None if rec is None else rec.data.get("passed")
    if rec is not None:
        status = "needs_action" if passed is False and rec.seq not in actions else "done"
    elif (spec.id, unit, day.name) in missed:
        status = "missed"
    else:
        status = "due"
    return {
        "id": f"{spec.id}:{unit}",
        "check": spec.id,
        "check_label": spec.label or spec.id,
        "unit": unit,
        "label": label,
        "due_at": due_at,
        "done_at": rec.ts if rec else None,
        "done_by": rec.data.get("by") if rec else None,
        "seq": rec.seq if rec else None,
        "passed": passed,
        "status": status,
    }


def newly_missed(rows: Sequence[dict[str, Any]], now: float) -> list[dict[str, Any]]:
    """Rows past their deadline with no check and no missed_check record yet."""
    return [r for r in rows if r["status"] == "due" and r["due_at"] <= now]


def deadlines(specs: Sequence[CheckSpec], day: Day, timezone: str) -> list[float]:
    return sorted({_due(day, s, timezone) for s in specs})


def missed_records(
    conn: Any,
    units: Sequence[Unit],
    specs: Sequence[CheckSpec],
    now: float,
    timezone: str,
) -> list[tuple[str, dict[str, Any]]]:
    """Append a `missed_check` record for every check of yesterday and today past its deadline
    with nothing recorded; inside the caller's transaction. Deadlines before the chain's first
    record (the box was not installed yet) are not counted. Returns (unit, data) per record."""
    from rules.haccp import chain

    first = conn.execute("SELECT min(ts) FROM haccp_records").fetchone()[0]
    if first is None:
        return []
    lookback = max((s.every_days for s in specs), default=1) * 86400.0
    out: list[tuple[str, dict[str, Any]]] = []
    for day in (venue_day(now - 86400, timezone), venue_day(now, timezone)):
        recs = [
            r
            for kind in ("check", "check_action", "missed_check")
            for r in chain.records(conn, day.start - lookback, day.end + 86400, kind=kind)
        ]
        for row in newly_missed(checks_due(units, day, recs, specs, timezone), now):
            if row["due_at"] < first:
                continue
            data = {
                "check": row["check"],
                "check_label": row["check_label"],
                "day": day.name,
                "due_at": row["due_at"],
                "label": row["label"],
            }
            chain.append(conn, now, row["unit"], "missed_check", data)
            out.append((row["unit"], data))
    return out
