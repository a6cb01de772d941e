"""The outbox quota during long outages: bulk then telemetry evicted oldest first with loss
records; alarms, HACCP, audit and events never; the cloud accounts for every seq."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import sqlalchemy as sa

from cloud_api import db
from cloud_sync.client import SyncSettings
from cloud_sync.outbox import ROW_OVERHEAD, Outbox
from edge_agent.clock import ManualClock
from edge_agent.messages import Event, Reading, Severity
from tests.peers.cloud import CloudServer, cloud, cloud_seqs, drain, losses, make_box, start_cloud  # noqa: F401 - cloud is a fixture


async def test_thirty_day_outage_stays_in_quota_and_drains(
    tmp_path: Path, cloud: CloudServer, clock: ManualClock
) -> None:
    quota = 2_000_000
    writer, outbox, client, store = await make_box(
        tmp_path, cloud, clock, quota=quota, settings=SyncSettings(max_envelope_bytes=256_000)
    )
    task = asyncio.create_task(writer.run())
    # 30 days, time-compressed: 12 fridges/ovens x 2 points every 5 min, a raw power trace
    # burst every hour, an alarm + HACCP check + audit entry a few times a day.
    t0 = clock.time()
    critical = {"alarms": 0, "haccp": 0, "audit": 0}
    peak = 0
    for step in range(30 * 24 * 12):
        ts = t0 + step * 300
        batch: list[Reading | Event] = [
            Reading(f"dev-{d}", p, 3.0 + d, ts, "°C") for d in range(12) for p in ("temp", "set")
        ]
        if step % 12 == 0:
            batch += [Reading("plug-1", "raw.power", float(i), ts + i) for i in range(60)]
        if step % 96 == 0:
            batch += [
                Event("alarm.raised", ts, "rules", Severity.ALARM, "warm", {"s": step}),
                Event("haccp.check", ts, "rules", Severity.INFO, "probe ok", {"s": step}),
                Event("audit.login", ts, "ui", Severity.INFO, "chef", {"s": step}),
            ]
            for k in critical:
                critical[k] += 1
        for r in batch:
            await writer.submit(r)
        if step % 288 == 0:
            await writer.flush()
            c = sqlite3.connect(store)
            peak = max(peak, Outbox.used_bytes(c))
            c.close()
    await writer.flush()
    c = sqlite3.connect(store)
    used = Outbox.used_bytes(c)
    real = c.execute("SELECT coalesce(sum(length(payload)),0), count(*) FROM outbox").fetchone()
    c.close()
    assert used <= quota and peak <= quota
    assert used == real[0] + real[1] * ROW_OVERHEAD  # the running count is the truth
    assert outbox.stats.evicted > 0
    evicted_streams = {e[0] for e in outbox.stats.evictions}
    assert evicted_streams <= {"bulk", "telemetry"}
    # The line returns: everything drains, and every seq is either delivered or counted lost.
    await drain(client, store, limit=5000)
    box = client.identity.box_id
    for stream, n in critical.items():
        assert cloud_seqs(cloud, box, stream) == list(range(1, n + 1))
    for stream in ("bulk", "telemetry"):
        got = set(cloud_seqs(cloud, box, stream))
        lost = losses(cloud, box, stream)
        c = sqlite3.connect(store)
        (next_seq,) = c.execute(
            "SELECT next_seq FROM outbox_streams WHERE stream=?", (stream,)
        ).fetchone()
        c.close()
        lost_seqs = {s for a, b, _ in lost for s in range(a, b + 1)}
        assert sum(n for _, _, n in lost) == len(lost_seqs)
        assert got | lost_seqs == set(range(1, next_seq))
        assert not (got & lost_seqs)
    # Loss records themselves arrived, as records of the loss stream.
    assert len(cloud_seqs(cloud, box, "loss")) == outbox.stats.loss_records
    assert cloud.store is not None
    with cloud.store.engine.connect() as conn:
        marks = dict(
            conn.execute(
                sa.select(db.watermarks.c.stream, db.watermarks.c.seq).where(
                    db.watermarks.c.box_id == box
                )
            ).all()
        )
    assert marks["telemetry"] > 0 and marks["alarms"] == critical["alarms"]
    await writer.stop()
    await task


async def test_only_critical_records_over_quota_are_kept(
    tmp_path: Path, cloud: CloudServer, clock: ManualClock
) -> None:
    writer, outbox, client, store = await make_box(tmp_path, cloud, clock, quota=20_000)
    task = asyncio.create_task(writer.run())
    for i in range(400):
        await writer.submit(Event("haccp.record", clock.time(), "rules", data={"i": i}))
    await writer.flush()
    c = sqlite3.connect(store)
    (n,) = c.execute("SELECT count(*) FROM outbox WHERE stream='haccp'").fetchone()
    c.close()
    assert n == 400 and outbox.stats.over_quota_critical and outbox.stats.evicted == 0
    await drain(client, store)
    got = await cloud.get("/v1/venues/the-crown/events?stream=haccp&limit=1000")
    assert isinstance(got, list) and [json.loads(json.dumps(g))["data"]["i"] for g in got] == list(
        range(400)
    )
    await writer.stop()
    await task
