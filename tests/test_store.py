"""The store: accepted means committed; migrations; retention; readers beside the writer."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from edge_agent.bus import Bus
from edge_agent.errors import StoreError
from edge_agent.messages import Event, Quality, Reading, Severity
from edge_agent.store.reader import StoreReader
from edge_agent.store.retention import RetentionPolicy, apply_retention
from edge_agent.store.schema import SCHEMA_VERSION, connect, migrate
from edge_agent.store.writer import StoreWriter
from tests.helpers import until


@pytest.fixture
async def store(tmp_path):
    w = StoreWriter(str(tmp_path / "s.db"))
    bus = Bus()
    w.attach(bus)
    await w.open()
    task = asyncio.create_task(w.run())
    yield w, bus
    await w.stop()
    await task


async def test_flush_returns_after_commit_and_a_fresh_reader_sees_it(store, tmp_path):
    w, bus = store
    await bus.publish_many(
        [Reading("fridge", "air", 3.5, 100.0, "°C"), Reading("fridge", "air", 3.6, 101.0, "°C")]
    )
    await w.flush()
    with StoreReader(str(tmp_path / "s.db")) as r:
        rows = r.readings("fridge")
        assert [x.value for x in rows] == [3.6, 3.5]
        assert r.latest("fridge")[0].value == 3.6
        assert rows[0].unit == "°C"


async def test_same_millisecond_readings_are_never_merged(store, tmp_path):
    w, bus = store
    await bus.publish_many([Reading("d", "p", float(i), 100.0) for i in range(50)])
    await w.flush()
    with StoreReader(str(tmp_path / "s.db")) as r:
        assert r.count_readings("d") == 50


async def test_latest_keeps_the_newest_timestamp_even_if_it_arrives_first(store, tmp_path):
    w, bus = store
    await bus.publish(Reading("d", "p", 2.0, 200.0))
    await w.flush()
    await bus.publish(Reading("d", "p", 1.0, 100.0, quality=Quality.BACKFILLED))
    await w.flush()
    with StoreReader(str(tmp_path / "s.db")) as r:
        assert r.latest("d")[0].value == 2.0
        assert r.count_readings("d") == 2


async def test_events_commit_with_synchronous_full(store, tmp_path):
    w, _ = store
    await w.accept(Event("door", 1.0, "fridge", Severity.WARNING, "door open", {"s": 60}))
    assert w._sync_mode == "FULL"
    with StoreReader(str(tmp_path / "s.db")) as r:
        (ev,) = r.events()
        assert ev.kind == "door" and ev.data == {"s": 60} and ev.severity is Severity.WARNING


async def test_telemetry_uses_the_configured_sync_mode(tmp_path):
    w = StoreWriter(str(tmp_path / "n.db"), telemetry_sync="normal")
    await w.open()
    task = asyncio.create_task(w.run())
    await w.accept(Reading("d", "p", 1.0, 1.0))
    assert w._sync_mode == "NORMAL"
    await w.accept(Event("e", 1.0, "s"))
    assert w._sync_mode == "FULL"
    await w.stop()
    await task


async def test_stop_commits_everything_queued(tmp_path):
    w = StoreWriter(str(tmp_path / "s.db"), max_batch=7)
    await w.open()
    task = asyncio.create_task(w.run())
    for i in range(100):
        await w.submit(Reading("d", "p", float(i), float(i)))
    await w.stop()
    await task
    with StoreReader(str(tmp_path / "s.db")) as r:
        assert r.count_readings() == 100


async def test_commit_failure_is_retried_not_swallowed(tmp_path, caplog):
    w = StoreWriter(str(tmp_path / "s.db"))
    await w.open()
    # Simulate the disk refusing writes: drop the table the writer needs, then restore it.
    conn = connect(str(tmp_path / "s.db"))
    conn.execute("ALTER TABLE readings RENAME TO readings_away")
    task = asyncio.create_task(w.run())
    await w.submit(Reading("d", "p", 1.0, 1.0))
    flushed = asyncio.create_task(w.flush())
    await until(lambda: w.stats.failed_commits >= 2, what="retried commits")
    assert not flushed.done()  # not accepted while it cannot be committed
    conn.execute("ALTER TABLE readings_away RENAME TO readings")
    await asyncio.wait_for(flushed, 10)
    await w.stop()
    await task
    assert any("commit failed" in rec.message for rec in caplog.records)
    with StoreReader(str(tmp_path / "s.db")) as r:
        assert r.count_readings() == 1


def test_migrations_are_versioned_and_a_newer_store_is_refused(tmp_path):
    path = str(tmp_path / "m.db")
    conn = connect(path)
    assert migrate(conn) == SCHEMA_VERSION
    assert migrate(conn) == SCHEMA_VERSION  # idempotent
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="newer than this agent"):
        migrate(conn)


def test_reader_on_a_missing_store_is_a_clear_error(tmp_path):
    with pytest.raises(StoreError, match="no store at"):
        StoreReader(str(tmp_path / "none.db"))


def test_retention_rolls_up_then_deletes_raw(tmp_path):
    path = str(tmp_path / "r.db")
    conn = connect(path)
    migrate(conn)
    conn.execute("INSERT INTO series (id, device_id, point, unit) VALUES (1, 'd', 'p', '')")
    day = 86400.0
    now = 100 * day
    rows = [(1, now - 40 * day + i * 60.0, float(i % 10), 0) for i in range(120)]  # old: 2 h
    rows += [(1, now - 1 * day, 5.0, 0)]  # recent
    rows += [(1, now - 40 * day, "open", 0)]  # non-numeric: deleted, not rolled up
    conn.executemany("INSERT INTO readings VALUES (?, ?, ?, ?)", rows)
    conn.execute(
        "INSERT INTO events (ts, kind, source, severity, message, data) "
        "VALUES (?, 'x', 's', 1, '', '{}')",
        (now - 2000 * day,),
    )
    policy = RetentionPolicy(raw_days=30, rollup_days=1095, rollup_bucket_s=900, event_days=1095)
    res = apply_retention(conn, now, policy)
    assert res.raw_deleted == 121 and res.events_deleted == 1
    (remaining,) = conn.execute("SELECT count(*) FROM readings").fetchone()
    assert remaining == 1
    total, lo, hi = conn.execute(
        "SELECT sum(count), min(min), max(max) FROM readings_rollup"
    ).fetchone()
    assert (total, lo, hi) == (120, 0.0, 9.0)
    # a second pass changes nothing
    assert apply_retention(conn, now, policy).raw_deleted == 0


def test_reader_does_not_block_the_writer(tmp_path):
    path = str(tmp_path / "c.db")
    conn = connect(path)
    migrate(conn)
    reader = connect(path, readonly=True)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM readings").fetchone()
    conn.execute("INSERT INTO series (device_id, point, unit) VALUES ('d', 'p', '')")
    reader.execute("COMMIT")
    with pytest.raises(sqlite3.OperationalError):
        reader.execute("INSERT INTO series (device_id, point, unit) VALUES ('x', 'y', '')")
