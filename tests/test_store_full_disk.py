"""A store on a really full filesystem (a sized tmpfs, mounted for the test; root only).

Under WAL even an eviction needs free space, so the store keeps a reserve file it can give
up. The test fills the filesystem to the last byte with another file, then proves: telemetry
keeps committing by evicting (each eviction recorded in the transaction that frees the space,
and synced); alarms and HACCP records commit at once (the injected clock is never advanced,
so any backoff sleep would hang the test); once the other file is gone the reserve comes back
by itself; the cloud accounts for every seq, delivered or counted lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud_sync.client import SyncClient, SyncSettings
from cloud_sync.outbox import Outbox
from edge_agent.clock import ManualClock
from edge_agent.messages import Event, Reading, Severity
from edge_agent.store.writer import StoreWriter
from tests.peers.cloud import CloudServer, cloud, cloud_seqs, drain, enrolled_box, losses  # noqa: F401

FS_BYTES = 16 * 1024 * 1024
RESERVE = 4 * 1024 * 1024


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "fs"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a sized tmpfs needs root")
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={FS_BYTES},mode=0700", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=True)


def fill_up(path: Path) -> int:
    """Take every free byte of the filesystem with one file; returns its size."""
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    block = b"\xa5" * 65536
    total = 0
    try:
        while True:
            try:
                total += os.write(fd, block)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                if len(block) == 1:
                    break
                block = block[: len(block) // 2]
    finally:
        os.close(fd)
    return total


def count(store: str, sql: str) -> int:
    c = sqlite3.connect(store)
    try:
        return int(c.execute(sql).fetchone()[0])
    finally:
        c.close()


async def critical(writer: StoreWriter, outbox: Outbox, clock: ManualClock, i: int) -> None:
    """What the rules service does for an alarm: its own synchronous=FULL transaction."""
    body = {"type": "alarm", "i": i, "note": "walk-in fridge above 8 °C"}

    def job(conn: sqlite3.Connection) -> None:
        conn.execute(
            "INSERT INTO events (ts, kind, source, severity, message, data) "
            "VALUES (?, 'alarm.raised', 'rules', ?, 'fridge warm', ?)",
            (clock.time(), int(Severity.ALARM), json.dumps(body)),
        )
        outbox.append(conn, "alarms", [body], clock.time())

    await writer.transact(job)


async def test_full_filesystem_evicts_telemetry_keeps_alarms_and_recovers(
    small_fs: Path, tmp_path: Path, cloud: CloudServer, clock: ManualClock
) -> None:
    ident, id_path = await enrolled_box(cloud, tmp_path / "box")
    outbox = Outbox(ident, clock=clock.time)
    store = str(small_fs / "store.db")
    writer = StoreWriter(store, clock=clock, reserve_bytes=RESERVE, min_commit_interval_s=0)
    outbox.attach(writer)
    await writer.open()
    assert os.path.getsize(store + "-reserve") == RESERVE
    assert os.stat(store).st_mode & 0o777 == 0o600
    client = SyncClient(
        ident,
        outbox,
        writer,
        identity_file=id_path,
        clock=clock,
        settings=SyncSettings(max_envelope_bytes=64 * 1024),
    )
    task = asyncio.create_task(writer.run())
    t0 = clock.time()
    made = 0

    async def telemetry(n: int) -> None:
        nonlocal made
        for _ in range(n):
            made += 1
            await writer.submit(
                Reading(f"probe-{made % 20}", "temp", 3.0 + made % 5, t0 + made, "°C")
            )
        # No clock advance: a commit that sleeps on backoff hangs here and fails the test.
        await asyncio.wait_for(writer.flush(), 30)

    await telemetry(6000)
    filler = small_fs / "someone-elses-file"
    fill_up(filler)
    assert os.statvfs(small_fs).f_bavail < 8
    # The filesystem is full. Telemetry keeps arriving, alarms and HACCP checks with it.
    alarms = 0
    for _round in range(6):
        await telemetry(3000)
        for _ in range(5):
            alarms += 1
            await asyncio.wait_for(critical(writer, outbox, clock, alarms), 30)
        await asyncio.wait_for(
            writer.accept(Event("haccp.check", clock.time(), "ui", data={"round": _round})), 30
        )
    assert writer.stats.disk_full >= 1  # SQLite really said no
    assert writer.reserve.released >= 1 and not os.path.exists(store + "-reserve")
    assert outbox.stats.evicted > 0 and {e[0] for e in outbox.stats.evictions} == {"telemetry"}
    # Every eviction's loss record committed with it, and only committed ones were counted.
    assert count(store, "SELECT count(*) FROM outbox WHERE stream='loss'") == len(
        outbox.stats.evictions
    )
    assert count(store, "SELECT evicted FROM outbox_streams WHERE stream='telemetry'") == (
        outbox.stats.evicted
    )
    assert count(store, "SELECT count(*) FROM events WHERE kind='alarm.raised'") == alarms
    assert count(store, "SELECT count(*) FROM outbox WHERE stream='alarms'") == alarms
    assert count(store, "SELECT count(*) FROM outbox WHERE stream='haccp'") == 6
    # Space returns: the next commit puts the reserve back, with nobody's help.
    filler.unlink()
    await telemetry(10)
    assert os.path.getsize(store + "-reserve") == RESERVE
    # The cloud gets every alarm and HACCP check, and every telemetry seq or its loss record.
    await drain(client, store, limit=400)
    box = ident.box_id
    assert cloud_seqs(cloud, box, "alarms") == list(range(1, alarms + 1))
    assert cloud_seqs(cloud, box, "haccp") == list(range(1, 7))
    got = set(cloud_seqs(cloud, box, "telemetry"))
    lost = {s for a, b, _ in losses(cloud, box, "telemetry") for s in range(a, b + 1)}
    assert lost and not (got & lost) and got | lost == set(range(1, made + 1))
    await writer.stop()
    await task
    with contextlib.suppress(FileNotFoundError):
        os.unlink(store + "-reserve")
