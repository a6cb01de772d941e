"""The inspector's report from the HACCP log: per unit, the daily log, excursions with their
corrective actions, gaps, and the checks done; as CSV or PDF."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import sqlite3
import zoneinfo
from dataclasses import dataclass, field
from typing import Any

from rules.haccp import chain
from rules.haccp.pdf import Line, render


@dataclass
class Day:
    date: str
    readings: int = 0
    low: float | None = None
    high: float | None = None
    am: float | None = None
    pm: float | None = None
    gaps: int = 0
    gap_minutes: float = 0.0
    excursions: int = 0
    checks: int = 0


@dataclass
class UnitReport:
    unit: str
    days: dict[str, Day] = field(default_factory=dict)
    excursions: dict[int, dict[str, Any]] = field(default_factory=dict)
    gaps: list[tuple[float, float]] = field(default_factory=list)
    checks: list[chain.HaccpRecord] = field(default_factory=list)
    other: list[chain.HaccpRecord] = field(default_factory=list)


@dataclass
class Report:
    start: float
    end: float
    tz: zoneinfo.ZoneInfo
    venue: str
    verification: chain.Verification
    units: dict[str, UnitReport]
    records: list[chain.HaccpRecord]

    def local(self, ts: float | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
        if ts is None:
            return "-"
        return dt.datetime.fromtimestamp(ts, self.tz).strftime(fmt)


def build(
    conn: sqlite3.Connection, start: float, end: float, tz: str = "UTC", venue: str = ""
) -> Report:
    zone = zoneinfo.ZoneInfo(tz)
    recs = list(chain.records(conn, start, end))
    rep = Report(start, end, zone, venue, chain.verify(conn), {}, recs)
    for r in recs:
        u = rep.units.setdefault(r.unit, UnitReport(r.unit))
        local = dt.datetime.fromtimestamp(r.ts, zone)
        day = u.days.setdefault(local.strftime("%Y-%m-%d"), Day(local.strftime("%Y-%m-%d")))
        d = r.data
        if r.kind == "reading":
            v = float(d["value"])
            day.readings += 1
            day.low = v if day.low is None else min(day.low, float(d.get("min", v)))
            day.high = v if day.high is None else max(day.high, float(d.get("max", v)))
            if local.hour < 12 and day.am is None:
                day.am = v
            if local.hour >= 12:
                day.pm = v
        elif r.kind == "gap":
            day.gaps += 1
            day.gap_minutes += (d["to"] - d["from"]) / 60
            u.gaps.append((d["from"], d["to"]))
        elif r.kind in ("excursion_start", "acknowledged", "corrective_action", "excursion_end"):
            ex = u.excursions.setdefault(int(d["alarm_id"]), {"alarm_id": d["alarm_id"]})
            ex[r.kind] = {"ts": r.ts, **d}
            if r.kind == "excursion_start":
                day.excursions += 1
        elif r.kind == "check":
            day.checks += 1
            u.checks.append(r)
        else:
            u.other.append(r)
    return rep


def to_csv(rep: Report) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["seq", "local_time", "unit", "kind", "value", "details", "hash"])
    for r in rep.records:
        value = r.data.get("value", "")
        details = {k: v for k, v in r.data.items() if k != "value"}
        w.writerow(
            [
                r.seq,
                rep.local(r.ts, "%Y-%m-%d %H:%M:%S"),
                r.unit,
                r.kind,
                value,
                json.dumps(details, sort_keys=True, ensure_ascii=False),
                r.hash,
            ]
        )
    return buf.getvalue()


def _f(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def to_pdf(rep: Report) -> bytes:
    L: list[Line] = []

    def h(text: str, size: float = 12) -> None:
        L.append(Line(text, "F1", size))

    def t(text: str) -> None:
        L.append(Line(text))

    h(f"HACCP temperature records - {rep.venue}".rstrip(" -"), 15)
    t(f"Period: {rep.local(rep.start)} to {rep.local(rep.end)} ({rep.tz.key})")
    v = rep.verification
    t(
        f"Record chain: {'INTACT' if v.ok else 'BROKEN at record ' + str(v.broken_seq)}"
        f" ({v.records} records verified{'' if v.ok else ': ' + v.reason})"
    )
    t("")
    for unit in sorted(rep.units):
        u = rep.units[unit]
        h(f"Unit: {unit}")
        h("Daily log", 10)
        t(
            f"{'date':<11}{'AM':>7}{'PM':>7}{'min':>7}{'max':>7}{'recs':>6}{'gaps':>6}"
            f"{'gap min':>9}{'excur':>7}{'checks':>8}"
        )
        for day in sorted(u.days.values(), key=lambda d: d.date):
            t(
                f"{day.date:<11}{_f(day.am):>7}{_f(day.pm):>7}{_f(day.low):>7}{_f(day.high):>7}"
                f"{day.readings:>6}{day.gaps:>6}{day.gap_minutes:>9.0f}{day.excursions:>7}"
                f"{day.checks:>8}"
            )
        h("Excursions and corrective actions", 10)
        if not u.excursions:
            t("none")
        for ex in u.excursions.values():
            s = ex.get("excursion_start", {})
            e = ex.get("excursion_end", {})
            a = ex.get("acknowledged", {})
            c = ex.get("corrective_action", {})
            t(f"#{ex['alarm_id']} {rep.local(s.get('ts'))} {s.get('message', '')}")
            t(
                f"   limit {_f(s.get('limit'))}  peak {_f(e.get('peak'))}  "
                f"over limit {e.get('minutes_over_limit', '-')} min  ended {rep.local(e.get('ts'))}"
            )
            t(f"   acknowledged by {a.get('by', '-')} at {rep.local(a.get('ts'))}")
            if c:
                t(
                    f"   action: {c.get('action')} / product {c.get('disposition')} / "
                    f"verified {_f(c.get('verification'))} by {c.get('by')} "
                    f"at {rep.local(c.get('ts'))}"
                )
            else:
                t("   action: NOT RECORDED")
        h("Gaps in monitoring (no data; nothing interpolated)", 10)
        if not u.gaps:
            t("none")
        for a_, b_ in u.gaps:
            t(f"   {rep.local(a_)} to {rep.local(b_)} ({(b_ - a_) / 60:.0f} min)")
        h("Checks done", 10)
        if not u.checks:
            t("none")
        for r in u.checks:
            d = r.data
            extra = ", ".join(f"{k}={val}" for k, val in d.items() if k not in ("check", "by"))
            t(f"   {rep.local(r.ts)} {d.get('check')} by {d.get('by')} {extra}")
        if u.other:
            h("Cooling, reheating, line cleaning", 10)
            for r in u.other:
                t(f"   {rep.local(r.ts)} {r.kind} " + json.dumps(r.data, sort_keys=True)[:80])
        t("")
    return render(L, f"HACCP report {rep.venue}")
