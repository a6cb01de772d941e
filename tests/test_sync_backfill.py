"""A box installed offline and enrolled a week later syncs that week: what the store accepted
before the outbox hook existed is copied into the outbox after enrolment, once, resuming after
a restart, and nothing accepted after the hook is sent twice."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import sqlalchemy as sa

from cloud_api import db
from cloud_sync import backfill
from cloud_sync.client import SyncClient, SyncSettings
from cloud_sync.outbox import Outbox
from edge_agent.clock import ManualClock
from edge_agent.messages import Event, Reading, Severity
from edge_agent.store.writer import StoreWriter
from tests.peers.cloud import CloudServer, cloud, drain, enrolled_box  # noqa: F401


def cloud_bodies(cloud: CloudServer, box: str, stream: str) -> list[tuple[int, dict[str, object]]]:
    assert cloud.store is not None
    r = db.records
    with cloud.store.engine.connect() as c:
        return [
            (int(s), json.loads(b))
            for s, b in c.execute(
                sa.select(r.c.seq, r.c.body)
                .where(r.c.box_id == box, r.c.stream == stream)
                .order_by(r.c.seq)
            )
        ]


async def test_records_from_before_provisioning_reach_the_cloud_once(
    tmp_path: Path, cloud: CloudServer, clock: ManualClock
) -> None:
    (tmp_path / "box").mkdir()
    store = str(tmp_path / "box" / "store.db")
    # A week offline, not provisioned: the store alone.
    writer = StoreWriter(store, clock=clock, reserve_bytes=0)
    task = asyncio.create_task(writer.run())
    t0 = clock.time()
    for i in range(12_000):
        await writer.submit(Reading(f"fridge-{i % 3}", "temp", 3.0 + i % 4, t0 + i * 50, "°C"))
    for i in range(30):
        await writer.submit(
            Event("alarm.raised", t0 + i, "rules", Severity.ALARM, "warm", {"i": i})
        )
    await writer.stop()
    await task
    # Enrolled; the agent starts with the sync stack for the first time.
    ident, id_path = await enrolled_box(cloud, tmp_path / "box")
    assert backfill.plan(store) is not None
    outbox = Outbox(ident, clock=clock.time)
    writer = StoreWriter(store, clock=clock, reserve_bytes=0)
    outbox.attach(writer)
    await writer.open()
    task = asyncio.create_task(writer.run())
    # Live records go through the hook meanwhile.
    for i in range(10):
        await writer.submit(Reading("fridge-0", "temp", 9.0, t0 + 10**7 + i, "°C"))
    await writer.flush()
    # One chunk, then a restart: the cursor resumes, the bounds do not move.
    await writer.transact(lambda conn: backfill._chunk(conn, outbox))
    assert backfill.plan(store) is not None
    assert await backfill.run(writer, outbox) == 12_000 + 30 - backfill.CHUNK
    assert backfill.plan(store) is None  # done, for good
    assert await backfill.run(writer, outbox) == 0
    client = SyncClient(
        ident,
        outbox,
        writer,
        identity_file=id_path,
        clock=clock,
        settings=SyncSettings(max_envelope_bytes=256 * 1024),
    )
    await drain(client, store, limit=400)
    box = ident.box_id
    tele = cloud_bodies(cloud, box, "telemetry")
    assert [s for s, _ in tele] == list(range(1, 12_011))
    keys = [(b["device"], b["ts"]) for _, b in tele]
    assert len(set(keys)) == 12_010  # none twice
    alarms = cloud_bodies(cloud, box, "alarms")
    assert sorted(b["data"]["i"] for _, b in alarms) == list(range(30))  # type: ignore[index]
    await writer.stop()
    await task


def test_a_store_that_never_held_anything_needs_no_backfill(tmp_path: Path) -> None:
    from edge_agent.store.writer import ensure_store

    store = str(tmp_path / "s.db")
    ensure_store(store)
    assert backfill.plan(store) is None
