"""Today's manual checks, due and done, derived from the venue's HACCP units and the log.

No schedule is stored: what is due follows from the units (every holding unit gets an opening
check, a probe reading and a closing check each day; the thermometer a calibration each week)
and what is done is whatever `check` records the log already holds. Pure: units, day bounds and
records in, rows out.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from rules.haccp.chain import HaccpRecord
from rules.model import Unit

HOLDING_KINDS = ("cold_hold", "freezer", "hot_hold", "cellar")
# Local time of day each check is due by (hours after midnight).
DUE_BY_H = {"opening": 10.0, "probe": 14.0, "closing": 23.0, "calibration": 10.0}
CALIBRATION_EVERY_S = 7 * 86400.0
THERMOMETER = "thermometer"  # the unit a calibration is recorded against


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


def _due(day: Day, check: str) -> float:
    # Hours after local midnight, on the wall clock (a DST day is 23 or 25 hours long).
    return min(day.end, day.start + DUE_BY_H[check] * 3600)


def checks_due(
    units: Sequence[Unit], day: Day, checks: Iterable[HaccpRecord]
) -> list[dict[str, Any]]:
    """One row per expected check: id, check, unit, label, due_at, done_at, done_by, seq.
    `checks` are the `check` records from a week before the day to its end."""
    done: dict[tuple[str, str], HaccpRecord] = {}
    last_calibration: HaccpRecord | None = None
    for r in checks:
        kind = str(r.data.get("check", ""))
        if kind == "calibration" and r.ts < day.end:
            if last_calibration is None or r.ts > last_calibration.ts:
                last_calibration = r
        elif day.start <= r.ts < day.end:
            done.setdefault((kind, r.unit), r)  # the first one of the day counts
    rows: list[dict[str, Any]] = []
    for u in units:
        if u.kind not in HOLDING_KINDS:
            continue
        for check in ("opening", "probe", "closing"):
            rows.append(
                _row(check, u.id, u.label or u.id, _due(day, check), done.get((check, u.id)))
            )
    if rows:
        recent = last_calibration
        if recent is not None and recent.ts < day.end - CALIBRATION_EVERY_S:
            recent = None
        rows.append(_row("calibration", THERMOMETER, "", _due(day, "calibration"), recent))
    return rows


def _row(
    check: str, unit: str, label: str, due_at: float, rec: HaccpRecord | None
) -> dict[str, Any]:
    return {
        "id": f"{check}:{unit}",
        "check": check,
        "unit": unit,
        "label": label,
        "due_at": due_at,
        "done_at": rec.ts if rec else None,
        "done_by": rec.data.get("by") if rec else None,
        "seq": rec.seq if rec else None,
    }
