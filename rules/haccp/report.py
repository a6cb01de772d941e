"""The inspector's report from the HACCP chain alone: per unit its label, type and limits, the
daily AM/PM log with min/max (suppression noted), excursions with start, end, duration, peak and
corrective action, checks done and missed, gaps, staff names; then the manager's sign-offs, the
chain's status with its last anchor, when it was generated and how the monitoring works.

`build` takes records (from the box's store or the cloud's copy), so the cloud can produce the
same report when the box is gone. `to_pdf` lays it out with fpdf2; `to_csv` gives one readable
line per record (ISO times with the zone, °C, labels; no JSON).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from rules.haccp import signoff as so
from rules.haccp.chain import HaccpRecord
from rules.haccp.report_text import TEXT


@dataclass
class Day:
    date: str
    readings: int = 0
    low: float | None = None
    high: float | None = None
    am: float | None = None
    am_at: float | None = None
    pm: float | None = None
    pm_at: float | None = None
    gaps: int = 0
    gap_minutes: float = 0.0
    excursions: int = 0
    # why alarms were held back when the day's maximum (or minimum) was recorded
    high_suppressed: tuple[str, ...] = ()
    low_suppressed: tuple[str, ...] = ()


@dataclass
class Excursion:
    alarm_id: int
    start: float | None = None
    end: float | None = None
    limit: float | None = None
    value: float | None = None
    peak: float | None = None
    message: str = ""
    acked_by: str = ""
    acked_at: float | None = None
    action: str = ""
    disposition: str = ""
    verification: float | None = None
    action_by: str = ""
    action_at: float | None = None

    @property
    def worst(self) -> float | None:
        vals = [v for v in (self.peak, self.value) if v is not None]
        if not vals:
            return None
        low_limit = self.limit is not None and self.value is not None and self.value < self.limit
        return min(vals) if low_limit else max(vals)


@dataclass
class UnitReport:
    unit: str
    config: dict[str, Any] = field(default_factory=dict)
    days: dict[str, Day] = field(default_factory=dict)
    excursions: dict[int, Excursion] = field(default_factory=dict)
    gaps: list[tuple[float, float]] = field(default_factory=list)
    checks: list[HaccpRecord] = field(default_factory=list)
    missed: list[HaccpRecord] = field(default_factory=list)
    actions: dict[int, HaccpRecord] = field(default_factory=dict)
    other: list[HaccpRecord] = field(default_factory=list)

    @property
    def label(self) -> str:
        return str(self.config.get("label") or self.unit)


@dataclass
class ChainStatus:
    ok: bool
    records: int
    broken_seq: int | None = None
    reason: str = ""
    anchor_count: int | None = None
    anchor_at: float | None = None
    anchor_note: str = ""


@dataclass
class Report:
    start: float
    end: float
    tz: zoneinfo.ZoneInfo
    venue: str
    chain: ChainStatus
    units: dict[str, UnitReport]
    records: list[HaccpRecord]
    generated_at: float
    signoffs: list[dict[str, Any]]
    source: str = "box"
    lang: str = "en"

    def t(self, key: str) -> str:
        return TEXT[self.lang].get(key, TEXT["en"][key])

    def local(self, ts: float | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
        if ts is None:
            return "-"
        return dt.datetime.fromtimestamp(ts, self.tz).strftime(fmt)

    def iso(self, ts: float | None) -> str:
        if ts is None:
            return ""
        return dt.datetime.fromtimestamp(ts, self.tz).isoformat(timespec="seconds")


def _f(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v)


def build(
    records: Iterable[HaccpRecord],
    start: float,
    end: float,
    chain: ChainStatus,
    tz: str = "UTC",
    venue: str = "",
    generated_at: float = 0.0,
    lang: str = "en",
    source: str = "box",
    signoff_days: int = 7,
) -> Report:
    """`records` may reach before `start` (unit descriptions are taken from the latest one
    before the period's end); only records inside [start, end) are reported."""
    zone = zoneinfo.ZoneInfo(tz)
    everything = list(records)
    configs: dict[str, dict[str, Any]] = {}
    for r in everything:
        if r.kind == "unit_config" and r.ts < end:
            configs[r.unit] = r.data
    recs = [r for r in everything if start <= r.ts < end]
    rep = Report(start, end, zone, venue, chain, {}, recs, generated_at, [], source, lang)
    for uid, cfg in configs.items():
        rep.units[uid] = UnitReport(uid, cfg)
    for r in recs:
        if r.kind in ("unit_config", "signoff"):
            continue
        u = rep.units.setdefault(r.unit, UnitReport(r.unit, configs.get(r.unit, {})))
        local = dt.datetime.fromtimestamp(r.ts, zone)
        name = local.strftime("%Y-%m-%d")
        d = r.data
        if r.kind == "reading":
            v = _f(d.get("value"))
            if v is None:
                continue
            day = u.days.setdefault(name, Day(name))
            day.readings += 1
            lo, hi = _f(d.get("min")), _f(d.get("max"))
            lo = v if lo is None else lo
            hi = v if hi is None else hi
            sup = d.get("suppressed")
            why = tuple(str(x) for x in sup) if isinstance(sup, list) else ()
            if day.low is None or lo < day.low:
                day.low, day.low_suppressed = lo, why
            if day.high is None or hi > day.high:
                day.high, day.high_suppressed = hi, why
            # The twice-daily log: the recorded reading nearest 09:00 and nearest 16:00.
            hour = local.hour + local.minute / 60
            if hour < 12.5 and (
                day.am_at is None or abs(hour - AM_H) < _dist(day.am_at, AM_H, zone)
            ):
                day.am, day.am_at = v, r.ts
            if hour >= 12.5 and (
                day.pm_at is None or abs(hour - PM_H) < _dist(day.pm_at, PM_H, zone)
            ):
                day.pm, day.pm_at = v, r.ts
        elif r.kind == "gap":
            a, b = _f(d.get("from")), _f(d.get("to"))
            if a is None or b is None:
                continue
            day = u.days.setdefault(name, Day(name))
            day.gaps += 1
            day.gap_minutes += (b - a) / 60
            u.gaps.append((a, b))
        elif r.kind in ("excursion_start", "acknowledged", "corrective_action", "excursion_end"):
            aid = d.get("alarm_id")
            if not isinstance(aid, int):
                continue
            ex = u.excursions.setdefault(aid, Excursion(aid))
            if r.kind == "excursion_start":
                ex.start = _f(d.get("since")) or r.ts
                ex.value, ex.limit = _f(d.get("value")), _f(d.get("limit"))
                ex.message = str(d.get("message") or "")
                u.days.setdefault(name, Day(name)).excursions += 1
            elif r.kind == "excursion_end":
                ex.end = r.ts
                ex.peak = _pick(ex.peak, _f(d.get("peak")), ex)
                ex.limit = ex.limit if ex.limit is not None else _f(d.get("limit"))
            elif r.kind == "acknowledged":
                ex.acked_by, ex.acked_at = str(d.get("by") or ""), r.ts
            else:
                ex.action, ex.action_at = str(d.get("action") or ""), r.ts
                ex.disposition = str(d.get("disposition") or "")
                ex.verification = _f(d.get("verification"))
                ex.action_by = str(d.get("by") or "")
                ex.peak = _pick(ex.peak, _f(d.get("peak")), ex)
        elif r.kind == "check":
            u.checks.append(r)
        elif r.kind == "check_action":
            seq = d.get("check_seq")
            if isinstance(seq, int):
                u.actions[seq] = r
        elif r.kind == "missed_check":
            u.missed.append(r)
        else:
            u.other.append(r)
    rep.signoffs = so.periods(everything, start, end, tz, signoff_days, generated_at or end)
    return rep


AM_H, PM_H = 9.0, 16.0


def _dist(ts: float, target_h: float, zone: zoneinfo.ZoneInfo) -> float:
    t = dt.datetime.fromtimestamp(ts, zone)
    return abs(t.hour + t.minute / 60 - target_h)


def _pick(cur: float | None, new: float | None, ex: Excursion) -> float | None:
    if new is None:
        return cur
    if cur is None:
        return new
    low = ex.limit is not None and ex.value is not None and ex.value < ex.limit
    return min(cur, new) if low else max(cur, new)


# ---- CSV ------------------------------------------------------------------------------------


def _c(v: float | None) -> str:
    return "" if v is None else f"{v:.1f}"


def _summary(r: HaccpRecord, rep: Report) -> tuple[str, str, str, str]:
    """(value °C, limit °C, result, details) in words an inspector reads."""
    d = r.data
    limit = ""
    if _f(d.get("limit")) is not None:
        limit = _c(_f(d.get("limit")))
    elif _f(d.get("limit_max")) is not None or _f(d.get("limit_min")) is not None:
        limit = f"{_c(_f(d.get('limit_min')))}..{_c(_f(d.get('limit_max')))}".strip(".")
    value = _c(_f(d.get("value")))
    result = ""
    if isinstance(d.get("passed"), bool):
        result = rep.t("pass") if d["passed"] else rep.t("fail")
    parts: list[str] = []
    k = r.kind
    if k == "reading":
        parts.append(f"min {_c(_f(d.get('min')))} max {_c(_f(d.get('max')))}, n={d.get('n', '')}")
    elif k == "gap":
        parts.append(
            f"{rep.t('no_data')} {rep.iso(_f(d.get('from')))} - {rep.iso(_f(d.get('to')))}"
        )
    elif k in ("check", "missed_check"):
        parts.append(str(d.get("check_label") or d.get("check") or ""))
        failed = d.get("failed")
        if isinstance(failed, list) and failed:
            parts.append(f"{rep.t('failed_items')}: {', '.join(str(x) for x in failed)}")
        if d.get("notes"):
            parts.append(str(d["notes"]))
    elif k in ("corrective_action", "check_action"):
        parts.append(f"{d.get('action', '')}; {rep.t('product')}: {d.get('disposition', '')}")
        if _f(d.get("verification")) is not None:
            parts.append(f"{rep.t('verified')} {_c(_f(d.get('verification')))} °C")
    elif k == "excursion_start":
        parts.append(str(d.get("message") or ""))
    elif k == "excursion_end":
        parts.append(
            f"{rep.t('peak')} {_c(_f(d.get('peak')))} °C, "
            f"{d.get('minutes_over_limit', '')} min {rep.t('over_limit')}"
        )
    elif k == "signoff":
        rv = d.get("review") or {}
        parts.append(f"{d.get('period', '')}: " + ", ".join(f"{a}={b}" for a, b in rv.items()))
    elif k == "unit_config":
        parts.append(
            f"{d.get('type', '')}, {d.get('device', '')}/{d.get('point', '')}, "
            f"max {_c(_f(d.get('max_c')))} min {_c(_f(d.get('min_c')))}"
        )
    else:
        for key in ("step", "verdict", "minutes", "days"):
            if key in d:
                parts.append(f"{key} {d[key]}")
    return value, limit, result, "; ".join(p for p in parts if p)


def to_csv(rep: Report) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(
        [
            "seq",
            "time",
            "unit",
            "unit_label",
            "record",
            "value_c",
            "limit_c",
            "result",
            "by",
            "details",
            "hash",
        ]
    )
    for r in rep.records:
        value, limit, result, details = _summary(r, rep)
        label = rep.units[r.unit].label if r.unit in rep.units else r.unit
        w.writerow(
            [
                r.seq,
                rep.iso(r.ts),
                r.unit,
                label,
                r.kind,
                value,
                limit,
                result,
                r.data.get("by", ""),
                details,
                r.hash,
            ]
        )
    return buf.getvalue()


def to_pdf(rep: Report) -> bytes:
    from rules.haccp.report_pdf import render

    return render(rep)
