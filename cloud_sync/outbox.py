"""The encrypted outbox: records enter it inside the store's own transaction, leave it only
when the cloud has acknowledged them, and are evicted (with a loss record) only from streams
that may lose data, oldest first, when the byte quota nears.

Every method that writes takes the writer's connection and runs inside a transaction someone
else opened and commits (the writer's batch, or `StoreWriter.transact`).
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cloud_sync.envelope import open_at_rest, seal_at_rest
from cloud_sync.identity import BoxIdentity
from cloud_sync.streams import STREAMS, Router, default_route, record_json, spec
from edge_agent.messages import Event, Reading
from edge_agent.store.headroom import checkpoint, is_disk_full

if TYPE_CHECKING:
    from edge_agent.store.writer import StoreWriter

log = logging.getLogger(__name__)

ROW_OVERHEAD = 48  # bytes per outbox row beyond the payload (row header, index entries)
HIGH_WATER = 0.90  # start evicting at this fraction of the quota…
LOW_WATER = 0.80  # …and evict down to this one
LOSS_RECORD_ROOM = 512  # bytes a loss record takes in the outbox, generously
DISK_FULL_KEEP = 0.75  # on each disk-full commit error, keep this fraction of the outbox bytes
DISK_FULL_STEP_BYTES = 256 * 1024  # …evicted at most this many bytes per transaction


@dataclass(frozen=True, slots=True)
class OutboxRow:
    stream: str
    seq: int
    created: float
    kid: int
    payload: bytes
    priority: int = 0
    id: int = 0

    @property
    def key(self) -> tuple[int, int]:
        """The row's place in sending order."""
        return (self.priority, self.id)


@dataclass(frozen=True, slots=True)
class StreamBacklog:
    stream: str
    priority: int
    rows: int
    bytes: int
    next_seq: int
    acked_seq: int
    evicted: int


@dataclass
class OutboxStats:
    appended: int = 0
    evicted: int = 0
    loss_records: int = 0
    over_quota_critical: bool = False
    disk_full_retries: int = 0
    disk_full_critical: bool = False  # disk full with nothing evictable left
    evictions: list[tuple[str, int, int, int]] = field(default_factory=list)


class Outbox:
    def __init__(
        self,
        identity: BoxIdentity,
        *,
        quota_bytes: int = 512 * 1024 * 1024,
        router: Router = default_route,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.identity = identity
        self.quota_bytes = quota_bytes
        self.router = router
        self.stats = OutboxStats()
        self._now = clock
        self.on_append: Callable[[], None] | None = None
        # Evictions done inside the open transaction: logged and counted once it commits.
        self._pending: list[tuple[str, int, int, int, str]] = []

    def attach(self, writer: StoreWriter) -> None:
        """Hook into the writer: records enter the outbox in the transaction that accepts
        them; a full disk evicts; evictions are known only once their transaction commits."""
        writer.in_transaction = self.in_transaction
        writer.on_commit_error = self.on_commit_error
        writer.after_commit = self.commit_pending
        writer.after_rollback = self.discard_pending

    def commit_pending(self) -> None:
        pending, self._pending = self._pending, []
        for stream, first, last, count, reason in pending:
            self.stats.evicted += count
            self.stats.loss_records += 1
            self.stats.evictions.append((stream, first, last, count))
            log.warning(
                "sync: %s: evicted %d %s records from the outbox, seq %d..%d (loss recorded)",
                "disk full" if reason == "disk-full" else "outbox near its quota",
                count,
                stream,
                first,
                last,
            )

    def discard_pending(self) -> None:
        self._pending = []

    # ---- the writer hook -------------------------------------------------------------------

    def in_transaction(self, conn: sqlite3.Connection, records: list[Reading | Event]) -> None:
        """StoreWriter.in_transaction: seal the batch's records into the outbox."""
        if not records:
            return
        by_stream: dict[str, list[tuple[float, bytes]]] = {}
        for r in records:
            by_stream.setdefault(self.router(r), []).append((r.ts, record_json(r)))
        for stream, items in by_stream.items():
            self._append(conn, stream, items)
        self.enforce_quota(conn)
        if self.on_append is not None:
            self.on_append()

    def append(
        self,
        conn: sqlite3.Connection,
        stream: str,
        bodies: Iterable[dict[str, Any]],
        created: float,
    ) -> None:
        """For other areas' own records (alarms, HACCP, audit) inside their own transaction."""
        items = [
            (created, json.dumps(b, separators=(",", ":"), default=str).encode()) for b in bodies
        ]
        self._append(conn, stream, items)
        self.enforce_quota(conn)

    def _append(
        self, conn: sqlite3.Connection, stream: str, items: list[tuple[float, bytes]]
    ) -> None:
        row = conn.execute(
            "SELECT next_seq FROM outbox_streams WHERE stream=?", (stream,)
        ).fetchone()
        prio = spec(stream).priority
        if row is None:
            conn.execute(
                "INSERT INTO outbox_streams (stream, next_seq, acked_seq, priority) "
                "VALUES (?, 1, 0, ?)",
                (stream, prio),
            )
            first = 1
        else:
            first = int(row[0])
        kid = self.identity.kid
        aead = self.identity.at_rest(kid)
        rows = []
        size = 0
        for i, (created, body) in enumerate(items):
            seq = first + i
            payload = seal_at_rest(aead, stream, seq, body)
            size += len(payload) + ROW_OVERHEAD
            rows.append((stream, seq, prio, created, payload, kid))
        conn.executemany(
            "INSERT INTO outbox (stream, seq, priority, created, payload, kid) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
        conn.execute(
            "UPDATE outbox_streams SET next_seq=?, bytes=bytes+?, rows=rows+? WHERE stream=?",
            (first + len(items), size, len(items), stream),
        )
        self.stats.appended += len(items)

    # ---- a full disk ----------------------------------------------------------------------

    def on_commit_error(self, conn: sqlite3.Connection, exc: BaseException) -> bool:
        """StoreWriter.on_commit_error: when SQLite reports the disk full, evict a quarter of
        the outbox's bytes (bulk, then telemetry; never critical streams) with loss records,
        in a transaction of its own, so the writer's retried batch finds room. Anything else
        is the writer's business (it logs and retries). True if records were evicted.

        The loss record is written by the very transaction that deletes the records, and
        counted and logged only once that transaction has committed."""
        if not is_disk_full(exc):
            return False
        self.stats.disk_full_retries += 1
        self.discard_pending()
        used = self.used_bytes(conn)
        target = int(used * DISK_FULL_KEEP)
        freed = 0
        # In steps of bounded size, each checkpointed: a transaction's pages go to the WAL
        # first, and on a full disk the WAL has only the store's reserve to grow into.
        while used > target:
            step = max(target, used - DISK_FULL_STEP_BYTES)
            conn.execute("BEGIN IMMEDIATE")
            try:
                n = self._evict(conn, target=step, reason="disk-full")
                conn.execute("COMMIT")
            except sqlite3.Error as evict_exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                self.discard_pending()
                log.error("sync: disk full and evicting from the outbox failed too: %s", evict_exc)
                break
            self.commit_pending()
            checkpoint(conn)
            if not n:
                break
            freed += n
            used = self.used_bytes(conn)
        if not freed and not self.stats.disk_full_critical:
            log.error(
                "sync: disk full and the outbox holds only records that are never evicted "
                "(alarms, HACCP, audit, events); the store retries until space is freed"
            )
        self.stats.disk_full_critical = not freed
        return freed > 0

    # ---- quota -------------------------------------------------------------------------------

    @staticmethod
    def used_bytes(conn: sqlite3.Connection) -> int:
        return int(conn.execute("SELECT coalesce(sum(bytes), 0) FROM outbox_streams").fetchone()[0])

    def enforce_quota(self, conn: sqlite3.Connection) -> None:
        if self.used_bytes(conn) > self.quota_bytes * HIGH_WATER:
            self._evict(conn, target=int(self.quota_bytes * LOW_WATER), reason="quota")

    def _evict(self, conn: sqlite3.Connection, *, target: int, reason: str) -> int:
        """Evict oldest-first from evictable streams until `target` bytes; returns the count."""
        evictable = sorted(
            (s for s in STREAMS.values() if s.evictable), key=lambda s: s.evict_order
        )
        before = len(self._pending)
        for s in evictable:
            used = self.used_bytes(conn)
            if used <= target:
                return sum(p[3] for p in self._pending[before:])
            # The loss record this writes takes room too: free that as well, so the next
            # stream is touched only when this one is empty.
            self._evict_stream(conn, s.name, used - target + LOSS_RECORD_ROOM, reason)
        if self.used_bytes(conn) > self.quota_bytes:
            if not self.stats.over_quota_critical:
                log.error(
                    "sync: outbox over its quota of %d bytes with critical records only; "
                    "they are kept (never evicted) — the disk may fill",
                    self.quota_bytes,
                )
            self.stats.over_quota_critical = True
        else:
            self.stats.over_quota_critical = False
        return sum(p[3] for p in self._pending[before:])

    def _evict_stream(self, conn: sqlite3.Connection, stream: str, need: int, reason: str) -> None:
        freed = 0
        last = None
        first = None
        count = 0
        cur = conn.execute(
            "SELECT seq, length(payload) FROM outbox WHERE stream=? ORDER BY seq", (stream,)
        )
        while freed < need:
            chunk = cur.fetchmany(2048)
            if not chunk:
                break
            for seq, n in chunk:
                if first is None:
                    first = seq
                last = seq
                count += 1
                freed += n + ROW_OVERHEAD
                if freed >= need:
                    break
        cur.close()
        if first is None or last is None:
            return
        conn.execute("DELETE FROM outbox WHERE stream=? AND seq<=?", (stream, last))
        conn.execute(
            "UPDATE outbox_streams SET bytes=max(0, bytes-?), rows=rows-?, evicted=evicted+? "
            "WHERE stream=?",
            (freed, count, count, stream),
        )
        self._pending.append((stream, first, last, count, reason))
        body = {
            "type": "loss",
            "stream": stream,
            "first": first,
            "last": last,
            "count": count,
            "reason": reason,
        }
        created = self._now() if self._now else 0.0
        self._append(conn, "loss", [(created, json.dumps(body).encode())])

    # ---- reading and acknowledging ----------------------------------------------------------

    @staticmethod
    def read_batch(
        conn: sqlite3.Connection,
        max_bytes: int,
        max_rows: int = 50_000,
        after: tuple[int, int] | None = None,
    ) -> list[OutboxRow]:
        """Oldest first within each stream, streams by priority; at least one row if any.
        `after` continues behind a batch still in flight (its last row's `key`)."""
        sql = "SELECT stream, seq, created, kid, payload, priority, id FROM outbox "
        args: tuple[int, ...] = ()
        if after is not None:
            sql += "WHERE (priority, id) > (?, ?) "
            args = after
        cur = conn.execute(sql + "ORDER BY priority, id", args)
        out: list[OutboxRow] = []
        size = 0
        try:
            while size < max_bytes and len(out) < max_rows:
                chunk = cur.fetchmany(1024)
                if not chunk:
                    break
                for s, q, c, k, p, pr, i in chunk:
                    out.append(OutboxRow(s, q, c, k, p, pr, i))
                    size += len(p)
                    if size >= max_bytes or len(out) >= max_rows:
                        break
        finally:
            cur.close()
        return out

    @staticmethod
    def generation(conn: sqlite3.Connection) -> str:
        """The store's generation: part of every record's sync address."""
        row = conn.execute("SELECT value FROM sync_state WHERE key='generation'").fetchone()
        return "" if row is None else str(row[0])

    @staticmethod
    def head(conn: sqlite3.Connection) -> tuple[int, int] | None:
        """The key of the row that goes next."""
        row = conn.execute(
            "SELECT priority, id FROM outbox ORDER BY priority, id LIMIT 1"
        ).fetchone()
        return None if row is None else (int(row[0]), int(row[1]))

    def open_rows(self, rows: list[OutboxRow]) -> list[bytes]:
        ident = self.identity
        return [open_at_rest(ident.at_rest(r.kid), r.stream, r.seq, r.payload) for r in rows]

    @staticmethod
    def acknowledge(conn: sqlite3.Connection, acks: dict[str, int]) -> int:
        """Delete what the cloud acknowledged (seq <= watermark, per stream); nothing else."""
        deleted = 0
        for stream, seq in acks.items():
            gone = conn.execute(
                "DELETE FROM outbox WHERE stream=? AND seq<=? RETURNING length(payload)",
                (stream, seq),
            ).fetchall()
            n, size = len(gone), sum(g for (g,) in gone)
            conn.execute(
                "UPDATE outbox_streams SET acked_seq=max(acked_seq, ?), rows=rows-?, "
                "bytes=max(0, bytes-?) WHERE stream=?",
                (seq, n, size + n * ROW_OVERHEAD, stream),
            )
            deleted += n
        return deleted

    @staticmethod
    def backlog(conn: sqlite3.Connection) -> list[StreamBacklog]:
        return [
            StreamBacklog(*row)
            for row in conn.execute(
                "SELECT stream, priority, rows, bytes, next_seq, acked_seq, evicted "
                "FROM outbox_streams ORDER BY priority, stream"
            )
        ]

    @staticmethod
    def oldest_unsent(conn: sqlite3.Connection) -> float | None:
        row = conn.execute("SELECT min(created) FROM outbox").fetchone()
        return None if row is None or row[0] is None else float(row[0])
