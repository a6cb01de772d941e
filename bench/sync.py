"""Drain a 1,000,000-record outbox backlog to a local cloud_api (encryption, dedupe and
commit included), then measure the cloud's ingest rate alone on one core.

    .venv/bin/python -m bench.sync [records]
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from bench._common import report
from cloud_sync import crypto
from cloud_sync.client import SyncClient, SyncSettings
from cloud_sync.envelope import encode_item, seal_raw
from cloud_sync.outbox import Outbox
from cloud_sync.streams import record_json
from edge_agent.messages import Reading
from edge_agent.store.writer import StoreWriter
from tests.peers.cloud import enrolled_box, start_cloud


async def main(n: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bf-bench-sync-"))
    cloud = await start_cloud(tmp / "cloud")
    (tmp / "box").mkdir()
    ident, path = await enrolled_box(cloud, tmp / "box")
    outbox = Outbox(ident, quota_bytes=10**12)
    store = str(tmp / "box" / "store.db")
    writer = StoreWriter(store)
    await writer.open()
    t0 = time.perf_counter()
    chunk = 50_000

    def fill(conn: sqlite3.Connection, start: int) -> None:
        items = [
            (
                1.75e9 + i,
                record_json(Reading(f"dev-{i % 40}", "temp", 3.0 + i % 7, 1.75e9 + i, "°C")),
            )
            for i in range(start, min(n, start + chunk))
        ]
        outbox._append(conn, "telemetry", items)

    task = asyncio.create_task(writer.run())
    for start in range(0, n, chunk):
        await writer.transact(lambda c, s=start: fill(c, s))
    fill_s = time.perf_counter() - t0
    client = SyncClient(
        ident,
        outbox,
        writer,
        identity_file=path,
        settings=SyncSettings(max_envelope_bytes=2_000_000),
    )
    t0 = time.perf_counter()
    async with aiohttp.ClientSession() as s:
        while True:
            c = sqlite3.connect(store)
            (left,) = c.execute("SELECT count(*) FROM outbox").fetchone()
            c.close()
            if not left:
                break
            await client.step(s)
    drain_s = time.perf_counter() - t0
    await writer.stop()
    await task
    assert cloud.store is not None
    import sqlalchemy as sa

    from cloud_api import db

    with cloud.store.engine.connect() as conn:
        got = conn.execute(sa.select(sa.func.count()).select_from(db.records)).scalar()
    assert got == n, (got, n)
    # Cloud ingest alone (one thread = one core): pre-sealed envelopes of 5,000 records.
    key = ident.key(1, crypto.UPLINK)
    per = 5_000
    envs = []
    for e in range(20):
        items = [
            encode_item(
                "bulk", e * per + i + 1, 1.75e9, record_json(Reading("d", "p", float(i), 1.75e9))
            )
            for i in range(per)
        ]
        envs.append(seal_raw(ident.box_id, ident.venue, 1, key, items, time.time())[1])
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    for blob in envs:
        cloud.store.ingest(blob, "bench")
    ingest_s = time.perf_counter() - t0
    ingest_cpu = time.process_time() - cpu0
    await cloud.stop()
    report(
        "sync: backlog drain to a local cloud_api (SQLite)",
        {
            "records": n,
            "fill_outbox_s": round(fill_s, 2),
            "drain_s": round(drain_s, 2),
            "drain_records_per_s": round(n / drain_s),
            "target_drain_s": 30,
            "envelopes": client.state.envelopes,
            "cloud_ingest_records_per_s_per_core": round(len(envs) * per / ingest_cpu),
            "cloud_ingest_wall_records_per_s": round(len(envs) * per / ingest_s),
        },
        notes=[
            "box and cloud share this 2-core VM and one event loop",
            f"data under {tmp} (delete it)",
        ],
    )
    if os.environ.get("BENCH_KEEP") != "1":
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000))
