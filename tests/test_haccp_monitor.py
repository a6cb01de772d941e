"""HACCP monitor: recorded readings per slot, explicit gaps (never interpolated), the two-stage
cooling state machine, reheating, danger-zone time per batch, beer-line cleaning due."""

from __future__ import annotations

from edge_agent.messages import Reading
from rules.haccp.monitor import Cooling, DangerZone, HaccpMonitor
from rules.haccp.presets import PRESETS
from rules.model import Unit

T0 = 1_750_000_500.0  # not on a slot boundary
FRIDGE = Unit("walk-in", "cold_hold", "walkin", record_every_s=900)


def rd(v: float | bool, dev: str = "walkin", point: str = "room_temp") -> Reading:
    return Reading(dev, point, v, 0.0)


def test_one_recorded_reading_per_slot_and_a_gap_for_a_silent_slot() -> None:
    m = HaccpMonitor((FRIDGE,), "uk", T0)
    first_end = (T0 // 900 + 1) * 900
    assert m.next_wake() == first_end
    m.on_reading(rd(3.0), T0 + 10)
    m.on_reading(rd(3.6), T0 + 60)
    recs = m.tick(first_end)
    assert [(r.kind, r.data["value"], r.data["max"]) for r in recs] == [("reading", 3.6, 3.6)]
    # the next slot hears nothing: a gap record, no invented value
    recs = m.tick(first_end + 900)
    assert [(r.kind, r.data) for r in recs] == [("gap", {"from": first_end, "to": first_end + 900})]
    m.on_reading(rd(4.0), first_end + 1000)
    assert [r.kind for r in m.tick(first_end + 1800)] == ["reading"]


def test_an_outage_longer_than_several_slots_is_one_gap_record() -> None:
    m = HaccpMonitor((FRIDGE,), "uk", T0)
    first_end = (T0 // 900 + 1) * 900
    recs = m.tick(first_end + 86400)  # the box was off for a day
    gaps = [r for r in recs if r.kind == "gap"]
    assert gaps[0].data == {"from": first_end - 900, "to": first_end}
    assert gaps[-1].data["to"] >= first_end + 86400 - 900
    assert len(gaps) == 2
    assert all(r.kind == "gap" for r in recs)


def test_slot_position_survives_a_restart_and_the_downtime_becomes_gaps() -> None:
    m = HaccpMonitor((FRIDGE,), "uk", T0)
    first_end = (T0 // 900 + 1) * 900
    m.on_reading(rd(3.0), T0 + 10)
    m.tick(first_end)
    rows = m.dirty_rows()
    m2 = HaccpMonitor((FRIDGE,), "uk", first_end + 2000)
    m2.restore(rows)
    recs = m2.tick(first_end + 2000)
    assert [(r.kind, r.data["from"]) for r in recs] == [
        ("gap", first_end),
        ("gap", first_end + 900),
    ]


US = PRESETS["us"].cooling


def cool(points: list[tuple[float, float]]) -> list[tuple[str, dict]]:
    c = Cooling(US)
    out: list[tuple[str, dict]] = []
    for t, v in points:
        out += c.feed(v, T0 + t)
    return out


def test_cooling_passes_both_stages() -> None:
    steps = cool([(0, 70), (60, 56), (3600, 30), (6000, 20), (15000, 8), (20000, 4.5)])
    assert [s for s, _ in steps] == ["started", "stage1_passed", "passed"]


def test_cooling_fails_at_two_hours_when_still_above_21() -> None:
    c = Cooling(US)
    c.feed(60, T0)
    c.feed(56, T0 + 60)
    c.feed(30, T0 + 3600)
    assert c.deadline() == T0 + 60 + 7200
    assert c.tick(T0 + 60 + 7199) == []
    out = c.tick(T0 + 60 + 7200)
    assert out == [("failed", {"stage": "stage1", "limit": 21.0, "value": 30, "minutes": 120.0})]
    assert c.phase == "failed"


def test_cooling_fails_at_six_hours_when_still_above_5() -> None:
    c = Cooling(US)
    for t, v in [(0, 60), (60, 56), (5000, 20), (15000, 9)]:
        c.feed(v, T0 + t)
    assert c.phase == "stage2" and c.deadline() == T0 + 60 + 6 * 3600
    out = c.tick(T0 + 60 + 6 * 3600)
    assert out[0][0] == "failed" and out[0][1]["stage"] == "stage2"


def test_monitor_records_cooling_and_danger_zone_time() -> None:
    probe = Unit("blast-chiller", "cooling", "chiller", point="core_temp")
    m = HaccpMonitor((probe,), "us", T0)
    recs = []
    for t, v in [(0, 70), (60, 56), (3600, 30), (7000, 20), (9000, 10), (12000, 4.0)]:
        recs += m.on_reading(rd(v, "chiller", "core_temp"), T0 + t)
    kinds = [(r.kind, r.data.get("step")) for r in recs]
    assert ("cooling", "passed") in kinds
    dz = next(r for r in recs if r.kind == "danger_zone")
    assert dz.data["verdict"] == "discard" or dz.data["minutes"] > 0
    # 56 °C at 60 s to 4 °C at 12000 s: every interval but the last starts inside 5–57 °C
    assert dz.data["minutes"] == round((12000 - 60) / 60, 1)


def test_danger_zone_accumulates_time_per_batch_not_per_reading() -> None:
    dz = DangerZone(5.0, 57.0)
    dz.feed(3.0, 0)
    dz.feed(10.0, 600)  # the interval started outside: not counted
    dz.feed(4.0, 600 + 5400)  # 90 min inside
    assert dz.seconds == 5400 and dz.verdict() == "refrigerate or use"
    dz.feed(20.0, 7000)
    dz.feed(20.0, 7000 + 3 * 3600)
    assert dz.verdict() == "discard"


def test_reheat_must_reach_target_within_two_hours() -> None:
    u = Unit("reheat-probe", "reheat", "probe", point="core_temp")
    m = HaccpMonitor((u,), "us", T0)
    recs = m.on_reading(rd(4.0, "probe", "core_temp"), T0)
    recs += m.on_reading(rd(30.0, "probe", "core_temp"), T0 + 60)
    recs += m.on_reading(rd(60.0, "probe", "core_temp"), T0 + 3600)
    recs += m.tick(T0 + 60 + 7200)
    assert ("reheat", "failed") in [(r.kind, r.data.get("step")) for r in recs]


def test_beer_line_cleaning_falls_due_after_seven_days() -> None:
    line = Unit("lines", "line_clean", "cellar")
    m = HaccpMonitor((line,), "uk", T0)
    m.on_line_clean("lines", T0 + 3600)
    assert m.next_wake() == T0 + 3600 + 7 * 86400
    assert m.tick(T0 + 7 * 86400) == []
    due = m.tick(T0 + 3600 + 7 * 86400)
    assert [r.kind for r in due] == ["line_clean_due"]
    assert m.tick(T0 + 8 * 86400) == []  # said once


def test_recorded_readings_say_why_alarms_were_held_back() -> None:
    u = Unit(
        "walk-in",
        "cold_hold",
        "walkin",
        record_every_s=900,
        defrost_point="defrost_active",
        door_point="door_open",
        power_up_s=1800,
    )
    m = HaccpMonitor((u,), "uk", T0)
    end = (T0 // 900 + 1) * 900

    m.on_reading(rd(3.0), T0 + 10)
    (first,) = m.tick(end)
    assert first.data["suppressed"] == ["start-up"]
    # after start-up: a defrost during the slot marks it, even though it ended within it
    t = end + 3 * 900
    m.tick(t)
    m.on_reading(rd(True, point="defrost_active"), t + 10)
    m.on_reading(rd(9.5), t + 20)
    m.on_reading(rd(False, point="defrost_active"), t + 300)
    (defrost,) = m.tick(t + 900)
    assert defrost.data["suppressed"] == ["defrost"] and defrost.data["max"] == 9.5
    # a quiet slot says nothing; a door left open carries into the next slot
    m.on_reading(rd(3.1), t + 1000)
    m.on_reading(rd(True, point="door_open"), t + 1700)
    (quiet,) = m.tick(t + 1800)
    assert quiet.data["suppressed"] == ["door"]
    m.on_reading(rd(3.2), t + 1900)
    (carried,) = m.tick(t + 2700)
    assert carried.data["suppressed"] == ["door"]
    m.on_reading(rd(False, point="door_open"), t + 2800)
    m.on_reading(rd(3.0), t + 2900)
    (closed,) = m.tick(t + 3600)
    assert closed.data["suppressed"] == ["door"]  # open for part of this slot
    m.on_reading(rd(3.0), t + 3700)
    (clear,) = m.tick(t + 4500)
    assert "suppressed" not in clear.data
