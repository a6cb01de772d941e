"""Manager verification: each period (a week by default) a manager reviews the excursions,
failed and missed checks, and signs the period off with a PIN. The sign-off is a record in
the chain; a period that ended without one is flagged. Pure: records and bounds in, rows out.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from rules.haccp.chain import HaccpRecord

VENUE = "venue"  # the unit sign-offs are recorded against


@dataclass(frozen=True, slots=True)
class Period:
    name: str  # 2026-W48 for a week, 2026-11-30 for a day
    start: float
    end: float


def period_of(ts: float, timezone: str, days: int = 7) -> Period:
    """The sign-off period holding `ts`: a local day, or a week from Monday (ISO week)."""
    tz = zoneinfo.ZoneInfo(timezone)
    d = dt.datetime.fromtimestamp(ts, tz).date()
    if days == 1:
        first, name = d, d.isoformat()
    else:
        first = d - dt.timedelta(days=d.weekday())
        iso = first.isocalendar()
        name = f"{iso.year}-W{iso.week:02d}"
    start = dt.datetime.combine(first, dt.time(), tz)
    end = dt.datetime.combine(first + dt.timedelta(days=1 if days == 1 else 7), dt.time(), tz)
    return Period(name, start.timestamp(), end.timestamp())


def parse_period(name: str, timezone: str, days: int = 7) -> Period:
    """`2026-W48` (or a date inside the week), or a date for daily sign-off."""
    try:
        if "-W" in name:
            year, week = name.split("-W")
            first = dt.date.fromisocalendar(int(year), int(week), 1)
        else:
            first = dt.date.fromisoformat(name)
    except ValueError as exc:
        raise ValueError(f"period {name!r} is not YYYY-Www or YYYY-MM-DD") from exc
    tz = zoneinfo.ZoneInfo(timezone)
    return period_of(dt.datetime.combine(first, dt.time(12), tz).timestamp(), timezone, days)


def review(records: Iterable[HaccpRecord], p: Period) -> dict[str, Any]:
    """What the manager signs for: counts over the period, and what is still open."""
    excursions: set[int] = set()
    actioned: set[int] = set()
    failed_checks: set[int] = set()
    check_actions: set[int] = set()
    missed = gaps = 0
    for r in records:
        if not p.start <= r.ts < p.end:
            continue
        d = r.data
        if r.kind == "excursion_start":
            excursions.add(int(d.get("alarm_id", 0)))
        elif r.kind == "corrective_action":
            actioned.add(int(d.get("alarm_id", 0)))
        elif r.kind == "check" and d.get("passed") is False:
            failed_checks.add(r.seq)
        elif r.kind == "check_action":
            check_actions.add(int(d.get("check_seq", 0)))
        elif r.kind == "missed_check":
            missed += 1
        elif r.kind == "gap":
            gaps += 1
    return {
        "excursions": len(excursions),
        "excursions_without_action": len(excursions - actioned),
        "failed_checks": len(failed_checks),
        "failed_checks_without_action": len(failed_checks - check_actions),
        "missed_checks": missed,
        "gaps": gaps,
    }


def periods(
    records: Iterable[HaccpRecord],
    start: float,
    end: float,
    timezone: str,
    days: int = 7,
    now: float | None = None,
) -> list[dict[str, Any]]:
    """Each period overlapping [start, end): signed (by whom, when), or flagged when it has
    ended (by `now`) without a sign-off."""
    recs = list(records)
    signed: dict[str, HaccpRecord] = {}
    for r in recs:
        if r.kind == "signoff":
            signed.setdefault(str(r.data.get("period", "")), r)
    out: list[dict[str, Any]] = []
    p = period_of(start, timezone, days)
    while p.start < end:
        s = signed.get(p.name)
        out.append(
            {
                "period": p.name,
                "from": p.start,
                "to": p.end,
                "signed": s is not None,
                "by": s.data.get("by") if s else None,
                "at": s.ts if s else None,
                "seq": s.seq if s else None,
                "ended": p.end <= (end if now is None else now),
                "flagged": s is None and p.end <= (end if now is None else now),
                "review": review(recs, p),
            }
        )
        p = period_of(p.end + 1, timezone, days)
    return out
