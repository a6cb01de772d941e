"""Drain a 1,000,000-record outbox backlog to a local cloud_api (encryption, dedupe and
commit included), then measure the cloud's ingest rate alone on one core.

The cloud runs as its own process (`beerflow-cloud serve`, SQLite), as it would on its own
machine; the box (store writer + sync client) runs in this one. Both share this VM's cores.

    .venv/bin/python bench/sync.py [records]
"""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import sqlalchemy as sa

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench._common import report
from cloud_api import db
from cloud_api.db import make_engine
from cloud_api.keys import load_or_create
from cloud_api.store import CloudStore
from cloud_sync import crypto
from cloud_sync.client import SyncClient, SyncSettings
from cloud_sync.enrol import enrol
from cloud_sync.envelope import seal_records
from cloud_sync.identity import new_identity, save
from cloud_sync.outbox import Outbox
from cloud_sync.streams import record_json
from edge_agent.messages import Reading
from edge_agent.store.writer import StoreWriter
from tests.peers.cloud import TENANT, VENUE, free_port


async def start_cloud_process(data: Path) -> tuple[subprocess.Popen[bytes], str]:
    data.mkdir(parents=True)
    load_or_create(str(data / "keys.json"))  # both processes use the same keys
    port = free_port()
    cmd = [sys.executable, "-m", "cloud_api.cli", "--data", str(data), "serve"]
    proc = subprocess.Popen(  # noqa: ASYNC220 - a bench, started once
        [*cmd, "--port", str(port), "--log-level", "WARNING"], start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as s:
        for _ in range(200):
            try:
                async with s.get(url + "/openapi.json") as r:
                    if r.status == 200:
                        return proc, url
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    proc.kill()
    raise RuntimeError("cloud did not start")


async def main(n: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bf-bench-sync-"))
    proc, url = await start_cloud_process(tmp / "cloud")
    try:
        await run(tmp, url, n)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    if os.environ.get("BENCH_KEEP") != "1":
        shutil.rmtree(tmp, ignore_errors=True)


async def run(tmp: Path, url: str, n: int) -> None:
    db_url = f"sqlite:///{tmp}/cloud/cloud.db"
    keys = load_or_create(str(tmp / "cloud" / "keys.json"))
    admin = CloudStore(make_engine(db_url), keys)
    code = admin.create_claim(TENANT, VENUE)
    (tmp / "box").mkdir()
    async with aiohttp.ClientSession() as s:
        ident = await enrol(s, new_identity(VENUE, url), code)
    path = str(tmp / "box" / "sync" / "identity.json")
    save(path, ident)
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
        await writer.transact(functools.partial(fill, start=start))
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
    with admin.engine.connect() as conn:
        got = conn.execute(sa.select(sa.func.count()).select_from(db.records)).scalar()
        low, high = conn.execute(
            sa.select(sa.func.min(db.records.c.seq), sa.func.max(db.records.c.seq))
        ).one()
        mark = conn.execute(sa.select(db.watermarks.c.seq)).scalar()
    # (box, stream, seq) is the primary key: n rows from 1 to n is every record exactly once.
    assert (got, low, high, mark) == (n, 1, n, n), (got, low, high, mark, n)
    # Cloud ingest alone, on one thread (one core): pre-sealed envelopes of 5,000 records
    # into the same database, as the server does it.
    key = ident.key(1, crypto.UPLINK)
    per = 5_000
    envs = []
    for e in range(20):
        addrs = [("bulk", e * per + i + 1, 1.75e9 + i) for i in range(per)]
        bodies = [record_json(Reading("d", "p", float(i), 1.75e9 + i)) for i in range(per)]
        envs.append(seal_records(ident.box_id, ident.venue, 1, key, addrs, bodies, time.time())[1])
    t0 = time.perf_counter()
    cpu0 = time.thread_time()
    for blob in envs:
        admin.ingest(blob, "bench")
    ingest_s = time.perf_counter() - t0
    ingest_cpu = time.thread_time() - cpu0
    admin.engine.dispose()
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
            "cloud in its own process, box in this one; both on this 2-core VM",
            "per core: CPU time of the ingesting thread only (decrypt, decode, insert, commit)",
        ],
    )


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000))
