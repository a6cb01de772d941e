"""What the HACCP log records by itself: a reading per unit per slot (or a gap), cooling and
reheating state machines, danger-zone time per batch, and beer-line cleaning falling due.

Pure: readings and instants in, `Rec`s out; the service appends them to the chain.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from edge_agent.messages import Reading
from rules.engine import as_float
from rules.haccp.presets import CoolingLimits, ReheatLimits, preset
from rules.model import Unit

# After a long outage, one gap record covers the whole of it rather than one per slot.
MAX_GAP_SLOTS = 8


@dataclass(frozen=True, slots=True)
class Rec:
    ts: float
    unit: str
    kind: str
    data: dict[str, Any]


@dataclass
class DangerZone:
    """Cumulative time a batch spends inside the danger zone, between readings (not per reading)."""

    lo: float
    hi: float
    seconds: float = 0.0
    _last: tuple[float, float] | None = None

    def feed(self, v: float, ts: float) -> None:
        if self._last is not None:
            t0, v0 = self._last
            if self.lo < v0 < self.hi:
                self.seconds += max(0.0, ts - t0)
        self._last = (ts, v)

    def verdict(self) -> str:
        h = self.seconds / 3600
        if h < 2:
            return "refrigerate or use"
        if h <= 4:
            return "use now"
        return "discard"


CoolingPhase = Literal["idle", "stage1", "stage2", "passed", "failed"]


@dataclass
class Cooling:
    """Two-stage cooling: the clock starts when the core passes `start_c` going down; it must be
    below `stage1_c` within `stage1_s` and below `final_c` within `total_s` of the start."""

    limits: CoolingLimits
    phase: CoolingPhase = "idle"
    started: float | None = None
    stage1_at: float | None = None
    last: float | None = None
    failure: str = ""

    def feed(self, v: float, now: float) -> list[tuple[str, dict[str, Any]]]:
        out = self.tick(now)
        lim = self.limits
        idle = self.phase in ("idle", "passed", "failed")
        if idle and self.last is not None and self.last > lim.start_c >= v:
            self.phase, self.started, self.stage1_at, self.failure = "stage1", now, None, ""
            out.append(("started", {"value": v}))
        if self.phase == "stage1" and v <= lim.stage1_c:
            self.phase, self.stage1_at = "stage2", now
            out.append(("stage1_passed", {"value": v, "minutes": self._min(now)}))
        if self.phase == "stage2" and v <= lim.final_c:
            self.phase = "passed"
            out.append(("passed", {"value": v, "minutes": self._min(now)}))
        self.last = v
        return out

    def _min(self, now: float) -> float:
        return round((now - (self.started or now)) / 60, 1)

    def deadline(self) -> float | None:
        if self.started is None:
            return None
        if self.phase == "stage1":
            return self.started + self.limits.stage1_s
        if self.phase == "stage2":
            return self.started + self.limits.total_s
        return None

    def tick(self, now: float) -> list[tuple[str, dict[str, Any]]]:
        d = self.deadline()
        if d is None or now < d:
            return []
        stage = "stage1" if self.phase == "stage1" else "stage2"
        limit = self.limits.stage1_c if stage == "stage1" else self.limits.final_c
        self.phase, self.failure = "failed", stage
        return [
            (
                "failed",
                {"stage": stage, "limit": limit, "value": self.last, "minutes": self._min(now)},
            )
        ]


@dataclass
class Reheat:
    limits: ReheatLimits
    start_below: float
    phase: Literal["idle", "heating", "passed", "failed"] = "idle"
    started: float | None = None
    last: float | None = None

    def feed(self, v: float, now: float) -> list[tuple[str, dict[str, Any]]]:
        out = self.tick(now)
        if self.phase != "heating" and self.last is not None and self.last <= self.start_below < v:
            self.phase, self.started = "heating", now
            out.append(("started", {"value": v}))
        if self.phase == "heating" and v >= self.limits.target_c:
            self.phase = "passed"
            out.append(
                ("passed", {"value": v, "minutes": round((now - (self.started or now)) / 60, 1)})
            )
        self.last = v
        return out

    def deadline(self) -> float | None:
        if self.phase == "heating" and self.started is not None:
            return self.started + self.limits.within_s
        return None

    def tick(self, now: float) -> list[tuple[str, dict[str, Any]]]:
        d = self.deadline()
        if d is None or now < d:
            return []
        self.phase = "failed"
        return [("failed", {"target": self.limits.target_c, "value": self.last})]


@dataclass
class Slot:
    end: float
    values: list[tuple[float, float]] = field(default_factory=list)
    # Why alarms may have been held back during the slot: defrost, door, start-up.
    suppressed: set[str] = field(default_factory=set)


class HaccpMonitor:
    def __init__(self, units: tuple[Unit, ...], region: str, now: float) -> None:
        self.region = region
        self.p = preset(region)
        self.units = units
        self.by_point: dict[tuple[str, str], list[Unit]] = {}
        self.slots: dict[str, Slot] = {}
        self.cooling: dict[str, Cooling] = {}
        self.reheat: dict[str, Reheat] = {}
        self.danger: dict[str, DangerZone] = {}
        self.last_clean: dict[str, float] = {}
        self.clean_due_sent: dict[str, float] = {}
        self._dirty: set[str] = set()
        self.started = now
        # (device, point) of a defrost or door flag -> the units it suppresses and why
        self.flag_points: dict[tuple[str, str], list[tuple[str, str]]] = {}
        self.flags: dict[tuple[str, str], bool] = {}
        for u in units:
            if u.kind == "line_clean":
                self.last_clean.setdefault(u.id, now)
                continue
            self.by_point.setdefault((u.device, u.point), []).append(u)
            for name, point in (("defrost", u.defrost_point), ("door", u.door_point)):
                if point:
                    self.flag_points.setdefault((u.device, point), []).append((u.id, name))
            self.slots[u.id] = self._new_slot(u, self._slot_end(u, now))
            if u.kind == "cooling":
                self.cooling[u.id] = Cooling(self.p.cooling)
            if u.kind == "reheat":
                self.reheat[u.id] = Reheat(self.p.reheat, self.p.danger_zone[0])
            if u.kind in ("cooling", "reheat"):
                self.danger[u.id] = DangerZone(*self.p.danger_zone)

    def _new_slot(
        self, u: Unit, end: float, values: list[tuple[float, float]] | None = None
    ) -> Slot:
        slot = Slot(end, values or [])
        slot.suppressed = {name for (uid, name), on in self.flags.items() if on and uid == u.id}
        if end - u.record_every_s < self.started + u.power_up_s:
            slot.suppressed.add("start-up")
        return slot

    @staticmethod
    def _slot_end(u: Unit, now: float) -> float:
        return (now // u.record_every_s + 1) * u.record_every_s

    # ---- durable state ------------------------------------------------------------------

    def dirty_rows(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for uid in self._dirty:
            row: dict[str, Any] = {}
            if uid in self.slots:
                row["slot_end"] = self.slots[uid].end
            if uid in self.last_clean:
                row["last_clean"] = self.last_clean[uid]
                row["due_sent"] = self.clean_due_sent.get(uid)
            out[f"haccp:{uid}"] = row
        self._dirty.clear()
        return out

    def restore(self, rows: dict[str, Any]) -> None:
        for key, row in rows.items():
            if not key.startswith("haccp:"):
                continue
            uid = key[6:]
            if uid in self.slots and row.get("slot_end") is not None:
                unit = next(u for u in self.units if u.id == uid)
                self.slots[uid] = self._new_slot(unit, float(row["slot_end"]))
            if uid in self.last_clean and row.get("last_clean") is not None:
                self.last_clean[uid] = float(row["last_clean"])
                if row.get("due_sent") is not None:
                    self.clean_due_sent[uid] = float(row["due_sent"])

    # ---- inputs ---------------------------------------------------------------------------

    def on_reading(self, r: Reading, now: float) -> list[Rec]:
        flagged = self.flag_points.get((r.device_id, r.point))
        if flagged:
            on = bool(r.value) if isinstance(r.value, bool | int | float) else False
            for uid, name in flagged:
                self.flags[(uid, name)] = on
                if on and uid in self.slots:
                    self.slots[uid].suppressed.add(name)
        units = self.by_point.get((r.device_id, r.point))
        if not units:
            return []
        v = as_float(r.value)
        if v is None:
            return []
        out = self.tick(now)
        for u in units:
            self.slots[u.id].values.append((now, v))
            if u.id in self.danger:
                self.danger[u.id].feed(v, now)
            if u.id in self.cooling:
                out += self._batch(u, "cooling", self.cooling[u.id].feed(v, now), now)
            if u.id in self.reheat:
                out += self._batch(u, "reheat", self.reheat[u.id].feed(v, now), now)
        return out

    def _batch(
        self, u: Unit, kind: str, steps: list[tuple[str, dict[str, Any]]], now: float
    ) -> list[Rec]:
        out: list[Rec] = []
        for step, data in steps:
            dz = self.danger.get(u.id)
            if step == "started" and dz is not None:
                dz.seconds = 0.0
            if step in ("passed", "failed") and dz is not None:
                out.append(
                    Rec(
                        now,
                        u.id,
                        "danger_zone",
                        {
                            "minutes": round(dz.seconds / 60, 1),
                            "verdict": dz.verdict(),
                            "zone": [dz.lo, dz.hi],
                        },
                    )
                )
            out.insert(0, Rec(now, u.id, kind, {"step": step, **data}))
        return out

    def on_line_clean(self, unit: str, ts: float) -> None:
        if unit in self.last_clean:
            self.last_clean[unit] = ts
            self.clean_due_sent.pop(unit, None)
            self._dirty.add(unit)

    def next_wake(self) -> float | None:
        cands = [s.end for s in self.slots.values()]
        cands += [d for c in self.cooling.values() if (d := c.deadline()) is not None]
        cands += [d for c in self.reheat.values() if (d := c.deadline()) is not None]
        for uid, t in self.last_clean.items():
            if uid not in self.clean_due_sent:
                cands.append(t + self.p.line_clean_days * 86400)
        return min(cands) if cands else None

    def tick(self, now: float) -> list[Rec]:
        out: list[Rec] = []
        for u in self.units:
            slot = self.slots.get(u.id)
            if slot is not None and now >= slot.end:
                out += self._close_slots(u, slot, now)
            if u.id in self.cooling:
                out += self._batch(u, "cooling", self.cooling[u.id].tick(now), now)
            if u.id in self.reheat:
                out += self._batch(u, "reheat", self.reheat[u.id].tick(now), now)
            if u.id in self.last_clean and u.id not in self.clean_due_sent:
                due = self.last_clean[u.id] + self.p.line_clean_days * 86400
                if now >= due:
                    self.clean_due_sent[u.id] = now
                    self._dirty.add(u.id)
                    out.append(
                        Rec(
                            now,
                            u.id,
                            "line_clean_due",
                            {
                                "last_clean": self.last_clean[u.id],
                                "days": round((now - self.last_clean[u.id]) / 86400, 1),
                            },
                        )
                    )
        return out

    def _close_slots(self, u: Unit, slot: Slot, now: float) -> list[Rec]:
        out: list[Rec] = []
        every = u.record_every_s
        start = slot.end - every
        inside = [(t, v) for t, v in slot.values if start <= t < slot.end]
        if inside:
            t, v = inside[-1]
            vals = [x for _, x in inside]
            data: dict[str, Any] = {
                "device": u.device,
                "point": u.point,
                "value": v,
                "at": t,
                "min": min(vals),
                "max": max(vals),
                "n": len(vals),
            }
            if slot.suppressed:
                data["suppressed"] = sorted(slot.suppressed)
            out.append(Rec(slot.end, u.id, "reading", data))
        else:
            out.append(Rec(slot.end, u.id, "gap", {"from": start, "to": slot.end}))
        end = slot.end + every
        if now >= end:
            # Whole slots with nothing (the box was off, the sensor silent): gap records.
            missed = int((now - slot.end) // every)
            if missed <= MAX_GAP_SLOTS:
                for i in range(missed):
                    a = slot.end + i * every
                    out.append(Rec(a + every, u.id, "gap", {"from": a, "to": a + every}))
            else:
                out.append(
                    Rec(
                        slot.end + missed * every,
                        u.id,
                        "gap",
                        {"from": slot.end, "to": slot.end + missed * every},
                    )
                )
            end = slot.end + (missed + 1) * every
        self.slots[u.id] = self._new_slot(
            u, end, [(t, v) for t, v in slot.values if t >= end - every]
        )
        self._dirty.add(u.id)
        return out
