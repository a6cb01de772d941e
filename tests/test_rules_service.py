"""The rules service on a real store with a ManualClock: alarms at the original deadline after a
kill, the escalation ladder, and the alarm lifecycle in the store."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pytest

from edge_agent.bus import Bus, Overflow
from edge_agent.clock import ManualClock
from edge_agent.messages import Command, Event, Reading
from edge_agent.store.schema import connect
from edge_agent.store.writer import StoreWriter
from rules import alarms
from rules.haccp import chain
from rules.model import Escalation, load_rules_text
from rules.service import RulesService
from tests.helpers import until

RULES = """\
[escalation]
buzzer_device = "buzzer-plug"
buzzer_command = "switch_on"

[[rules]]
id = "walkin-high"
unit = "walk-in"
priority = "high"
[rules.trigger]
type = "threshold"
device = "walkin"
point = "room_temp"
above = 5.0
clear = 4.0
for_s = 900
[[rules.actions]]
type = "alarm"
message = "walk-in above 5 °C for 15 min"
"""


@dataclass
class Box:
    clock: ManualClock
    bus: Bus
    writer: StoreWriter
    svc: RulesService
    tasks: list[asyncio.Task[None]]
    commands: list[Command]
    events: list[Event]


async def start(path: str, clock: ManualClock, text: str = RULES) -> Box:
    bus = Bus()
    writer = StoreWriter(path, clock=clock)
    writer.attach(bus)
    await writer.open()
    svc = RulesService(bus, writer, clock, load_rules_text(text, "rules.toml"))
    cmd_sub = bus.subscribe("t-cmd", (Command,), 1000, Overflow.BLOCK)
    ev_sub = bus.subscribe("t-ev", (Event,), 1000, Overflow.BLOCK)
    box = Box(clock, bus, writer, svc, [], [], [])

    async def collect() -> None:
        while True:
            for m in await cmd_sub.channel.get_batch(100):
                box.commands.append(m)

    async def collect_ev() -> None:
        while True:
            for m in await ev_sub.channel.get_batch(100):
                box.events.append(m)

    box.tasks = [asyncio.create_task(t) for t in (writer.run(), svc.run(), collect(), collect_ev())]
    await until(svc.ready.is_set, what="rules service ready")
    return box


async def kill(box: Box) -> None:
    """Drop everything without a graceful stop (what committed stays committed)."""
    for t in box.tasks[1:]:
        t.cancel()
    await asyncio.gather(*box.tasks[1:], return_exceptions=True)
    await box.writer.stop()
    await asyncio.gather(box.tasks[0], return_exceptions=True)


async def reading(box: Box, v: float, point: str = "room_temp") -> None:
    n = box.svc.batches
    await box.bus.publish(Reading("walkin", point, v, box.clock.time(), "°C"))
    await until(lambda: box.svc.batches > n, what="reading processed")
    await box.svc.settled()


def store_alarms(path: str) -> list[dict]:
    conn = connect(path, readonly=True)
    try:
        return alarms.history(conn)
    finally:
        conn.close()


@pytest.fixture
def store(tmp_path: Path) -> str:
    return str(tmp_path / "store.db")


async def test_alarm_fires_at_the_original_deadline_after_a_kill(
    store: str, clock: ManualClock
) -> None:
    t0 = clock.time()
    box = await start(store, clock)
    await reading(box, 6.5)
    await clock.advance(600)  # ten minutes into the fifteen
    await reading(box, 6.8)
    await kill(box)
    assert store_alarms(store) == []

    box = await start(store, clock)  # same store, new process state
    try:
        await clock.advance(299)
        await asyncio.sleep(0.05)
        assert store_alarms(store) == []
        await clock.advance(1)
        await until(lambda: len(store_alarms(store)) == 1, what="alarm after restart")
        a = store_alarms(store)[0]
        assert a["raised_at"] == t0 + 900
        assert a["since"] == t0
        assert a["state"] == "raised" and a["value"] == 6.8
    finally:
        await kill(box)


async def test_escalation_ladder_when_nobody_acknowledges(store: str, clock: ManualClock) -> None:
    box = await start(store, clock)
    try:
        await reading(box, 7.0)
        await clock.advance(900)
        await until(lambda: len(store_alarms(store)) == 1, what="alarm")
        alarm_id = store_alarms(store)[0]["id"]
        await until(lambda: any(e.kind == "notification" for e in box.events), what="UI notice")
        assert box.commands == []
        await clock.advance(600)
        await until(lambda: len(box.commands) == 1, what="buzzer")
        assert (box.commands[0].device_id, box.commands[0].name) == ("buzzer-plug", "switch_on")
        await box.svc.acknowledge(alarm_id, "Sam (chef)")
        await clock.advance(3600)
        await asyncio.sleep(0.05)
        notes = [e for e in box.events if e.kind == "notification"]
        assert [n.data["to"] for n in notes] == ["ui", "ui"]  # never reached the manager
        hist = [h["action"] for h in store_alarms(store)[0]["history"]]
        assert hist == ["raised", "escalated", "escalated", "acknowledged"]
    finally:
        await kill(box)


async def test_unacknowledged_alarm_reaches_the_manager(store: str, clock: ManualClock) -> None:
    box = await start(store, clock)
    try:
        await reading(box, 7.0)
        await clock.advance(900 + 1800)
        await until(
            lambda: any(e.kind == "notification" and e.data["to"] == "manager" for e in box.events),
            what="manager notification",
        )
        assert any(e.kind == "alarm.unacknowledged" for e in box.events)
    finally:
        await kill(box)


async def test_alarm_lifecycle_with_haccp_records(store: str, clock: ManualClock) -> None:
    box = await start(store, clock)
    try:
        await reading(box, 9.0)
        await clock.advance(900)
        await until(lambda: len(store_alarms(store)) == 1, what="alarm")
        alarm_id = store_alarms(store)[0]["id"]
        with pytest.raises(alarms.AlarmError, match="acknowledge"):
            await box.svc.corrective_action(alarm_id, "Sam", "moved stock", "moved", 3.0)
        await reading(box, 11.0)  # the peak
        await box.svc.acknowledge(alarm_id, "Sam")
        with pytest.raises(alarms.AlarmError, match="disposition"):
            await box.svc.corrective_action(alarm_id, "Sam", "moved stock", "eaten", 3.0)
        a = await box.svc.corrective_action(
            alarm_id, "Sam", "moved stock to reach-in 2; service call", "moved", 3.2
        )
        assert a["state"] == "actioned" and a["closed_at"] is None
        await reading(box, 4.5)  # inside the band: not cleared yet
        assert store_alarms(store)[0]["cleared_at"] is None
        await reading(box, 3.9)
        a = store_alarms(store)[0]
        assert a["state"] == "closed" and a["cleared"] and a["peak"] == 11.0
        assert [h["action"] for h in a["history"]] == [
            "raised",
            "escalated",
            "acknowledged",
            "corrective_action",
            "cleared",
            "closed",
        ]
        conn = connect(store, readonly=True)
        try:
            kinds = [r.kind for r in chain.records(conn, unit="walk-in")]
            assert chain.verify(conn).ok
        finally:
            conn.close()
        assert kinds == ["excursion_start", "acknowledged", "corrective_action", "excursion_end"]
    finally:
        await kill(box)


def test_default_ladder_is_ui_buzzer_manager() -> None:
    assert [s.action for s in Escalation().steps] == ["notify_ui", "buzzer", "notify_manager"]


async def test_escalation_resumes_after_a_kill(store: str, clock: ManualClock) -> None:
    box = await start(store, clock)
    await reading(box, 7.0)
    await clock.advance(900)
    await until(lambda: len(store_alarms(store)) == 1, what="alarm")
    await box.svc.settled()
    await clock.advance(300)
    await kill(box)
    box = await start(store, clock)
    try:
        assert box.commands == []
        await clock.advance(300)  # ten minutes after the alarm: the buzzer, as planned
        await until(lambda: len(box.commands) == 1, what="buzzer after restart")
        assert box.commands[0].name == "switch_on"
    finally:
        await kill(box)


async def test_a_failed_alarm_commit_is_kept_and_retried_never_dropped(
    store: str, clock: ManualClock
) -> None:
    """The store refuses the alarm's transaction (a real SQLite error, raised by a trigger
    another connection installs); the rules service keeps the batch, retries it with backoff
    on the injected clock, and commits it once the store takes it again."""
    box = await start(store, clock)
    try:
        other = sqlite3.connect(store)
        other.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON alarms "
            "BEGIN SELECT RAISE(ABORT, 'the store refuses'); END"
        )
        other.commit()
        await reading(box, 7.0)
        await clock.advance(900)
        await until(lambda: box.svc.commit_failures >= 1, what="a failed commit")
        for _ in range(3):  # each retry fails again, and is counted
            n = box.svc.commit_failures
            await clock.advance(60)
            await until(lambda n=n: box.svc.commit_failures > n, what="another retry")
        assert store_alarms(store) == []
        other.execute("DROP TRIGGER refuse")
        other.commit()
        other.close()
        await clock.advance(60)
        await until(lambda: len(store_alarms(store)) == 1, what="the alarm after the retry")
        await until(lambda: box.svc.commit_failures == 0, what="the failures count reset")
        await box.svc.settled()
    finally:
        await kill(box)
