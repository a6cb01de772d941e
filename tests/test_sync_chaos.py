"""Chaos: kill -9 of the box at random instants, a faulty network, a cloud restarting
mid-batch. Every time the cloud must end with every accepted record exactly once, in order."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sqlite3
import sys
from pathlib import Path

import sqlalchemy as sa

from cloud_api import db
from cloud_sync.client import SyncSettings
from edge_agent.clock import SystemClock
from edge_agent.messages import Event
from tests.peers.cloud import (  # noqa: F401 - cloud is a fixture
    CloudServer,
    FaultProxy,
    cloud,
    cloud_seqs,
    drain,
    enrolled_box,
    make_box,
    start_cloud,
)

REPO = Path(__file__).resolve().parent.parent


def cloud_events(cloud: CloudServer, box: str) -> list[tuple[int, int]]:
    assert cloud.store is not None
    with cloud.store.engine.connect() as c:
        rows = c.execute(
            sa.select(db.records.c.seq, db.records.c.body)
            .where(db.records.c.box_id == box, db.records.c.stream == "events")
            .order_by(db.records.c.seq)
        ).all()
    return [(int(s), int(json.loads(b)["data"]["i"])) for s, b in rows]


def outbox_rows(store: str) -> int:
    c = sqlite3.connect(store)
    try:
        return int(c.execute("SELECT count(*) FROM outbox").fetchone()[0])
    except sqlite3.OperationalError:
        return -1
    finally:
        c.close()


async def run_child(
    store: str, ident: str, *, kill_after: float | None, limit: int | None = None
) -> int:
    """Run the child box; kill -9 it `kill_after` s after its first ACK. Returns the highest
    acknowledged count it printed."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if limit is not None:
        env["CHAOS_LIMIT"] = str(limit)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.peers.cloud_child",
        store,
        ident,
        cwd=str(REPO),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    assert proc.stdout is not None
    acked = 0
    try:
        if kill_after is None:
            await asyncio.wait_for(proc.stdout.readline(), 30)
            return 0
        first = await asyncio.wait_for(proc.stdout.readline(), 30)
        if first.startswith(b"ACK"):
            acked = int(first.split()[1])
        loop = asyncio.get_running_loop()
        deadline = loop.time() + kill_after
        while loop.time() < deadline:
            try:
                line = await asyncio.wait_for(proc.stdout.readline(), deadline - loop.time())
            except TimeoutError:
                break
            if line.startswith(b"ACK"):
                acked = int(line.split()[1])
            elif not line:
                break
        return acked
    finally:
        if proc.returncode is None:
            os.kill(proc.pid, signal.SIGKILL)
        await proc.wait()


async def test_kill_9_at_random_instants_50_times(tmp_path: Path, cloud: CloudServer) -> None:
    (tmp_path / "box").mkdir()
    ident, ident_path = await enrolled_box(cloud, tmp_path / "box")
    store = str(tmp_path / "box" / "store.db")
    rng = random.Random(5)
    acked = 0
    kills = 50
    for _ in range(kills):
        acked = max(acked, await run_child(store, ident_path, kill_after=rng.uniform(0.0, 0.25)))
    assert acked > 0
    # Now let it finish draining, producing nothing new.
    c = sqlite3.connect(store)
    (accepted,) = c.execute("SELECT count(*) FROM events WHERE kind='chaos'").fetchone()
    c.close()
    assert accepted >= acked  # nothing acknowledged was lost by the store
    env = {**os.environ, "PYTHONPATH": str(REPO), "CHAOS_LIMIT": "0"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.peers.cloud_child",
        store,
        ident_path,
        cwd=str(REPO),
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while outbox_rows(store) != 0:
            assert loop.time() < deadline, "outbox did not drain after the kills"
            await asyncio.sleep(0.05)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        await proc.wait()
    got = cloud_events(cloud, ident.box_id)
    # Exactly once, in order: seq 1..N carrying event numbers 0..N-1, N = every accepted one.
    assert got == [(i + 1, i) for i in range(accepted)]


async def test_faulty_network_between_box_and_cloud(tmp_path: Path, cloud: CloudServer) -> None:
    proxy = FaultProxy(cloud.port, seed=11, fault_rate=0.5)
    await proxy.start()
    try:
        from dataclasses import replace

        settings = SyncSettings(
            max_envelope_bytes=2048, request_timeout_s=2.0, backoff_base_s=0.001, backoff_cap_s=0.01
        )
        writer, _outbox, client, store = await make_box(
            tmp_path,
            cloud,
            SystemClock(),  # type: ignore[arg-type]
            settings=settings,
        )
        client.identity = replace(client.identity, cloud_url=proxy.url)
        task = asyncio.create_task(writer.run())
        n = 400
        for i in range(n):
            await writer.submit(Event("chaos", 0.0, "t", data={"i": i}))
        await writer.flush()
        await drain(client, store, limit=2000)
        await writer.stop()
        await task
    finally:
        await proxy.stop()
    assert sum(v for k, v in proxy.faults.items() if k != "pass") >= 10, proxy.faults
    assert cloud_events(cloud, client.identity.box_id) == [(i + 1, i) for i in range(n)]


async def test_cloud_restarts_mid_batch(tmp_path: Path, cloud: CloudServer) -> None:
    settings = SyncSettings(
        max_envelope_bytes=1024, request_timeout_s=2.0, backoff_base_s=0.001, backoff_cap_s=0.01
    )
    writer, _outbox, client, store = await make_box(
        tmp_path,
        cloud,
        SystemClock(),  # type: ignore[arg-type]
        settings=settings,
    )
    task = asyncio.create_task(writer.run())
    n = 600
    for i in range(n):
        await writer.submit(Event("chaos", 0.0, "t", data={"i": i}))
    await writer.flush()
    runner = asyncio.create_task(client.run())
    try:
        for _ in range(5):
            await asyncio.sleep(0.05)
            await cloud.stop()  # in-flight requests are cut mid-batch
            await asyncio.sleep(0.02)
            await cloud.start()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while outbox_rows(store) != 0:
            assert loop.time() < deadline
            await asyncio.sleep(0.02)
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
    await writer.stop()
    await task
    assert cloud_events(cloud, client.identity.box_id) == [(i + 1, i) for i in range(n)]
    assert cloud_seqs(cloud, client.identity.box_id, "events") == list(range(1, n + 1))
