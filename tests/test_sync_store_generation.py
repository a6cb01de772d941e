"""A replaced or wiped store (same box identity) numbers its records from 1 again. The store
generation in the sync address keeps those records from colliding with the old store's in
the cloud: before it, `ON CONFLICT DO NOTHING` dropped them and the box deleted them as
acknowledged."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from pathlib import Path

import sqlalchemy as sa

from cloud_api import db
from cloud_api.db import make_engine
from cloud_sync.client import SyncClient, SyncSettings
from cloud_sync.outbox import Outbox
from edge_agent.clock import ManualClock
from edge_agent.messages import Reading
from edge_agent.store.migrations_sync import V34_STORE_GENERATION
from edge_agent.store.schema import MIGRATIONS, connect, migrate
from edge_agent.store.writer import StoreWriter
from tests.peers.cloud import CloudServer, cloud, drain, enrolled_box  # noqa: F401


def seqs(cloud: CloudServer, box: str, epoch: int, stream: str) -> list[int]:
    assert cloud.store is not None
    r = db.records
    with cloud.store.engine.connect() as c:
        return [
            int(s)
            for (s,) in c.execute(
                sa.select(r.c.seq)
                .where(r.c.box_id == box, r.c.epoch == epoch, r.c.stream == stream)
                .order_by(r.c.seq)
            )
        ]


async def run_store(
    store: str, cloud: CloudServer, ident_path: str, clock: ManualClock, n: int, start: float
) -> None:
    from cloud_sync.identity import load

    ident = load(ident_path)
    assert ident is not None
    outbox = Outbox(ident, clock=clock.time)
    writer = StoreWriter(store, clock=clock, reserve_bytes=0)
    outbox.attach(writer)
    await writer.open()
    task = asyncio.create_task(writer.run())
    for i in range(n):
        await writer.submit(Reading("fridge-1", "temp", 3.0, start + i, "°C"))
    await writer.flush()
    client = SyncClient(
        ident,
        outbox,
        writer,
        identity_file=ident_path,
        clock=clock,
        settings=SyncSettings(max_envelope_bytes=4096),
    )
    await drain(client, store, limit=200)
    await writer.stop()
    await task


async def test_a_replaced_store_syncs_as_a_new_generation(
    tmp_path: Path, cloud: CloudServer, clock: ManualClock
) -> None:
    ident, ident_path = await enrolled_box(cloud, tmp_path / "box")
    store = str(tmp_path / "box" / "store.db")
    await run_store(store, cloud, ident_path, clock, 300, clock.time())
    assert seqs(cloud, ident.box_id, 1, "telemetry") == list(range(1, 301))
    # The card is replaced: the store goes, the identity stays.
    old = tmp_path / "old-card"
    old.mkdir()
    for p in (tmp_path / "box").glob("store.db*"):
        shutil.move(str(p), old / p.name)
    await run_store(store, cloud, ident_path, clock, 211, clock.time() + 1000)
    # Every reading of the new store arrived, at its own generation; the old ones are kept.
    assert seqs(cloud, ident.box_id, 2, "telemetry") == list(range(1, 212))
    assert seqs(cloud, ident.box_id, 1, "telemetry") == list(range(1, 301))
    c = sqlite3.connect(store)
    assert c.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0
    c.close()
    # The discontinuity is recorded and the fleet view shows it.
    assert cloud.store is not None
    (box,) = [b for b in cloud.store.fleet() if b["box"] == ident.box_id]
    assert box["store_generation"] == 2 and len(box["store_replaced_at"]) == 1
    kinds = [e["kind"] for e in cloud.store.security_log()]
    assert "store_generation" in kinds
    # The old card put back: its generation is still known, nothing is mixed up.
    for p in (tmp_path / "box").glob("store.db*"):
        p.unlink()
    for p in old.glob("store.db*"):
        shutil.move(str(p), tmp_path / "box" / p.name)
    await run_store(store, cloud, ident_path, clock, 5, clock.time() + 2000)
    assert seqs(cloud, ident.box_id, 1, "telemetry") == list(range(1, 306))
    assert seqs(cloud, ident.box_id, 2, "telemetry") == list(range(1, 212))


def test_a_store_older_than_generations_keeps_its_address(tmp_path: Path) -> None:
    numbered = connect(str(tmp_path / "old.db"))
    before = tuple(m for m in MIGRATIONS if m.version < V34_STORE_GENERATION.version)
    migrate(numbered, before)
    numbered.execute(
        "INSERT INTO outbox_streams (stream, next_seq, acked_seq) VALUES ('telemetry', 9, 8)"
    )
    migrate(numbered)
    assert Outbox.generation(numbered) == ""
    fresh = connect(str(tmp_path / "new.db"))
    migrate(fresh)
    other = connect(str(tmp_path / "other.db"))
    migrate(other)
    assert len(Outbox.generation(fresh)) == 32
    assert Outbox.generation(fresh) != Outbox.generation(other)


def test_a_cloud_database_older_than_generations_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "cloud.db"
    c = sqlite3.connect(path)
    c.executescript(
        """
        CREATE TABLE records (box_id VARCHAR(64) NOT NULL, stream VARCHAR(32) NOT NULL,
            seq BIGINT NOT NULL, venue_id VARCHAR(64) NOT NULL, box_ts FLOAT NOT NULL,
            received_at FLOAT NOT NULL, type VARCHAR(16) NOT NULL, device_id VARCHAR(128),
            point VARCHAR(128), kind VARCHAR(128), body TEXT NOT NULL,
            PRIMARY KEY (box_id, stream, seq));
        CREATE INDEX records_venue_stream ON records (venue_id, stream, box_ts);
        CREATE TABLE watermarks (box_id VARCHAR(64) NOT NULL, stream VARCHAR(32) NOT NULL,
            seq BIGINT NOT NULL, PRIMARY KEY (box_id, stream));
        CREATE TABLE losses (box_id VARCHAR(64) NOT NULL, stream VARCHAR(32) NOT NULL,
            first BIGINT NOT NULL, last BIGINT NOT NULL, count BIGINT NOT NULL,
            reason VARCHAR(32) NOT NULL, received_at FLOAT NOT NULL,
            PRIMARY KEY (box_id, stream, first));
        INSERT INTO records VALUES ('box-a', 'telemetry', 1, 'v', 1.0, 2.0, 'reading',
            'd', 'p', NULL, '{}');
        INSERT INTO watermarks VALUES ('box-a', 'telemetry', 1);
        INSERT INTO losses VALUES ('box-a', 'telemetry', 2, 3, 2, 'quota', 2.0);
        """
    )
    c.close()
    engine = make_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        assert conn.execute(sa.select(db.records.c.epoch, db.records.c.seq)).all() == [(1, 1)]
        assert conn.execute(sa.select(db.watermarks.c.epoch)).all() == [(1,)]
        assert conn.execute(sa.select(db.losses.c.epoch, db.losses.c.last)).all() == [(1, 3)]
        # The epoch is in the key now: generation 2's seq 1 is a different record.
        conn.execute(
            db.records.insert(),
            [
                {
                    "box_id": "box-a",
                    "epoch": 2,
                    "stream": "telemetry",
                    "seq": 1,
                    "venue_id": "v",
                    "box_ts": 1.0,
                    "received_at": 2.0,
                    "type": "reading",
                    "body": "{}",
                }
            ],
        )
    engine.dispose()
