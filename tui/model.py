"""The terminal's view model: pure functions from what the API returned to what a tile shows.

No I/O and no Textual here, so the safety logic (what counts as OK, CHECK, ALARM) is tested on
its own. A tile's limit is the one the rules service enforces for a HACCP unit (`GET
/haccp/units`: a ceiling, a floor or a band such as a cellar's 11–13 °C); a device that is not
a HACCP unit (a beer cellar without one, a coffee machine, a combi steamer's core probe) has no
limit on the terminal and is never "above limit". An alarm is one the rules service holds open:
the header counts exactly what the Alarms screen lists; a controller's own alarm relay makes a
tile CHECK, not ALARM."""

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
    """What a unit must stay within (°C): at or below `max_c`, at or above `min_c`, or both."""

    max_c: float | None
    min_c: float | None

    def breach(self, temp_c: float) -> str | None:
        if self.max_c is not None and temp_c > self.max_c:
            return "reason.above_limit"
        if self.min_c is not None and temp_c < self.min_c:
            return "reason.below_limit"
        return None


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


def unit_limits(units: Iterable[HaccpUnit]) -> dict[str, Limit]:
    """Per device, the limits the rules service enforces for its (first) HACCP unit."""
    out: dict[str, Limit] = {}
    for u in units:
        if u.device not in out and (u.max_c is not None or u.min_c is not None):
            out[u.device] = Limit(u.max_c, u.min_c)
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
    limit: Limit | None,
    *,
    connected: bool,
    defrost: bool,
    device_alarm: bool,
    active_alarm: bool,
) -> tuple[Status, str | None]:
    if active_alarm:
        return Status.ALARM, "reason.active_alarm"
    if not connected:
        return Status.OFFLINE, None
    if device_alarm:
        return Status.WARNING, "reason.device_alarm"
    if temp_c is None:
        return Status.NO_DATA, None
    if defrost:
        return Status.SUPPRESSED, "reason.defrost"
    reason = None if limit is None else limit.breach(temp_c)
    if reason is not None:
        return Status.WARNING, reason
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
        limit = (limits or {}).get(d.id)
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


def open_alarms(alarms: Sequence[Alarm] | None) -> int:
    """The one alarm count: what the rules service holds open, as the Alarms screen lists it."""
    return sum(1 for a in alarms or () if a.state != "closed")


# Tiles in order of what needs a person first: alarms, units to check, no signal, units with a
# HACCP check due, then the rest (no data yet, paused for defrost, fine) in the venue's order.
TILE_RANK = {
    Status.ALARM: 0,
    Status.WARNING: 1,
    Status.OFFLINE: 2,
    Status.NO_DATA: 5,
    Status.SUPPRESSED: 5,
    Status.OK: 5,
}
DUE_RANK = 3


def order_tiles(views: Sequence[UnitView], due: Iterable[str] = ()) -> list[UnitView]:
    """`due`: the devices with a HACCP check due or overdue now."""
    due_set = set(due)

    def rank(v: UnitView) -> int:
        r = TILE_RANK[v.status]
        return DUE_RANK if r > DUE_RANK and v.device_id in due_set else r

    return sorted(views, key=rank)  # sorted() is stable: the venue's order within a rank


def check_state(done_at: float | None, due_at: float | None, now: float | None) -> str:
    """done | overdue | due: a check past its deadline and not done is overdue."""
    if done_at is not None:
        return "done"
    if due_at is not None and now is not None and now > due_at:
        return "overdue"
    return "due"


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
