"""Backups: the passphrase stream format (round trip, wrong passphrase, every kind of damage),
and a real provisioned box backed up, lost after more records reached the cloud, restored onto
a fresh directory: HACCP chain intact, and sync goes on with no new record taken for a
duplicate of one the cloud already holds."""

from __future__ import annotations

import asyncio
import io
import os
import sqlite3
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beerflow_edge import backup_crypto
from beerflow_edge.backup_crypto import BackupCryptoError, DecryptingReader, EncryptingWriter
from beerflow_edge.cli import main
from cloud_sync.client import SyncClient, SyncSettings
from cloud_sync.identity import load
from cloud_sync.outbox import Outbox
from edge_agent.clock import ManualClock
from edge_agent.messages import Event, Severity
from edge_agent.store.writer import StoreWriter
from rules.haccp import chain
from tests.peers.cloud import (  # noqa: F401 - cloud is a fixture
    VENUE,
    CloudServer,
    cloud,
    cloud_seqs,
    drain,
    make_box,
)

FAST = 10  # scrypt cost for the format tests only; backups use 2**17


def seal(data: bytes, passphrase: str = "correct horse") -> bytes:
    out = io.BytesIO()
    w = EncryptingWriter(out, passphrase, FAST)
    w.write(data)
    w.close()
    return out.getvalue()


def unseal(blob: bytes, passphrase: str = "correct horse") -> bytes:
    return DecryptingReader(io.BytesIO(blob), passphrase).read()


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(backup_crypto, "CHUNK", 64)


@settings(max_examples=40)
@given(st.binary(max_size=700), st.integers(min_value=1, max_value=97))
def test_round_trip_in_any_write_sizes(data, step):
    backup_crypto.CHUNK, old = 64, backup_crypto.CHUNK
    try:
        out = io.BytesIO()
        w = EncryptingWriter(out, "pw", FAST)
        for i in range(0, len(data), step):
            w.write(data[i : i + step])
        w.close()
        blob = out.getvalue()
        assert data[:16] not in blob[40:] or len(data) < 16
        r = DecryptingReader(io.BytesIO(blob), "pw")
        got = b"".join(iter(lambda: r.read(step), b""))
        assert got == data
    finally:
        backup_crypto.CHUNK = old


def test_wrong_passphrase_and_damage_are_refused(small_chunks):
    data = os.urandom(1000)
    blob = seal(data)
    assert unseal(blob) == data
    with pytest.raises(BackupCryptoError, match="wrong passphrase"):
        unseal(blob, "Correct horse")
    head = len(backup_crypto.MAGIC) + 26
    frame = 4 + 64 + 16
    damaged = bytearray(blob)
    damaged[head + 10] ^= 1
    with pytest.raises(BackupCryptoError):
        unseal(bytes(damaged))
    # truncated at a chunk boundary: the last-chunk flag is missing
    with pytest.raises(BackupCryptoError, match="truncated"):
        unseal(blob[: head + 3 * frame])
    # two chunks swapped
    c = [blob[head + i * frame : head + (i + 1) * frame] for i in range(3)]
    swapped = blob[:head] + c[1] + c[0] + blob[head + 2 * frame :]
    with pytest.raises(BackupCryptoError):
        unseal(swapped)
    with pytest.raises(BackupCryptoError, match="after its last chunk"):
        unseal(blob + b"x")
    with pytest.raises(BackupCryptoError, match="not a BeerFlow backup"):
        unseal(b"PK\x03\x04" + blob)
    with pytest.raises(BackupCryptoError, match="empty passphrase"):
        seal(b"x", "")


async def _write_box_records(writer: StoreWriter, clock: ManualClock, n: int, tag: str) -> None:
    for i in range(n):
        await writer.submit(
            Event(
                "alarm.raised",
                clock.time(),
                "rules",
                Severity.ALARM,
                f"{tag} {i}",
                {"tag": tag, "i": i},
            )
        )
        await writer.transact(
            lambda conn, i=i: chain.append(
                conn, clock.time(), "walk-in", "reading", {"value": 3.0 + i, "tag": tag}
            )
        )
        await clock.advance(60)
    await writer.flush()


def _chain(store: str) -> chain.Verification:
    conn = sqlite3.connect(store)
    try:
        return chain.verify(conn)
    finally:
        conn.close()


async def test_backup_restore_onto_a_fresh_directory_and_sync_goes_on(
    tmp_path: Path, cloud: CloudServer, clock: ManualClock, capsys
):
    writer, _outbox, client, store = await make_box(tmp_path, cloud, clock)
    box_dir = tmp_path / "box"
    venue = box_dir / "venue.toml"
    venue.write_text(
        f'[venue]\nid = "{VENUE}"\nname = "The Crown"\n\n[storage]\npath = "store.db"\n'
    )
    (box_dir / "rules.toml").write_text("# the venue's rules\n")
    task = asyncio.create_task(writer.run())
    await _write_box_records(writer, clock, 5, "before")
    await drain(client, store)
    box = client.identity.box_id

    pw = tmp_path / "pw"
    pw.write_text("a long venue passphrase\n")
    backup = tmp_path / "crown.bfbackup"
    assert (
        await asyncio.to_thread(
            main, ["backup", "-c", str(venue), str(backup), "--passphrase-file", str(pw)]
        )
        == 0
    )
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    raw = backup.read_bytes()
    assert b"SQLite format" not in raw and b"sign_key" not in raw and b"The Crown" not in raw

    # The box goes on after the backup and syncs more, then its disk dies.
    await _write_box_records(writer, clock, 4, "after")
    await drain(client, store)
    assert cloud_seqs(cloud, box, "alarms") == list(range(1, 10))
    await writer.stop()
    await task
    capsys.readouterr()

    # Wrong passphrase: refused, nothing written.
    fresh = tmp_path / "fresh"
    bad = tmp_path / "bad"
    bad.write_text("not it\n")
    assert (
        await asyncio.to_thread(
            main,
            ["restore", str(backup), "--config-dir", str(fresh), "--passphrase-file", str(bad)],
        )
        == 1
    )
    assert not fresh.exists() or not any(p for p in fresh.iterdir() if not p.name.startswith("."))

    assert (
        await asyncio.to_thread(
            main, ["restore", str(backup), "--config-dir", str(fresh), "--passphrase-file", str(pw)]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "alarms: cloud holds up to 9" in out and "4 written after the backup" in out
    restored = fresh / "store.db"
    assert (fresh / "venue.toml").read_text() == venue.read_text()
    assert (fresh / "rules.toml").exists()
    ident_path = fresh / "sync" / "identity.json"
    assert stat.S_IMODE(ident_path.stat().st_mode) == 0o600
    v = _chain(str(restored))
    assert v.ok and v.records == 5  # the chain as it was at the backup, intact

    # Restoring again over it is refused and changes nothing.
    before = restored.read_bytes()
    assert (
        await asyncio.to_thread(
            main, ["restore", str(backup), "--config-dir", str(fresh), "--passphrase-file", str(pw)]
        )
        == 1
    )
    assert "refusing to overwrite" in capsys.readouterr().err
    assert restored.read_bytes() == before

    # The restored box carries on: new records and chain entries reach the cloud, none taken
    # for a duplicate of the four written after the backup.
    ident = load(str(ident_path))
    assert ident is not None and ident.box_id == box
    outbox = Outbox(ident, quota_bytes=10**9, clock=clock.time)
    writer2 = StoreWriter(str(restored), clock=clock)
    outbox.attach(writer2)
    await writer2.open()
    client2 = SyncClient(
        ident, outbox, writer2, identity_file=str(ident_path), clock=clock,
        settings=SyncSettings(max_envelope_bytes=8192),
    )  # fmt: skip
    task2 = asyncio.create_task(writer2.run())
    await _write_box_records(writer2, clock, 3, "restored")
    await drain(client2, str(restored))
    assert cloud_seqs(cloud, box, "alarms") == list(range(1, 13))
    alarms = await cloud.get(f"/v1/venues/{VENUE}/events?stream=alarms")
    assert isinstance(alarms, list)
    assert [a["data"]["tag"] for a in alarms] == ["before"] * 5 + ["after"] * 4 + ["restored"] * 3
    v = _chain(str(restored))
    assert v.ok and v.records == 8
    await writer2.stop()
    await task2
