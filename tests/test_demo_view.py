"""The demo's event lines and status line, fed real Event messages through a real Channel."""

from __future__ import annotations

import asyncio
import io
import sqlite3

from edge_agent.channel import Channel
from edge_agent.demo_view import DemoView, Status, event_line, outbox_rows, status_line
from edge_agent.messages import Event, Severity

T0 = 1_750_000_000.0


def ev(kind: str, message: str, **data: object) -> Event:
    return Event(kind, T0, "rules", Severity.ALARM, message, dict(data))


def test_routine_events_stay_quiet_and_alarm_workflow_is_printed():
    assert event_line(ev("device.online", "f1 back")) is None
    assert event_line(ev("agent.started", "started")) is None
    line = event_line(ev("alarm.raised", "Back-bar fridge 9.1 °C", rule="r"))
    assert line is not None and "ALARM" in line and "9.1 °C" in line


def test_status_line():
    s = Status(19, 20, 123456, 1, 0)
    line = status_line(s, T0)
    assert "19/20 devices online" in line and "1 alarm active" in line
    assert "123,456 readings stored" in line and "cloud: up to date" in line
    assert "cloud: 42 waiting" in status_line(Status(1, 1, 0, 2, 42), T0)
    assert "2 alarms active" in status_line(Status(1, 1, 0, 2, 42), T0)
    assert "not enrolled" in status_line(Status(1, 1, 0, 0, None), T0)


async def test_view_counts_alarms_from_events_and_prints_each_once():
    out = io.StringIO()
    view = DemoView(lambda: Status(4, 4, 10, 0, 0), out=out, every_s=3600, plain_every_s=3600)
    ch: Channel[Event] = Channel(100)
    task = asyncio.create_task(view.run(ch))
    for e in (
        ev("alarm.raised", "bar fridge warm", rule="bar-fridge-high"),
        ev("device.polled", "noise"),
        ev("alarm.acknowledged", "by Demo Chef", alarm_id=1),
        ev("alarm.corrective_action", "moved stock", alarm_id=1),
        ev("alarm.raised", "freezer warm", rule="freezer-high"),
        ev("alarm.cleared", "bar fridge back in range", rule="bar-fridge-high"),
    ):
        await ch.put(e)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while "back in range" not in out.getvalue() or "devices online" not in out.getvalue():
        assert loop.time() < deadline, out.getvalue()
        await asyncio.sleep(0.01)
    task.cancel()
    lines = out.getvalue().splitlines()
    kinds = [ln.split("  ")[1].strip() for ln in lines if "devices online" not in ln]
    assert kinds == ["ALARM", "acknowledged", "corrective action", "ALARM", "cleared"]
    assert view.alarms == {"freezer-high"}
    view.show_status()
    assert "1 alarm active" in out.getvalue().splitlines()[-1]


def test_outbox_rows(tmp_path):
    db = tmp_path / "s.db"
    assert outbox_rows(str(db)) is None
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE outbox (id INTEGER)")
    conn.executemany("INSERT INTO outbox VALUES (?)", [(1,), (2,)])
    conn.commit()
    conn.close()
    assert outbox_rows(str(db)) == 2
