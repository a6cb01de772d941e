"""The HACCP chain as a critical sync stream, and its anchoring in the cloud.

Every chain record enters the outbox stream `haccp_chain` exactly once, in chain order, in the
same transaction that moves the pump's cursor (kept in `sync_state`), so a crash can neither
skip nor repeat one. The pump runs inside the writer's batch transaction (records reach the
outbox within a commit of being chained) and again whenever the sync client is idle.

Once everything pumped is acknowledged, the box signs its chain head (count, last hash) and
posts it; the cloud answers with a signed receipt that is kept in `haccp_receipts`. This
happens on every sync that moved the head, and at least hourly when it did not.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from cloud_sync import crypto
from cloud_sync.client import CloudRefused
from cloud_sync.errors import SyncError
from cloud_sync.outbox import Outbox
from cloud_sync.paths import identity_dir
from cloud_sync.streams import StreamSpec, register_stream
from edge_agent.clock import Clock
from edge_agent.messages import Event, Severity
from edge_agent.store.schema import connect
from edge_agent.store.writer import InTransactionHook, StoreWriter
from rules.haccp import chain
from rules.haccp.anchor import (
    Anchor,
    Receipt,
    anchor_doc,
    last_receipt,
    receipt_doc,
    receipt_from,
    save_receipt,
)

log = logging.getLogger(__name__)

STREAM = "haccp_chain"
CURSOR_KEY = "haccp_chain.cursor"
PUMP_BATCH = 2000  # records per transaction; the rest follow in the next one
ANCHOR_EVERY_S = 3600.0
RECEIPT_FILE = "haccp-receipt.json"

register_stream(StreamSpec(STREAM, 0, False))


def record_body(
    seq: int, ts: float, unit: str, kind: str, data: str, prev: str, h: str
) -> dict[str, Any]:
    """What the cloud receives: the chain fields, and the data as the exact stored text (the
    cloud re-hashes it, so nothing may be re-encoded on the way)."""
    return {
        "type": "haccp",
        "seq": seq,
        "ts": ts,
        "unit": unit,
        "kind": kind,
        "data": data,
        "prev": prev,
        "hash": h,
    }


def cursor(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM sync_state WHERE key=?", (CURSOR_KEY,)).fetchone()
    return 0 if row is None else int(row[0])


def pump(conn: sqlite3.Connection, outbox: Outbox, now: float) -> int:
    """Move chain records after the cursor into the outbox; inside the caller's transaction."""
    after = cursor(conn)
    rows = conn.execute(
        "SELECT seq, ts, unit, kind, data, prev_hash, hash FROM haccp_records "
        "WHERE seq > ? ORDER BY seq LIMIT ?",
        (after, PUMP_BATCH),
    ).fetchall()
    if not rows:
        return 0
    outbox.append(conn, STREAM, [record_body(*r) for r in rows], now)
    conn.execute(
        "INSERT INTO sync_state (key, value) VALUES (?, ?) "
        "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
        (CURSOR_KEY, str(rows[-1][0])),
    )
    return len(rows)


def with_pump(
    inner: InTransactionHook, outbox: Outbox, clock: Callable[[], float]
) -> InTransactionHook:
    """The writer hook: the outbox's own work, then the chain pump, in the batch's transaction."""

    def hook(conn: sqlite3.Connection, records: list[Any]) -> None:
        inner(conn, records)
        pump(conn, outbox, clock())

    return hook


def receipt_path(store_path: str) -> str:
    """The last receipt also lives beside the box identity: a replaced store cannot take it."""
    return os.path.join(identity_dir(store_path), RECEIPT_FILE)


def write_receipt_file(path: str, r: Receipt, sig: str) -> None:
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, json.dumps(receipt_doc(r, sig), sort_keys=True).encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def read_receipt_file(path: str) -> tuple[Receipt, str] | None:
    """The kept receipt, or None if there is none or it is unreadable (the store's copy and
    the cloud still hold the truth)."""
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        return receipt_from(doc)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("haccp: kept receipt %s unreadable: %s", path, exc)
        return None


def anchor_head(conn: sqlite3.Connection) -> tuple[int, str]:
    """What to anchor: the chain up to the pump's cursor (what the cloud has been sent), not a
    record appended since, which the cloud cannot know yet. A chain now shorter than the
    cursor is anchored as it is, and the cloud sees the truncation."""
    n, h = chain.head(conn)
    sent = cursor(conn)
    if n < sent:
        return n, h
    at = chain.hash_at(conn, sent)
    return (sent, at) if at is not None else (n, h)


def all_acknowledged(conn: sqlite3.Connection) -> bool:
    row = conn.execute("SELECT count(*) FROM outbox WHERE stream=?", (STREAM,)).fetchone()
    return int(row[0]) == 0


SignedRequest = Callable[[aiohttp.ClientSession, str, str, dict[str, Any] | None], Awaitable[Any]]


class ChainAnchoring:
    """Runs when the sync client is idle: pump, then anchor the head if due."""

    def __init__(
        self,
        outbox: Outbox,
        writer: StoreWriter,
        clock: Clock,
        publish: Callable[[Event], Awaitable[None]] | None = None,
        every_s: float = ANCHOR_EVERY_S,
    ) -> None:
        self.outbox = outbox
        self.writer = writer
        self.clock = clock
        self.publish = publish
        self.every_s = every_s
        self.request: SignedRequest | None = None
        self.wake: Callable[[], None] | None = None
        self.refused = 0
        self.anchored = 0
        self._last_refusal: str = ""

    async def after_sync(self, session: aiohttp.ClientSession) -> None:
        now = self.clock.time()
        moved = await self.writer.transact(lambda conn: pump(conn, self.outbox, now))
        if moved:
            if self.wake is not None:
                self.wake()
            return
        await self.anchor_if_due(session)

    def _state(self) -> tuple[bool, tuple[int, str], Receipt | None]:
        conn = connect(self.writer.path, readonly=True)
        try:
            found = last_receipt(conn)
            return all_acknowledged(conn), anchor_head(conn), found[0] if found else None
        finally:
            conn.close()

    async def anchor_if_due(self, session: aiohttp.ClientSession) -> bool:
        acked, (count, head), last = await asyncio.to_thread(self._state)
        now = self.clock.time()
        if not acked or self.request is None:
            return False
        if last is not None:
            same = (last.anchor.count, last.anchor.head) == (count, head)
            if same and now - last.received_at < self.every_s:
                return False
        ident = self.outbox.identity
        a = Anchor(ident.box_id, ident.venue, count, head, now)
        body = {**anchor_doc(a), "sig": crypto.b64(ident.sign(a.message()))}
        try:
            doc = await self.request(
                session, "POST", f"/v1/boxes/{ident.box_id}/haccp/anchors", body
            )
        except CloudRefused as exc:
            if exc.status != 409:
                raise
            await self._refused(str(exc))
            return False
        try:
            receipt = Receipt(a, float(doc["received_at"]))
            sig = str(doc["sig"])
        except (KeyError, TypeError, ValueError) as exc:
            raise SyncError(f"malformed anchor receipt: {exc}") from exc
        if not crypto.verify(
            crypto.unb64(ident.cloud_sign_pub), crypto.unb64(sig), receipt.message()
        ):
            raise SyncError("anchor receipt not signed by the pinned cloud key; ignored")
        await self.writer.transact(lambda conn: save_receipt(conn, receipt, sig))
        await asyncio.to_thread(write_receipt_file, receipt_path(self.writer.path), receipt, sig)
        self.anchored += 1
        self._last_refusal = ""
        return True

    async def _refused(self, why: str) -> None:
        self.refused += 1
        if why == self._last_refusal:
            return
        self._last_refusal = why
        log.error("haccp: the cloud refused this box's chain anchor: %s", why)
        if self.publish is not None:
            await self.publish(
                Event(
                    "haccp.anchor_refused",
                    self.clock.time(),
                    "sync",
                    Severity.CRITICAL,
                    "the cloud refused the HACCP chain anchor: the local record does not "
                    "extend what the cloud holds",
                    {"reason": why[:300]},
                )
            )
