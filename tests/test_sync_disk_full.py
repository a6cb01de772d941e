"""A full disk, for real: SQLite itself reports SQLITE_FULL because the store connection's
`PRAGMA max_page_count` caps the database at its current size. The writer's commit fails,
the outbox's on_commit_error hook evicts bulk then telemetry (never alarms/HACCP/audit/
events) with loss records, and the retried batch commits; the cloud then accounts for every
seq (delivered or counted lost)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from edge_agent.clock import ManualClock
from edge_agent.messages import Event, Reading, Severity
from edge_agent.store.writer import StoreWriter
from tests.peers.cloud import CloudServer, cloud, cloud_seqs, drain, losses, make_box, start_cloud  # noqa: F401 - cloud is a fixture


async def cap_database_at_current_size(writer: StoreWriter) -> int:
    def cap(conn: sqlite3.Connection) -> int:
        (pages,) = conn.execute("PRAGMA page_count").fetchone()
        conn.execute(f"PRAGMA max_page_count = {pages}")
        return int(pages)

    pages: int = await writer.run_job(cap)
    return pages


async def flush_through_retries(writer: StoreWriter, clock: ManualClock) -> None:
    """Wait for the batch to commit while the writer retries on the manual clock."""
    done = asyncio.ensure_future(writer.flush())
    for _ in range(400):
        await asyncio.sleep(0.005)
        if done.done():
            break
        await clock.advance(0.5)
    await done


def other_connection(store: str, sql: str) -> None:
    c = sqlite3.connect(store, timeout=10)
    try:
        c.execute(sql)
        c.commit()
    finally:
        c.close()


def count(store: str, sql: str) -> int:
    c = sqlite3.connect(store)
    try:
        return int(c.execute(sql).fetchone()[0])
    finally:
        c.close()


async def test_disk_full_evicts_bulk_then_telemetry_and_the_batch_commits(
    tmp_path: Path, cloud: CloudServer, clock: ManualClock
) -> None:
    writer, outbox, client, store = await make_box(tmp_path, cloud, clock)
    task = asyncio.create_task(writer.run())
    t0 = clock.time()
    for i in range(3000):
        await writer.submit(Reading("plug-1", "raw.power", float(i), t0 + i, "W"))
    for i in range(300):
        await writer.submit(Reading("fridge-1", "temp", 3.0, t0 + i, "°C"))
    for i in range(20):
        await writer.submit(Event("haccp.check", t0 + i, "rules", data={"i": i}))
    await writer.flush()
    pages = await cap_database_at_current_size(writer)
    # The disk is now full. A batch of critical records (and some telemetry) arrives.
    for i in range(150):
        await writer.submit(
            Event("alarm.raised", t0 + i, "rules", Severity.ALARM, "fridge warm", {"i": i})
        )
        await writer.submit(Event("audit.setpoint", t0 + i, "ui", data={"i": i, "pad": "x" * 80}))
        await writer.submit(Reading("fridge-1", "temp", 4.0, t0 + 300 + i, "°C"))
    await flush_through_retries(writer, clock)
    assert writer.stats.failed_commits >= 1  # SQLite really said no
    assert outbox.stats.disk_full_retries >= 1
    assert count(store, "PRAGMA page_count") <= pages  # and the cap held throughout
    # The retried batch committed whole: the store and the outbox have every record of it.
    assert count(store, "SELECT count(*) FROM events WHERE kind='alarm.raised'") == 150
    assert count(store, "SELECT count(*) FROM outbox WHERE stream='alarms'") == 150
    assert count(store, "SELECT count(*) FROM outbox WHERE stream='audit'") == 150
    assert count(store, "SELECT count(*) FROM outbox WHERE stream='haccp'") == 20
    evicted = {e[0] for e in outbox.stats.evictions}
    assert "bulk" in evicted and evicted <= {"bulk", "telemetry"}
    if "telemetry" in evicted:  # bulk goes first: telemetry only once bulk is gone
        assert count(store, "SELECT count(*) FROM outbox WHERE stream='bulk'") == 0
    assert count(store, "SELECT count(*) FROM outbox WHERE stream='loss'") == len(
        outbox.stats.evictions
    )
    # Give the disk its space back, deliver, and check every seq is delivered or lost.
    await writer.run_job(lambda conn: conn.execute("PRAGMA max_page_count = 1073741823"))
    await drain(client, store, limit=200)
    box = client.identity.box_id
    assert cloud_seqs(cloud, box, "alarms") == list(range(1, 151))
    assert cloud_seqs(cloud, box, "audit") == list(range(1, 151))
    assert cloud_seqs(cloud, box, "haccp") == list(range(1, 21))
    for stream, made in (("bulk", 3000), ("telemetry", 450)):
        got = set(cloud_seqs(cloud, box, stream))
        lost = {s for a, b, _ in losses(cloud, box, stream) for s in range(a, b + 1)}
        assert not (got & lost) and got | lost == set(range(1, made + 1))
    await writer.stop()
    await task


async def test_disk_full_with_only_critical_records_keeps_them_and_retries(
    tmp_path: Path, cloud: CloudServer, clock: ManualClock
) -> None:
    writer, outbox, _client, store = await make_box(tmp_path, cloud, clock)
    task = asyncio.create_task(writer.run())
    for i in range(200):
        await writer.submit(Event("haccp.record", clock.time(), "rules", data={"i": i}))
    await writer.flush()
    await asyncio.to_thread(other_connection, store, "CREATE TABLE filler (x BLOB)")
    await asyncio.to_thread(other_connection, store, "INSERT INTO filler VALUES (zeroblob(65536))")
    await cap_database_at_current_size(writer)
    for i in range(200, 400):
        await writer.submit(Event("haccp.record", clock.time(), "rules", data={"i": i}))
    done = asyncio.ensure_future(writer.flush())
    for _ in range(20):
        await asyncio.sleep(0.005)
        await clock.advance(0.5)
    # Nothing may be evicted, so nothing commits: the batch waits in memory, never dropped.
    assert not done.done()
    assert outbox.stats.evicted == 0 and outbox.stats.disk_full_critical
    assert writer.stats.failed_commits >= 2
    assert count(store, "SELECT count(*) FROM outbox WHERE stream='haccp'") == 200
    # Space comes back (something else in the store was cleaned up): the same batch commits
    # on the next retry.
    await asyncio.to_thread(other_connection, store, "DROP TABLE filler")
    for _ in range(400):
        await asyncio.sleep(0.005)
        if done.done():
            break
        await clock.advance(0.5)
    await done
    assert count(store, "SELECT count(*) FROM outbox WHERE stream='haccp'") == 400
    await writer.stop()
    await task
