"""HACCP records outlive the box: every record kind reaches the real cloud over loopback with
its chain fields, the cloud verifies the chain and anchors, and each way of tampering with a
real store (truncated tail, deleted chain, edit with hashes recomputed, a replaced store,
malformed data) is caught on the box offline and in the cloud."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import sqlalchemy as sa

from cloud_api import db
from cloud_api.cli import main as cloud_main
from cloud_sync.client import SyncClient
from cloud_sync.haccp_stream import STREAM, ChainAnchoring, receipt_path, with_pump
from cloud_sync.outbox import Outbox
from edge_agent.clock import ManualClock
from edge_agent.messages import Event, Reading
from edge_agent.store.schema import connect
from edge_agent.store.writer import StoreWriter
from rules.cli import verify_store
from rules.haccp import chain
from tests.peers.cloud import (  # noqa: F401 - cloud is a fixture
    ADMIN,
    VENUE,
    CloudServer,
    cloud,
    make_box,
)

KINDS = [
    ("reading", {"value": 3.1, "min": 2.9, "max": 3.4, "n": 15}),
    ("gap", {"from": 0.0, "to": 900.0}),
    ("excursion_start", {"alarm_id": 1, "value": 9.5, "limit": 8.0}),
    ("acknowledged", {"alarm_id": 1, "by": "Jo Bloggs (jo)"}),
    ("corrective_action", {"alarm_id": 1, "action": "moved stock", "disposition": "moved"}),
    ("excursion_end", {"alarm_id": 1, "peak": 11.0, "minutes_over_limit": 42.0}),
    ("check", {"check": "opening", "by": "Jo Bloggs (jo)", "passed": True}),
    ("cooling", {"step": "passed", "minutes": 80.0}),
    ("reheat", {"step": "passed", "value": 76.0}),
    ("danger_zone", {"minutes": 30.0, "verdict": "refrigerate or use"}),
    ("line_clean_due", {"days": 7.0}),
]


@dataclass
class Box:
    writer: StoreWriter
    outbox: Outbox
    client: SyncClient
    anchoring: ChainAnchoring
    store: str
    task: asyncio.Task[None]
    events: list[Event]

    async def append(self, kind: str, data: dict[str, object], unit: str = "walk-in") -> int:
        ts = self.client.clock.time()
        seq: int = await self.writer.transact(lambda c: chain.append(c, ts, unit, kind, data))
        return seq

    async def round(self, s: aiohttp.ClientSession) -> None:
        """One sync round as the client runs it: send what waits, else its idle hook (called
        directly: the client's idle wait sleeps on the manual clock)."""
        conn = sqlite3.connect(self.store)
        (waiting,) = conn.execute("SELECT count(*) FROM outbox").fetchone()
        conn.close()
        if waiting:
            await self.client.step(s)
        else:
            await self.anchoring.after_sync(s)

    async def sync(self) -> None:
        """Rounds of the sync client (with its idle hook) until the chain is sent and anchored
        or the cloud refuses the anchor."""
        async with aiohttp.ClientSession() as s:
            for _ in range(50):
                before = (self.anchoring.anchored, self.anchoring.refused)
                await self.round(s)
                if (self.anchoring.anchored, self.anchoring.refused) != before:
                    return
        raise AssertionError("the chain was neither anchored nor refused")

    async def stop(self) -> None:
        await self.writer.stop()
        await self.task


async def open_box(tmp_path: Path, cloud: CloudServer, clock: ManualClock) -> Box:
    writer, outbox, client, store = await make_box(tmp_path, cloud, clock)
    return await _wire(writer, outbox, client, store, clock)


async def _wire(
    writer: StoreWriter, outbox: Outbox, client: SyncClient, store: str, clock: ManualClock
) -> Box:
    events: list[Event] = []

    async def publish(e: Event) -> None:
        events.append(e)

    writer.in_transaction = with_pump(outbox.in_transaction, outbox, clock.time)
    anchoring = ChainAnchoring(outbox, writer, clock, publish)
    anchoring.request = client.signed_request
    client.after_sync = anchoring.after_sync
    task = asyncio.create_task(writer.run())
    return Box(writer, outbox, client, anchoring, store, task, events)


async def reopen(box: Box, clock: ManualClock) -> Box:
    """The same box identity on the (tampered) store file: a restarted agent."""
    writer = StoreWriter(box.store, clock=clock)
    await writer.open()
    outbox = Outbox(box.client.identity, clock=clock.time)
    client = SyncClient(box.client.identity, outbox, writer, clock=clock)
    return await _wire(writer, outbox, client, box.store, clock)


@pytest.fixture
def clock() -> ManualClock:
    # Signed requests carry the box's time and the cloud allows 5 minutes of skew.
    return ManualClock(start=time.time())


def cloud_chain(cloud: CloudServer, box: str) -> list[tuple[int, str, str, str]]:
    assert cloud.store is not None
    t = db.haccp_records
    with cloud.store.engine.connect() as c:
        return [
            (int(s), k, h, p)
            for s, k, h, p in c.execute(
                sa.select(t.c.seq, t.c.kind, t.c.hash, t.c.problem)
                .where(t.c.box_id == box)
                .order_by(t.c.seq)
            )
        ]


def security(cloud: CloudServer) -> list[tuple[str, str]]:
    assert cloud.store is not None
    return [(e["kind"], e["detail"]) for e in cloud.store.security_log()]


def cloud_verify(cloud: CloudServer, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    rc = cloud_main(
        ["--data", cloud.data, "--db", cloud.db_url, "haccp", "verify", "--venue", VENUE]
    )
    return rc, capsys.readouterr().out


@pytest.fixture
async def synced(tmp_path: Path, cloud: CloudServer, clock: ManualClock) -> AsyncIterator[Box]:
    """A real box store holding every record kind, synced and anchored."""
    box = await open_box(tmp_path, cloud, clock)
    for kind, data in KINDS:
        await box.append(kind, data)
        await clock.advance(20)
    # A reading batch: the writer's own transaction pumps the chain into the outbox.
    await box.writer.submit(Reading("fridge-1", "temp", 3.0, clock.time(), "°C"))
    await box.writer.flush()
    yield box
    if not box.task.done():
        await box.stop()


async def test_every_record_kind_syncs_with_its_chain_fields_and_is_anchored(
    synced: Box, cloud: CloudServer, capsys: pytest.CaptureFixture[str]
) -> None:
    box = synced
    conn = sqlite3.connect(box.store)
    # Pumped inside the reading batch's transaction, before any sync round ran.
    assert conn.execute("SELECT count(*) FROM outbox WHERE stream=?", (STREAM,)).fetchone()[0] == 11
    local = [(s, k, h, "") for s, k, h in conn.execute("SELECT seq, kind, hash FROM haccp_records")]
    conn.close()
    await box.sync()
    ident = box.client.identity
    assert cloud_chain(cloud, ident.box_id) == local
    assert {k for _, k, _, _ in local} == {k for k, _ in KINDS}
    doc = await cloud.get(f"/v1/venues/{VENUE}/haccp/records")
    assert isinstance(doc, dict)
    assert [r["seq"] for r in doc["records"]] == list(range(1, 12))
    assert doc["records"][0]["prev_hash"] == chain.GENESIS
    assert json.loads(doc["records"][6]["data"])["check"] == "opening"
    (verdict,) = doc["chains"]
    assert verdict["ok"] and verdict["records"] == 11 and verdict["last_anchor"]["count"] == 11
    # The receipt is kept in the store and beside the identity, and verifies offline.
    ok, lines = verify_store(box.store)
    assert ok, lines
    assert "matches the cloud's receipt for 11 record(s)" in lines[1]
    assert os.stat(receipt_path(box.store)).st_mode & 0o077 == 0
    rc, out = cloud_verify(cloud, capsys)
    assert rc == 0 and "11 record(s) verified, intact; last anchor 11" in out
    assert security(cloud) == []
    # Nothing new: no second anchor within the hour; a new record anchors again.
    anchors = box.anchoring.anchored
    async with aiohttp.ClientSession() as s:
        await box.round(s)
    assert box.anchoring.anchored == anchors
    await box.append("check", {"check": "closing", "by": "Jo Bloggs (jo)"})
    await box.sync()
    assert box.anchoring.anchored == anchors + 1
    assert len(cloud_chain(cloud, ident.box_id)) == 12


def _drop_triggers(conn: sqlite3.Connection) -> None:
    conn.execute("DROP TRIGGER haccp_no_update")
    conn.execute("DROP TRIGGER haccp_no_delete")


def truncate_tail(store: str) -> None:
    conn = connect(store)
    _drop_triggers(conn)
    conn.execute("DELETE FROM haccp_records WHERE seq > 8")
    conn.close()


def delete_chain(store: str) -> None:
    conn = connect(store)
    _drop_triggers(conn)
    conn.execute("DELETE FROM haccp_records")
    conn.execute("DELETE FROM haccp_receipts")  # covering tracks in the store too
    conn.close()


def rewrite_and_recompute(store: str) -> None:
    """Edit record 3 and recompute every hash after it: the chain is internally consistent."""
    conn = connect(store)
    _drop_triggers(conn)
    rows = conn.execute(
        "SELECT seq, ts, unit, kind, data FROM haccp_records ORDER BY seq"
    ).fetchall()
    prev = chain.GENESIS
    for seq, ts, unit, kind, data in rows:
        parsed = json.loads(data)
        if seq == 3:
            parsed["value"] = 7.5  # the excursion "never happened"
        text = chain.canonical(parsed).decode()
        h = chain.record_hash(prev, seq, ts, unit, kind, parsed)
        conn.execute(
            "UPDATE haccp_records SET data=?, prev_hash=?, hash=? WHERE seq=?",
            (text, prev, h, seq),
        )
        prev = h
    conn.close()


def replace_store(store: str) -> None:
    """A fresh store in place of the real one (same box identity beside it)."""
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(store + suffix):
            os.remove(store + suffix)
    conn = connect(store)
    from edge_agent.store.schema import migrate

    migrate(conn)
    conn.execute("BEGIN")
    for i in range(3):
        chain.append(conn, 1.0 + i, "walk-in", "reading", {"value": 3.0})
    conn.execute("COMMIT")
    conn.close()


@pytest.mark.parametrize(
    ("tamper", "box_says", "cloud_kind", "cloud_says"),
    [
        (truncate_tail, "TRUNCATED", "haccp_anchor_refused", "TRUNCATED"),
        (delete_chain, "TRUNCATED", "haccp_anchor_refused", "TRUNCATED"),
        (rewrite_and_recompute, "REWRITTEN", "haccp_anchor_refused", "REWRITTEN"),
        (replace_store, "TRUNCATED", "haccp_chain_conflict", "different hash"),
    ],
    ids=["truncated-tail", "deleted-chain", "recomputed-hashes", "replaced-store"],
)
async def test_tampering_is_caught_on_the_box_and_in_the_cloud(
    synced: Box,
    cloud: CloudServer,
    clock: ManualClock,
    capsys: pytest.CaptureFixture[str],
    tamper: object,
    box_says: str,
    cloud_kind: str,
    cloud_says: str,
) -> None:
    await synced.sync()
    assert verify_store(synced.store)[0]
    await synced.stop()
    backup = synced.store + ".orig"
    shutil.copy(synced.store, backup)  # the real store, kept to show the copy was tampered
    assert callable(tamper)
    tamper(synced.store)
    # Offline, on the box: the chain may verify on its own, the cloud's receipt does not.
    ok, lines = verify_store(synced.store)
    assert not ok and box_says in "\n".join(lines), lines
    # The restarted agent syncs the tampered store: the cloud refuses and raises it.
    box = await reopen(synced, clock)
    await clock.advance(10)
    await box.append("check", {"check": "closing", "by": "Sam (sam)"})
    await box.sync()
    kinds = security(cloud)
    assert any(k == cloud_kind and cloud_says in d and VENUE in d for k, d in kinds), kinds
    assert box.anchoring.refused >= 1
    assert [e.kind for e in box.events] == ["haccp.anchor_refused"]
    rc, out = cloud_verify(cloud, capsys)
    assert rc == 1 and ("BROKEN" in out or "TAMPERING" in out), out
    await box.stop()


async def test_malformed_records_are_named_on_the_box_and_in_the_cloud(
    synced: Box, cloud: CloudServer, capsys: pytest.CaptureFixture[str]
) -> None:
    await synced.sync()
    seq = await synced.append("reading", {"value": 3.0})
    await synced.append("reading", {"value": 3.2})
    conn = connect(synced.store)
    # Before the records are pumped: what the cloud receives is the tampered text.
    conn.execute("DROP TRIGGER haccp_no_update")
    conn.execute("UPDATE haccp_records SET data = '{\"value\": NaN}' WHERE seq = ?", (seq,))
    conn.close()
    ok, lines = verify_store(synced.store)
    assert not ok and f"BROKEN at record {seq}: malformed: data holds NaN" in lines[0]
    async with aiohttp.ClientSession() as s:
        for _ in range(6):
            await synced.round(s)
    assert any(
        k == "haccp_record_invalid" and f"record {seq}: malformed: data holds NaN" in d
        for k, d in security(cloud)
    )
    rc, out = cloud_verify(cloud, capsys)
    assert rc == 1 and f"BROKEN at record {seq}: malformed: data holds NaN" in out


async def test_admin_token_guards_the_venue_chain(cloud: CloudServer) -> None:
    async with (
        aiohttp.ClientSession() as s,
        s.get(cloud.url + f"/v1/venues/{VENUE}/haccp/records") as r,
    ):
        assert r.status == 401
    assert ADMIN


async def test_the_cloud_alone_produces_the_inspectors_report(
    synced: Box, cloud: CloudServer, capsys: pytest.CaptureFixture[str]
) -> None:
    import csv
    import datetime as dt

    import pypdfium2 as pdfium

    await synced.sync()
    await synced.stop()
    os.remove(synced.store)  # the box's SD card died
    day = dt.datetime.fromtimestamp(synced.client.clock.time(), dt.UTC).date().isoformat()
    base = ["--data", cloud.data, "--db", cloud.db_url, "haccp", "report", "--venue", VENUE]
    period = ["--from", day, "--to", day, "--tz", "UTC"]
    out = Path(cloud.data) / "r.pdf"
    assert cloud_main([*base, *period, "-o", str(out)]) == 0
    doc = pdfium.PdfDocument(str(out))
    text = " ".join(
        " ".join(doc[i].get_textpage().get_text_range() for i in range(len(doc))).split()
    )
    doc.close()
    assert "from the cloud copy of the venue's records" in text
    assert "Record chain: INTACT (11 records verified)" in text
    assert "Last cloud anchor: 11 records verified" in text
    assert "moved stock" in text and "Jo Bloggs (jo)" in text
    rows_csv = Path(cloud.data) / "r.csv"
    assert cloud_main([*base, *period, "--format", "csv", "-o", str(rows_csv)]) == 0
    rows = list(csv.DictReader(rows_csv.read_text(encoding="utf-8").splitlines()))
    assert [int(r["seq"]) for r in rows] == list(range(1, 12))


async def test_a_record_chained_after_the_pump_is_not_anchored_before_the_cloud_has_it(
    synced: Box, cloud: CloudServer
) -> None:
    await synced.sync()
    # The rules service chains a record between the pump and the anchor (it never waits for
    # sync): the anchor covers what was sent, so the cloud can check it, and nothing is raised.
    await synced.append("check", {"check": "closing", "by": "Jo Bloggs (jo)"})
    synced.anchoring.every_s = 0.0
    async with aiohttp.ClientSession() as s:
        assert await synced.anchoring.anchor_if_due(s) is True
    assert synced.anchoring.refused == 0 and security(cloud) == []
    conn = connect(synced.store, readonly=True)
    try:
        from rules.haccp.anchor import last_receipt

        found = last_receipt(conn)
    finally:
        conn.close()
    assert found is not None and found[0].anchor.count == 11
    await synced.sync()  # the next round sends record 12 and anchors it
    assert len(cloud_chain(cloud, synced.client.identity.box_id)) == 12 and security(cloud) == []
