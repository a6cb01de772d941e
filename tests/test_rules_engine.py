"""The rule engine as a pure state machine: every trigger, hysteresis, suppression and its cap,
cooldown, conditions, and state that survives being exported and restored."""

from __future__ import annotations

import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.errors import ValidationError
from edge_agent.messages import Event, Reading
from rules.actions import AlarmAction, NotifyAction
from rules.engine import RuleEngine
from rules.model import Rule, Suppression, Trigger, load_rules_text

T0 = 1_750_000_000.0
ALARM = (AlarmAction(message="too warm"),)


def hot(for_s: float = 900.0, **kw: object) -> Rule:
    trig = Trigger("threshold", "fridge", "room_temp", above=5.0, clear=4.0, for_s=for_s)
    return Rule("fridge-high", trig, ALARM, **kw)  # type: ignore[arg-type]


def rd(v: object, point: str = "room_temp", dev: str = "fridge") -> Reading:
    return Reading(dev, point, v, T0)  # type: ignore[arg-type]


def fires(out: list) -> list[tuple[str, str]]:
    return [(f.rule.id, f.transition) for f in out]


def test_threshold_fires_only_after_the_duration_and_clears_below_the_clear_limit() -> None:
    e = RuleEngine([hot()], started_at=T0)
    assert e.on_reading(rd(6.0), T0) == []
    assert e.next_wake() == T0 + 900
    assert e.tick(T0 + 899) == []
    out = e.tick(T0 + 900)
    assert fires(out) == [("fridge-high", "fire")]
    assert out[0].since == T0 and out[0].value == 6.0
    assert e.on_reading(rd(4.5), T0 + 1000) == []  # inside the band: still active
    assert fires(e.on_reading(rd(4.0), T0 + 1100)) == [("fridge-high", "clear")]
    assert e.state["fridge-high"].count == 1
    assert e.state["fridge-high"].last_fired == T0 + 900


def test_dipping_below_the_limit_restarts_the_duration() -> None:
    e = RuleEngine([hot()], started_at=T0)
    e.on_reading(rd(6.0), T0)
    e.on_reading(rd(5.0), T0 + 600)
    e.on_reading(rd(6.0), T0 + 700)
    assert e.tick(T0 + 900) == []
    assert fires(e.tick(T0 + 1600)) == [("fridge-high", "fire")]


def test_below_trigger_uses_its_own_clear_limit() -> None:
    trig = Trigger("threshold", "hot", "temp", below=63.0, clear=64.0, for_s=0)
    e = RuleEngine([Rule("hot-low", trig, ALARM)])
    assert fires(e.on_reading(rd(62.0, "temp", "hot"), T0)) == [("hot-low", "fire")]
    assert e.on_reading(rd(63.5, "temp", "hot"), T0 + 1) == []
    assert fires(e.on_reading(rd(64.0, "temp", "hot"), T0 + 2)) == [("hot-low", "clear")]


@settings(max_examples=60, deadline=None)
@given(
    start_active=st.booleans(),
    values=st.lists(st.floats(min_value=4.001, max_value=5.0), min_size=1, max_size=80),
)
def test_a_signal_inside_the_hysteresis_band_never_flaps(
    start_active: bool, values: list[float]
) -> None:
    e = RuleEngine([hot(for_s=0)], started_at=T0)
    if start_active:
        assert fires(e.on_reading(rd(9.0), T0)) == [("fridge-high", "fire")]
    transitions = []
    for i, v in enumerate(values):
        transitions += e.on_reading(rd(v), T0 + 10 + i * 30)
        transitions += e.tick(T0 + 10 + i * 30)
    assert transitions == []
    assert e.state["fridge-high"].active is start_active


def test_rate_of_change_trigger() -> None:
    trig = Trigger("rate", "fridge", "room_temp", per_minute=0.5, window_s=600)
    e = RuleEngine([Rule("warming-fast", trig, ALARM)])
    assert e.on_reading(rd(3.0), T0) == []
    assert e.on_reading(rd(3.5), T0 + 300) == []  # 0.1 °C/min
    assert fires(e.on_reading(rd(8.0), T0 + 420)) == [("warming-fast", "fire")]
    # the window forgets the rise; the rate falls back and the rule clears
    assert fires(e.on_reading(rd(8.0), T0 + 1100)) == [("warming-fast", "clear")]


def test_state_equals_trigger_with_duration() -> None:
    trig = Trigger("state", "fridge", "defrost_active", equals="true", for_s=3600)
    e = RuleEngine([Rule("long-defrost", trig, ALARM)])
    e.on_reading(rd(True, "defrost_active"), T0)
    assert fires(e.tick(T0 + 3600)) == [("long-defrost", "fire")]
    assert fires(e.on_reading(rd(0, "defrost_active"), T0 + 3700)) == [("long-defrost", "clear")]


def test_no_data_trigger_fires_after_silence_and_clears_on_data() -> None:
    trig = Trigger("no_data", "fridge", minutes=30)
    e = RuleEngine([Rule("fridge-silent", trig, ALARM)], started_at=T0)
    e.resume(T0)
    e.on_reading(rd(3.0), T0 + 60)
    assert e.tick(T0 + 1800) == []  # the first wake-up finds the device heard since
    assert e.next_wake() == T0 + 60 + 1800
    assert fires(e.tick(T0 + 1860)) == [("fridge-silent", "fire")]
    assert fires(e.on_reading(rd(3.0), T0 + 2000)) == [("fridge-silent", "clear")]


def test_schedule_trigger_fires_at_cron_instants_in_the_venue_timezone() -> None:
    trig = Trigger("schedule", cron="0 9 * * *")
    e = RuleEngine([Rule("opening-check", trig, (NotifyAction(),))], tz="Europe/London")
    e.resume(T0)  # 2025-06-15 15:06:40 UTC = 16:06 BST
    wake = e.next_wake()
    assert wake == 1_750_060_800.0  # 2025-06-16 08:00 UTC = 09:00 BST
    assert fires(e.tick(wake)) == [("opening-check", "fire")]
    assert e.next_wake() == wake + 86400


def test_event_trigger_with_cooldown() -> None:
    trig = Trigger("event", kind="stock.low")
    e = RuleEngine([Rule("reorder", trig, (NotifyAction(),), cooldown_s=3600)])
    ev = Event("stock.low", T0, "keg-1")
    assert fires(e.on_event(ev, T0)) == [("reorder", "fire")]
    assert e.on_event(ev, T0 + 60) == []
    assert fires(e.on_event(ev, T0 + 3600)) == [("reorder", "fire")]


def test_time_window_and_point_conditions() -> None:
    from rules.model import Condition

    trig = Trigger("event", kind="order.completed")
    conds = (
        Condition("time_window", start="08:00", end="22:00"),
        Condition("point", device="oven", point="mode", equals="on"),
    )
    e = RuleEngine([Rule("r", trig, (NotifyAction(),), conditions=conds)], tz="UTC")
    ev = Event("order.completed", T0, "till")
    assert e.on_event(ev, T0) == []  # oven state unknown
    e.on_reading(rd("on", "mode", "oven"), T0)
    assert fires(e.on_event(ev, T0)) == [("r", "fire")]  # 15:06 UTC
    assert e.on_event(ev, T0 + 8 * 3600) == []  # 23:06 UTC


DEFROST = Suppression("defrost", cap_s=3600, point="defrost_active", recovery_s=1200)


def test_defrost_suppresses_through_recovery_then_the_delay_starts() -> None:
    e = RuleEngine([hot(suppress=(DEFROST,))], started_at=T0)
    e.on_reading(rd(True, "defrost_active"), T0)
    e.on_reading(rd(9.0), T0 + 60)
    e.on_reading(rd(False, "defrost_active"), T0 + 1500)
    assert e.tick(T0 + 2000) == []
    # recovery ends at 1500 + 1200 = 2700; the 15 min delay starts there
    assert e.tick(T0 + 2700) == []
    assert e.state["fridge-high"].pending_since == T0 + 2700
    assert fires(e.tick(T0 + 2700 + 900)) == [("fridge-high", "fire")]


def test_a_stuck_defrost_still_alarms_at_the_cap() -> None:
    e = RuleEngine([hot(suppress=(DEFROST,))], started_at=T0)
    e.on_reading(rd(True, "defrost_active"), T0)
    e.on_reading(rd(9.0), T0 + 60)
    assert e.tick(T0 + 3599) == []
    e.tick(T0 + 3600)
    assert e.state["fridge-high"].pending_since == T0 + 3600
    assert fires(e.tick(T0 + 3600 + 900)) == [("fridge-high", "fire")]


def test_door_grace_and_power_up_suppression_with_caps() -> None:
    door = Suppression("door", cap_s=900, point="door_open", recovery_s=300)
    power = Suppression("power_up", cap_s=5400)
    e = RuleEngine([hot(for_s=0, suppress=(door, power))], started_at=T0)
    out = []
    for k in range(0, 19):  # a reading every 5 min; the first one opens the power-up window
        out += e.on_reading(rd(9.0), T0 + k * 300)
        out += e.tick(T0 + k * 300)
    assert [f.at for f in out] == [T0 + 5400]
    e.on_reading(rd(3.0), T0 + 5500)
    assert e.state["fridge-high"].active is False
    t = T0 + 6000
    e.on_reading(rd(True, "door_open"), t)
    e.on_reading(rd(9.0), t + 10)
    assert e.tick(t + 899) == []  # within the grace
    assert fires(e.tick(t + 900)) == [("fridge-high", "fire")]  # door left open


def test_exported_state_restores_pending_deadline() -> None:
    e = RuleEngine([hot()], started_at=T0)
    e.on_reading(rd(6.0), T0)
    rows = e.dirty_rows()
    e2 = RuleEngine([hot()], started_at=T0 + 600)
    e2.restore(rows)
    assert e2.resume(T0 + 600) == []
    assert e2.next_wake() == T0 + 900
    assert fires(e2.tick(T0 + 900)) == [("fridge-high", "fire")]


def test_rule_file_errors_name_file_line_and_field(tmp_path) -> None:
    text = textwrap.dedent("""\
        [[rules]]
        id = "a"
        [rules.trigger]
        type = "threshold"
        device = "fridge"
        point = "room_temp"
        above = 5
        clear = 6
        [[rules.actions]]
        type = "inventory_update"

        [[rules]]
        id = "b"
        actions = [{type = "alarm"}]
        [rules.trigger]
        type = "schedule"
        cron = "61 * * * *"
        """)
    with pytest.raises(ValidationError) as exc:
        load_rules_text(text, "rules.toml")
    msgs = [str(i) for i in exc.value.issues]
    assert any("rules.toml:3: rules[0].trigger: 'clear' must not be above" in m for m in msgs), msgs
    assert any(
        "rules.toml:10: rules[0].actions[0].type: must be one of 'alarm', 'clear_alarm'" in m
        and "(got 'inventory_update')" in m
        for m in msgs
    ), msgs
    assert any("rules[1].trigger" in m and "cron" in m for m in msgs), msgs


def test_haccp_units_expand_into_region_preset_rules() -> None:
    text = textwrap.dedent("""\
        [[haccp.units]]
        id = "walk-in"
        kind = "cold_hold"
        device = "walkin"
        defrost_point = "defrost_active"
        [[haccp.units]]
        id = "cellar"
        kind = "cellar"
        device = "cellar-sensor"
        point = "temperature"
        """)
    uk = {r.id: r for r in load_rules_text(text, "r.toml", "uk").rules}
    us = {r.id: r for r in load_rules_text(text, "r.toml", "us").rules}
    assert uk["walk-in-high"].trigger.above == 8.0 and us["walk-in-high"].trigger.above == 5.0
    assert uk["cellar-high"].trigger.above == 13.0 and uk["cellar-low"].trigger.below == 11.0
    assert {s.when for s in uk["walk-in-high"].suppress} == {"defrost", "power_up"}


def test_a_door_opened_after_the_crossing_does_not_hold_the_alarm_back() -> None:
    door = Suppression("door", cap_s=900, point="door_open", recovery_s=300)
    e = RuleEngine([hot(suppress=(door,))], started_at=T0)
    e.on_reading(rd(9.0), T0)  # over the limit, door shut: the timer runs
    e.on_reading(rd(True, "door_open"), T0 + 600)
    e.on_reading(rd(False, "door_open"), T0 + 660)
    assert e.state["fridge-high"].pending_since == T0
    assert fires(e.tick(T0 + 900)) == [("fridge-high", "fire")]


def test_a_defrost_starting_while_pending_restarts_the_delay_after_recovery() -> None:
    e = RuleEngine([hot(suppress=(DEFROST,))], started_at=T0)
    e.on_reading(rd(9.0), T0)
    e.on_reading(rd(True, "defrost_active"), T0 + 600)
    e.on_reading(rd(9.5), T0 + 610)
    assert e.state["fridge-high"].pending_since is None
    assert e.tick(T0 + 900) == []
    e.on_reading(rd(False, "defrost_active"), T0 + 1800)
    e.tick(T0 + 3000)  # recovery over: the delay starts again
    assert fires(e.tick(T0 + 3900)) == [("fridge-high", "fire")]
