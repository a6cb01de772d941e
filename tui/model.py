"""The terminal's view model: pure functions from what the API returned to what a tile shows.

No I/O and no Textual here, so the safety logic (what counts as OK, CHECK, ALARM) is tested on
its own. A unit's limit is the one the rules service enforces (`GET /haccp/units`) when the
device is a HACCP unit; otherwise a view-side default: a unit regulating below -10 °C is a
freezer (≤ -15 °C), one at 50 °C or more is hot-hold (≥ 63 °C), anything else chilled (≤ 5 °C,
the UK recommended ceiling; 8 °C is the legal one)."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from tui.api_client import Alarm, Device, HaccpUnit, Reading

TEMP_NAMES = ("room_temp", "air_temp", "cabinet_temp", "temperature", "temp", "core_temp")
BATTERY_NAMES = ("battery", "battery_pct", "battery_level")
RSSI_NAMES = ("rssi", "signal", "signal_dbm")
DEFROST_NAMES = ("defrost_active", "defrost")
STOCK_KINDS = ("weight", "volume", "level")
SPARK = "▁▂▃▄▅▆▇█"


class Status(enum.Enum):
    # Ordered by urgency: the summary and sorting use this order.
    ALARM = "alarm"
    WARNING = "warning"
    OFFLINE = "offline"
    SUPPRESSED = "suppressed"
    NO_DATA = "no_data"
    OK = "ok"


ICONS = {
    Status.OK: "✔",
    Status.WARNING: "▲",
    Status.ALARM: "✖",
    Status.SUPPRESSED: "⏸",
    Status.OFFLINE: "⚠",
    Status.NO_DATA: "…",
}


@dataclass(frozen=True, slots=True)
class Limit:
    value_c: float
    upper: bool  # True: must stay at or below; False: must stay at or above


@dataclass(frozen=True, slots=True)
class UnitView:
    device_id: str
    label: str
    zone: str
    temp: float | None  # in the venue's unit
    unit: str  # "°C" or "°F"
    limit: Limit | None
    status: Status
    reason: str | None  # an i18n key ("reason.defrost") or None
    spark: str


def c_to_venue(value_c: float, unit: str) -> float:
    return value_c * 9 / 5 + 32 if unit == "F" else value_c


def unit_symbol(unit: str) -> str:
    return "°F" if unit == "F" else "°C"


def limit_for(setpoint_c: float | None) -> Limit:
    if setpoint_c is None:
        return Limit(5.0, True)
    if setpoint_c <= -10:
        return Limit(-15.0, True)
    if setpoint_c >= 50:
        return Limit(63.0, False)
    return Limit(5.0, True)


def unit_limits(units: Iterable[HaccpUnit]) -> dict[str, Limit]:
    """Per device, the HACCP limit the rules service enforces; an upper limit wins over a lower
    one for a band (a cellar's 11–13 °C shows ≤ 13 °C: warm beer is the usual failure)."""
    out: dict[str, Limit] = {}
    for u in units:
        if u.device in out:
            continue
        if u.max_c is not None:
            out[u.device] = Limit(u.max_c, True)
        elif u.min_c is not None:
            out[u.device] = Limit(u.min_c, False)
    return out


def temperature_point(points: Mapping[str, Reading], kinds: Mapping[str, str]) -> str | None:
    """The unit's air/cabinet temperature: a known name first, then the first temperature."""
    for name in TEMP_NAMES:
        if name in points:
            return name
    candidates = sorted(
        p for p, r in points.items() if kinds.get(p) == "temperature" or r.unit in ("°C", "°F")
    )
    return candidates[0] if candidates else None


def point_of_kind(
    points: Mapping[str, Reading], kinds: Mapping[str, str], kind: str, names: Iterable[str]
) -> Reading | None:
    for p, r in sorted(points.items()):
        if kinds.get(p) == kind:
            return r
    for name in names:
        if name in points:
            return points[name]
    return None


def _truthy(r: Reading | None) -> bool:
    return r is not None and r.value not in (None, 0, False, "0", "false", "off")


def _num(r: Reading | None) -> float | None:
    if r is None or isinstance(r.value, bool | str) or r.value is None:
        return None
    return float(r.value)


def _to_c(value: float, unit: str) -> float:
    return (value - 32) * 5 / 9 if unit == "°F" else value


def classify(
    temp_c: float | None,
    limit: Limit,
    *,
    connected: bool,
    defrost: bool,
    device_alarm: bool,
    active_alarm: bool,
) -> tuple[Status, str | None]:
    if not connected and temp_c is None:
        return Status.OFFLINE, None
    if active_alarm:
        return Status.ALARM, "reason.active_alarm"
    if device_alarm:
        return Status.ALARM, "reason.device_alarm"
    if not connected:
        return Status.OFFLINE, None
    if temp_c is None:
        return Status.NO_DATA, None
    if defrost:
        return Status.SUPPRESSED, "reason.defrost"
    if limit.upper and temp_c > limit.value_c:
        return Status.WARNING, "reason.above_limit"
    if not limit.upper and temp_c < limit.value_c:
        return Status.WARNING, "reason.below_limit"
    return Status.OK, None


def sparkline(values: Sequence[float], width: int = 24) -> str:
    """Bucket means over the series, scaled to the series' own range."""
    if not values:
        return ""
    n = min(width, len(values))
    buckets = [values[i * len(values) // n : (i + 1) * len(values) // n] for i in range(n)]
    means = [sum(b) / len(b) for b in buckets if b]
    lo, hi = min(means), max(means)
    if hi - lo < 1e-9:
        return SPARK[len(SPARK) // 2 - 1] * len(means)
    return "".join(SPARK[min(7, int((m - lo) / (hi - lo) * 8))] for m in means)


def unit_views(
    devices: Sequence[Device],
    latest: Sequence[Reading],
    *,
    unit: str,
    kinds: Mapping[str, Mapping[str, str]],
    history: Mapping[str, Sequence[float]],
    alarms: Sequence[Alarm] = (),
    limits: Mapping[str, Limit] | None = None,
) -> list[UnitView]:
    """One tile per enabled device that reports a temperature (or has not reported yet)."""
    by_dev: dict[str, dict[str, Reading]] = {}
    for r in latest:
        by_dev.setdefault(r.device, {})[r.point] = r
    alarmed = {a.device for a in alarms if a.condition_present}
    views = []
    for d in devices:
        if not d.enabled:
            continue
        points = by_dev.get(d.id, {})
        dev_kinds = kinds.get(d.profile, {})
        tp = temperature_point(points, dev_kinds)
        if points and tp is None:
            continue  # not a monitored unit (a plug, a scale): other screens show it
        temp_c = None
        if tp is not None and (v := _num(points[tp])) is not None:
            temp_c = _to_c(v, points[tp].unit)
        setpoint = point_of_kind(points, dev_kinds, "setpoint", ("setpoint",))
        sp = _num(setpoint)
        limit = (limits or {}).get(d.id) or limit_for(
            None if sp is None or setpoint is None else _to_c(sp, setpoint.unit)
        )
        status, reason = classify(
            temp_c,
            limit,
            connected=d.connected,
            defrost=_truthy(point_of_kind(points, dev_kinds, "defrost_active", DEFROST_NAMES)),
            device_alarm=_truthy(point_of_kind(points, dev_kinds, "alarm", ("alarm",))),
            active_alarm=d.id in alarmed,
        )
        views.append(
            UnitView(
                d.id,
                d.label,
                d.zone,
                None if temp_c is None else c_to_venue(temp_c, unit),
                unit_symbol(unit),
                limit,
                status,
                reason,
                sparkline(history.get(d.id, ())),
            )
        )
    return views


def summary_counts(views: Sequence[UnitView]) -> dict[Status, int]:
    counts = dict.fromkeys(Status, 0)
    for v in views:
        counts[v.status] += 1
    return counts


SEVERITY_RANK = {"critical": 0, "high": 1, "normal": 2, "low": 3}
# Unacknowledged first; then what still needs a corrective action; then the rest.
STATE_RANK = {"active": 0, "acknowledged": 1, "cleared": 2, "actioned": 3, "closed": 4}


def sort_alarms(alarms: Iterable[Alarm]) -> list[Alarm]:
    """Unacknowledged first, then by severity, then oldest first (the one waiting longest)."""
    return sorted(
        alarms,
        key=lambda a: (STATE_RANK.get(a.state, 5), SEVERITY_RANK.get(a.severity, 4), a.raised_at),
    )


@dataclass(frozen=True, slots=True)
class StockItem:
    device_id: str
    label: str
    point: str
    value: float
    unit: str
    ts: float


def stock_items(
    devices: Sequence[Device], latest: Sequence[Reading], kinds: Mapping[str, Mapping[str, str]]
) -> list[StockItem]:
    labels = {d.id: (d.label, d.profile) for d in devices}
    out = []
    for r in latest:
        label, profile = labels.get(r.device, (r.device, ""))
        kind = kinds.get(profile, {}).get(r.point)
        is_stock = kind in STOCK_KINDS or (kind is None and r.unit in ("kg", "g", "l", "L"))
        if is_stock and (v := _num(r)) is not None:
            out.append(StockItem(r.device, label, r.point, v, r.unit, r.ts))
    return sorted(out, key=lambda s: (s.label, s.point))
