"""The cloud's second notification path and the silent-box alarm, with the real cloud over
loopback, a real box syncing to it, and real SMTP and webhook peers."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import sqlalchemy as sa

from cloud_api import db
from cloud_api.notify import CloudNotifier
from edge_agent.clock import ManualClock
from edge_agent.messages import Event, Severity
from tests.peers.cloud import ADMIN, VENUE, CloudServer, cloud, drain, make_box  # noqa: F401
from tests.peers.notify import Hook, Mailbox, smtp, webhook  # noqa: F401


async def put(cloud: CloudServer, path: str, body: object) -> tuple[int, object]:
    async with (
        aiohttp.ClientSession() as s,
        s.put(cloud.url + path, json=body, headers={"Authorization": f"Bearer {ADMIN}"}) as r,
    ):
        return r.status, await r.json()


async def configure(cloud: CloudServer, smtp: Mailbox, webhook: Hook) -> None:
    status, _ = await put(
        cloud,
        f"/v1/venues/{VENUE}/notify",
        {
            "recipients": [
                {"id": "manager", "urls": [smtp.url("manager@venue.test")]},
                {"id": "ops", "urls": [webhook.url]},
            ],
            "silent_after_s": 1800,
            "second_path_after_s": 600,
        },
    )
    assert status == 200


async def test_config_is_validated_and_admin_only(cloud: CloudServer) -> None:
    status, body = await put(cloud, f"/v1/venues/{VENUE}/notify", {"recipients": [{"id": "x"}]})
    assert status == 400 and "urls" in str(body)
    async with aiohttp.ClientSession() as s, s.put(cloud.url + f"/v1/venues/{VENUE}/notify") as r:
        assert r.status == 401


async def test_a_silent_box_is_told_once_per_silence(
    tmp_path: Path, cloud: CloudServer, smtp: Mailbox, webhook: Hook
) -> None:
    clock = ManualClock(start=time.time())
    writer, _, client, store = await make_box(tmp_path, cloud, clock)
    task = asyncio.create_task(writer.run())
    await writer.submit(Event("device.online", clock.time(), "drivers"))
    await writer.flush()
    await drain(client, store)  # the box is heard from
    await configure(cloud, smtp, webhook)
    assert cloud.store is not None
    n = CloudNotifier(cloud.store.engine, cloud.store.now)
    now = time.time()
    assert n.scan(now + 1700) == 0  # not silent long enough
    assert n.scan(now + 1900) == 2  # one per recipient
    assert n.scan(now + 2500) == 0  # the same silence is told once
    assert await n.deliver(now + 2500) == 2
    assert "box silent for" in smtp.subjects()[0] and smtp.rcpt == [["manager@venue.test"]]
    assert webhook.received[0]["title"].startswith(f"[{VENUE}] box silent")
    # heard from again, then silent again: a new silence, told again
    with cloud.store.engine.begin() as c:
        c.execute(db.boxes.update().values(last_seen=now + 3000))
    assert n.scan(now + 3100) == 0 and n.scan(now + 5000) == 2
    await writer.stop()
    await task


async def test_an_alarm_the_box_did_not_get_through_goes_by_the_cloud(
    tmp_path: Path, cloud: CloudServer, smtp: Mailbox, webhook: Hook
) -> None:
    clock = ManualClock(start=time.time())
    writer, _, client, store = await make_box(tmp_path, cloud, clock)
    task = asyncio.create_task(writer.run())
    t0 = clock.time()

    def raised(aid: int, rule: str) -> Event:
        return Event(
            "alarm.raised",
            t0,
            f"rule:{rule}",
            Severity.ALARM,
            f"{rule} warm",
            {"rule": rule, "unit": rule, "value": 9.5, "alarm_id": aid},
        )

    for e in (
        raised(1, "walk-in-high"),  # nobody told, nobody acknowledged: the cloud must tell
        raised(2, "bar-fridge-high"),  # the box's own notification got out
        Event("notify.sent", t0 + 5, "notify:chef", data={"alarm_id": 2, "step": "step1"}),
        raised(3, "freezer-high"),  # acknowledged on the box
        Event("alarm.acknowledged", t0 + 60, "alarm:3", data={"alarm_id": 3, "by": "Sam"}),
    ):
        await writer.submit(e)
    await writer.flush()
    await drain(client, store)
    await configure(cloud, smtp, webhook)
    assert cloud.store is not None
    n = CloudNotifier(cloud.store.engine, cloud.store.now)
    assert n.scan(t0 + 500) == 0  # the box still has time to get it through
    assert n.scan(t0 + 700) == 2
    webhook.fail_next = 1
    assert await n.deliver(t0 + 700) == 1  # mail went; the webhook failed and is retried
    rows = n.rows(VENUE)
    assert {r["key"] for r in rows} == {f"alarm:{client.identity.box_id}:1"}
    hook_row = next(r for r in rows if r["recipient"] == "ops")
    assert hook_row["state"] == "pending" and hook_row["attempts"] == 1
    assert await n.deliver(t0 + 700 + 30) == 1
    assert "walk-in-high" in webhook.received[0]["message"]
    assert n.scan(t0 + 900) == 0  # told once
    with cloud.store.engine.connect() as c:
        states = sorted(s for (s,) in c.execute(sa.select(db.cloud_notifications.c.state)))
    assert states == ["sent", "sent"]
    await writer.stop()
    await task
