"""Alarm notifications reach a person: Apprise to a real SMTP server (aiosmtpd) and a real
webhook receiver on loopback; durable records, retry with backoff, dedupe by (alarm, step,
recipient), quiet hours, the per-recipient rate limit, every attempt an event; and the ladder
in the rules service telling recipients at each step, then the acknowledgement and the clear."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from edge_agent.clock import ManualClock
from edge_agent.messages import Event
from edge_agent.store.schema import connect
from edge_agent.store.writer import StoreWriter
from rules.notify import records
from rules.notify.model import Notify, Recipient
from rules.notify.policy import quiet_until, rate_limited_until
from rules.notify.service import Notifier
from tests.helpers import until
from tests.peers.notify import Hook, Mailbox, smtp, webhook  # noqa: F401 - fixtures

T0 = dt.datetime(2026, 3, 2, 14, 0, tzinfo=dt.UTC).timestamp()  # a Monday, 14:00 UTC


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=T0)


@pytest.fixture
async def writer(tmp_path: Path, clock: ManualClock) -> AsyncIterator[StoreWriter]:
    w = StoreWriter(str(tmp_path / "store.db"), clock=clock)
    await w.open()
    task = asyncio.create_task(w.run())
    yield w
    await w.stop()
    await task


def notifier(writer: StoreWriter, clock: ManualClock, cfg: Notify, events: list[Event]) -> Notifier:
    async def publish(e: Event) -> None:
        events.append(e)

    return Notifier(writer, clock, cfg, "UTC", publish)


def rows(writer: StoreWriter) -> list[dict[str, object]]:
    conn = connect(writer.path, readonly=True)
    try:
        return sorted(records.rows(conn), key=lambda r: int(str(r["id"])))
    finally:
        conn.close()


async def enqueue(
    writer: StoreWriter, step: str, to: tuple[str, ...], priority: str = "high", alarm: int = 1
) -> int:
    now = writer.clock.time()
    n: int = await writer.transact(
        lambda c: records.enqueue(
            c, alarm, step, to, "alarm", priority, f"Walk-in warm ({step})", "9.5 °C", now
        )
    )
    return n


async def test_email_and_webhook_delivered_once_and_deduplicated(
    writer: StoreWriter, clock: ManualClock, smtp: Mailbox, webhook: Hook
) -> None:
    cfg = Notify(
        (Recipient("alex", (smtp.url("alex@venue.test"),)), Recipient("ops", (webhook.url,)))
    )
    events: list[Event] = []
    n = notifier(writer, clock, cfg, events)
    assert await enqueue(writer, "step1", ("alex", "ops")) == 2
    assert await n.step() == 2
    await until(lambda: len(smtp.messages) == 1, what="mail")
    assert smtp.subjects() == ["Walk-in warm (step1)"] and smtp.rcpt == [["alex@venue.test"]]
    assert "9.5 °C" in smtp.text(0)
    assert [(h["title"], h["message"]) for h in webhook.received] == [
        ("Walk-in warm (step1)", "9.5 °C")
    ]
    # The same (alarm, step, recipient) again adds nothing and sends nothing.
    assert await enqueue(writer, "step1", ("alex", "ops")) == 0
    assert await n.step() == 0
    assert len(smtp.messages) == 1 and len(webhook.received) == 1
    assert [r["state"] for r in rows(writer)] == ["sent", "sent"]
    assert sorted(e.kind for e in events) == ["notify.sent", "notify.sent"]


async def test_failed_delivery_is_retried_with_backoff_and_every_attempt_is_an_event(
    writer: StoreWriter, clock: ManualClock, webhook: Hook
) -> None:
    cfg = Notify((Recipient("ops", (webhook.url,)),), retry_base_s=30, retry_cap_s=100)
    events: list[Event] = []
    n = notifier(writer, clock, cfg, events)
    webhook.fail_next = 3
    await enqueue(writer, "step1", ("ops",))
    assert await n.step() == 0
    (row,) = rows(writer)
    assert row["state"] == "pending" and row["attempts"] == 1 and row["next_at"] == T0 + 30
    await clock.advance(29)
    assert await n.step() == 0 and webhook.refused == 1  # not due yet: no attempt
    await clock.advance(1)
    assert await n.step() == 0 and rows(writer)[0]["next_at"] == T0 + 30 + 60
    await clock.advance(60)
    assert await n.step() == 0 and rows(writer)[0]["next_at"] == T0 + 90 + 100  # capped
    await clock.advance(100)
    assert await n.step() == 1
    assert webhook.refused == 3 and len(webhook.received) == 1
    assert [e.kind for e in events] == ["notify.retry"] * 3 + ["notify.sent"]
    assert events[-1].data["attempt"] == 4 and rows(writer)[0]["attempts"] == 4


async def test_gives_up_after_the_configured_time_with_an_event(
    writer: StoreWriter, clock: ManualClock
) -> None:
    from tests.peers.cloud import free_port

    dead = f"json://127.0.0.1:{free_port()}/hook"  # nothing listens there
    cfg = Notify((Recipient("ops", (dead,)),), retry_base_s=60, give_up_after_s=120)
    events: list[Event] = []
    n = notifier(writer, clock, cfg, events)
    await enqueue(writer, "step1", ("ops",))
    await n.step()
    await clock.advance(60)
    await n.step()
    await clock.advance(120)
    await n.step()
    assert rows(writer)[0]["state"] == "failed"
    assert [e.kind for e in events] == ["notify.retry", "notify.retry", "notify.failed"]
    assert all("127.0.0.1" not in str(e.data) for e in events)  # URLs never echoed


async def test_quiet_hours_hold_normal_alarms_but_not_critical_ones(
    writer: StoreWriter, clock: ManualClock, webhook: Hook
) -> None:
    cfg = Notify((Recipient("ops", (webhook.url,)),), quiet_hours="13:00-15:30")
    events: list[Event] = []
    n = notifier(writer, clock, cfg, events)
    await enqueue(writer, "step1", ("ops",), priority="normal", alarm=1)
    await enqueue(writer, "step1", ("ops",), priority="critical", alarm=2)
    assert await n.step() == 1
    assert len(webhook.received) == 1
    held = next(r for r in rows(writer) if r["alarm_id"] == 1)
    assert held["state"] == "pending" and held["next_at"] == T0 + 5400
    assert [e.kind for e in events] == ["notify.deferred", "notify.sent"]
    await clock.advance(5400)
    assert await n.step() == 1 and len(webhook.received) == 2


async def test_rate_limit_per_recipient(
    writer: StoreWriter, clock: ManualClock, webhook: Hook, smtp: Mailbox
) -> None:
    cfg = Notify(
        (Recipient("ops", (webhook.url,)), Recipient("alex", (smtp.url(),))), max_per_hour=2
    )
    n = notifier(writer, clock, cfg, [])
    for alarm in (1, 2, 3):
        await enqueue(writer, "step1", ("ops", "alex"), alarm=alarm)
        await clock.advance(60)
    assert await n.step() == 4  # two each; the third of each waits for the hour to roll
    held = [r for r in rows(writer) if r["state"] == "pending"]
    assert {r["recipient"] for r in held} == {"ops", "alex"}
    assert all(r["next_at"] == T0 + 180 + 3600 for r in held)
    await clock.advance(3600)
    assert await n.step() == 2


def test_quiet_window_across_midnight_and_rate_window() -> None:
    night = dt.datetime(2026, 3, 2, 23, 30, tzinfo=dt.UTC).timestamp()
    end = dt.datetime(2026, 3, 3, 7, 0, tzinfo=dt.UTC).timestamp()
    assert quiet_until(night, "23:00-07:00", "UTC") == end
    assert quiet_until(end - 60, "23:00-07:00", "UTC") == end
    assert quiet_until(end, "23:00-07:00", "UTC") is None
    assert quiet_until(night, "", "UTC") is None
    assert rate_limited_until([10.0, 20.0], 100.0, 3) is None
    assert rate_limited_until([10.0, 20.0, 30.0], 100.0, 3) == 3610.0


async def test_notify_test_reaches_every_recipient(
    writer: StoreWriter, clock: ManualClock, smtp: Mailbox, webhook: Hook
) -> None:
    from tests.peers.cloud import free_port

    cfg = Notify(
        (
            Recipient("alex", (smtp.url(),)),
            Recipient("ops", (webhook.url,)),
            Recipient("gone", (f"json://127.0.0.1:{free_port()}/x",)),
        )
    )
    out = await notifier(writer, clock, cfg, []).test_all()
    assert out["alex"][0] and out["ops"][0] and not out["gone"][0]
    assert smtp.subjects() == ["BeerFlow test notification"]
    assert webhook.received[0]["title"] == "BeerFlow test notification"


LADDER = """\
[notify]
[[notify.recipients]]
id = "chef"
name = "Head chef"
urls = ["{chef}"]
[[notify.recipients]]
id = "manager"
urls = ["{manager}"]

[escalation]
[[escalation.steps]]
after_s = 0
action = "notify_ui"
notify = ["chef"]
[[escalation.steps]]
after_s = 600
action = "buzzer"
[[escalation.steps]]
after_s = 1800
action = "notify_manager"

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


async def test_the_ladder_tells_each_step_then_the_ack_and_the_clear(
    tmp_path: Path, smtp: Mailbox, webhook: Hook
) -> None:
    from rules.model import load_rules_text
    from tests.test_rules_service import kill, reading, start

    clock = ManualClock(start=T0)
    text = LADDER.format(chef=smtp.url("chef@venue.test"), manager=webhook.url)
    store = str(tmp_path / "store.db")
    box = await start(store, clock, text)
    events: list[Event] = []

    async def publish(e: Event) -> None:
        events.append(e)

    rf = load_rules_text(text, "rules.toml")
    n = Notifier(box.writer, clock, rf.notify, "UTC", publish)
    box.svc.on_notify = n.wake
    box.tasks.append(asyncio.create_task(n.run()))
    try:
        await reading(box, 7.0)
        await clock.advance(900)
        await until(lambda: len(smtp.messages) == 1, what="step 1 to the chef")
        assert smtp.rcpt == [["chef@venue.test"]] and "ALARM walk-in" in smtp.subjects()[0]
        assert "Value 7.0 °C, limit 5.0 °C" in smtp.text(0)
        assert webhook.received == []  # the manager is not on step 1
        await clock.advance(600)  # the buzzer step tells nobody off the box
        await asyncio.sleep(0.05)
        assert len(smtp.messages) == 1
        await clock.advance(1200)  # 30 min: the manager step (every recipient)
        await until(lambda: len(webhook.received) == 1, what="manager")
        assert "step 3, unacknowledged 30 min" in webhook.received[0]["title"]
        await until(lambda: len(smtp.messages) == 2, what="chef at step 3")
        alarm_id = next(e.data["alarm_id"] for e in events if e.kind == "notify.sent")
        # the announcement carries the alarm's id (the cloud's second path matches on it)
        raised = [e for e in box.events if e.kind == "alarm.raised"]
        assert [e.data.get("alarm_id") for e in raised] == [alarm_id]
        await box.svc.acknowledge(alarm_id, "Sam (chef)")
        await until(lambda: len(webhook.received) == 2, what="ack told")
        assert webhook.received[1]["title"].startswith("[venue] acknowledged")
        await reading(box, 3.0)
        await until(lambda: len(webhook.received) == 3, what="clear told")
        assert "cleared" in webhook.received[2]["title"]
        await until(lambda: len(smtp.messages) == 4, what="chef told ack and clear")
        await until(lambda: all(r["state"] == "sent" for r in rows_at(store)), what="all sent")
        conn = connect(store, readonly=True)
        steps = sorted((s, r) for s, r in conn.execute("SELECT step, recipient FROM notifications"))
        conn.close()
        assert steps == [
            ("acknowledged", "chef"),
            ("acknowledged", "manager"),
            ("cleared", "chef"),
            ("cleared", "manager"),
            ("step1", "chef"),
            ("step3", "chef"),
            ("step3", "manager"),
        ]
        await until(lambda: sum(e.kind == "notify.sent" for e in events) == 7, what="events")
    finally:
        await kill(box)


async def test_a_notification_committed_before_a_kill_is_sent_after_it(
    tmp_path: Path, smtp: Mailbox
) -> None:
    from rules.model import load_rules_text
    from tests.test_rules_service import kill, reading, start

    clock = ManualClock(start=T0)
    text = LADDER.format(chef=smtp.url(), manager=smtp.url("m@venue.test"))
    store = str(tmp_path / "store.db")
    box = await start(store, clock, text)  # no notifier running: the box dies before sending
    await reading(box, 7.0)
    await clock.advance(900)
    await until(lambda: len(rows_at(store)) == 1, what="notification record")
    await kill(box)
    assert smtp.messages == []
    box = await start(store, clock, text)
    n = Notifier(box.writer, clock, load_rules_text(text, "r").notify, "UTC")
    box.tasks.append(asyncio.create_task(n.run()))
    try:
        await until(lambda: len(smtp.messages) == 1, what="sent after the restart")
        await asyncio.sleep(0.05)
        assert len(smtp.messages) == 1 and [r["state"] for r in rows_at(store)] == ["sent"]
    finally:
        await kill(box)


def rows_at(store: str) -> list[dict[str, object]]:
    conn = connect(store, readonly=True)
    try:
        return records.rows(conn)
    finally:
        conn.close()


def test_cli_notify_test_reports_each_recipient(
    write_config, tmp_path: Path, smtp: Mailbox, capsys: pytest.CaptureFixture[str]
) -> None:
    from rules.cli import main
    from tests.conftest import MINIMAL_VENUE
    from tests.peers.cloud import free_port

    dead = f"json://127.0.0.1:{free_port()}/hook"
    (tmp_path / "rules.toml").write_text(LADDER.format(chef=smtp.url(), manager=dead))
    cfg = write_config(MINIMAL_VENUE)
    assert main(["notify", "test", "--config", cfg]) == 1
    out = capsys.readouterr().out
    assert "chef: sent" in out and "manager: FAILED" in out and "127.0.0.1" not in out
    assert smtp.subjects() == ["BeerFlow test notification"]
