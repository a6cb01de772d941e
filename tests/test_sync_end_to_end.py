"""Box -> cloud over loopback with real keys: enrolment, encrypted outbox, ingest, acks."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import aiohttp

from edge_agent.clock import ManualClock
from edge_agent.messages import Event, Reading, Severity
from tests.peers.cloud import (  # noqa: F401 - cloud is a fixture
    VENUE,
    CloudServer,
    cloud,
    cloud_seqs,
    drain,
    enrolled_box,
    make_box,
    start_cloud,
)


async def test_records_arrive_once_in_order_and_outbox_empties(
    tmp_path: Path, cloud: CloudServer, clock: ManualClock
) -> None:
    import asyncio

    writer, _outbox, client, store = await make_box(tmp_path, cloud, clock)
    task = asyncio.create_task(writer.run())
    for i in range(600):
        await writer.submit(Reading("fridge-1", "temp", 3.0 + i / 1000, clock.time() + i, "°C"))
        if i % 100 == 0:
            await writer.submit(
                Event(
                    "alarm.raised", clock.time(), "rules", Severity.ALARM, "fridge warm", {"i": i}
                )
            )
            await writer.submit(Event("device.online", clock.time(), "drivers"))
    await writer.flush()
    # At rest: no plaintext in the outbox.
    conn = sqlite3.connect(store)
    blobs = b"".join(p for (p,) in conn.execute("SELECT payload FROM outbox"))
    conn.close()
    assert b"fridge-1" not in blobs and b"alarm" not in blobs
    client._ro = None
    await drain(client, store)
    box = client.identity.box_id
    assert cloud_seqs(cloud, box, "telemetry") == list(range(1, 601))
    assert cloud_seqs(cloud, box, "alarms") == list(range(1, 7))
    assert cloud_seqs(cloud, box, "events") == list(range(1, 7))
    readings = await cloud.get(f"/v1/venues/{VENUE}/readings?limit=10000")
    assert isinstance(readings, list)
    assert [r["value"] for r in readings] == [3.0 + i / 1000 for i in range(600)]
    assert all(r["received_at"] > 0 and r["box_ts"] > 0 for r in readings)
    alarms = await cloud.get(f"/v1/venues/{VENUE}/events?stream=alarms")
    assert isinstance(alarms, list) and [a["data"]["i"] for a in alarms] == list(range(0, 600, 100))
    assert client.state.online is True and client.state.last_success == clock.time()
    # Critical streams go first: the first envelope carried the alarms.
    await writer.stop()
    await task


async def test_unreachable_cloud_keeps_everything_and_goes_offline(
    tmp_path: Path, cloud: CloudServer, clock: ManualClock
) -> None:
    import asyncio

    events: list[Event] = []

    async def publish(e: Event) -> None:
        events.append(e)

    writer, _outbox, client, store = await make_box(tmp_path, cloud, clock)
    client.publish = publish
    task = asyncio.create_task(writer.run())
    for i in range(50):
        await writer.submit(Reading("fridge-1", "temp", float(i), clock.time() + i))
    await writer.flush()
    await cloud.stop()
    async with aiohttp.ClientSession() as s:
        step = asyncio.create_task(client.step(s))
        await asyncio.sleep(0.2)
        while not step.done():
            await clock.advance(1.0)
            await asyncio.sleep(0.01)
    assert client.state.online is False
    assert [e.kind for e in events] == ["sync.offline"]
    conn = sqlite3.connect(store)
    assert conn.execute("SELECT count(*) FROM outbox").fetchone()[0] == 50
    conn.close()
    await cloud.start()
    await drain(client, store)
    assert [e.kind for e in events] == ["sync.offline", "sync.online"]
    assert cloud_seqs(cloud, client.identity.box_id, "telemetry") == list(range(1, 51))
    await writer.stop()
    await task


async def test_key_rotation_old_records_still_open(
    tmp_path: Path, cloud: CloudServer, clock: ManualClock
) -> None:
    import asyncio

    writer, _outbox, client, store = await make_box(tmp_path, cloud, clock)
    task = asyncio.create_task(writer.run())
    await writer.submit(Reading("d", "p", 1.0, clock.time()))
    await writer.flush()
    client.rotate_key()
    await writer.submit(Reading("d", "p", 2.0, clock.time()))
    await writer.flush()
    conn = sqlite3.connect(store)
    assert [k for (k,) in conn.execute("SELECT kid FROM outbox ORDER BY seq")] == [1, 2]
    conn.close()
    await drain(client, store)
    assert cloud_seqs(cloud, client.identity.box_id, "telemetry") == [1, 2]
    await writer.stop()
    await task
