"""The single writer: drains its queue in batches and commits each batch in one transaction.

A record is *accepted* when the transaction holding it has committed. Producers that need to
know wait on a barrier (`flush`), which is resolved only after everything queued before it has
committed. SQLite work runs on one dedicated thread so the event loop keeps filling the next
batch while the current one commits (group commit without a RAM queue in front of a slow disk:
the queue is bounded and blocks producers).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

from edge_agent.bus import Bus, Overflow
from edge_agent.channel import Channel
from edge_agent.clock import Clock, SystemClock
from edge_agent.errors import StoreError
from edge_agent.messages import Event, Reading
from edge_agent.store.headroom import (
    DEFAULT_RESERVE_BYTES,
    Reserve,
    checkpoint,
    is_disk_full,
    trim_history,
)
from edge_agent.store.schema import connect, migrate

log = logging.getLogger(__name__)

Synchronous = Literal["full", "normal"]
# Called on the writer thread inside every batch's transaction with the batch's records.
InTransactionHook = Callable[[sqlite3.Connection, list[Reading | Event]], None]
# Called on the writer thread after a batch's commit failed and was rolled back, before the
# retry (e.g. the sync outbox evicts bulk/telemetry when SQLite reports the disk full).
# Returns True when it freed something, so the retry need not wait.
CommitErrorHook = Callable[[sqlite3.Connection, BaseException], bool | None]
# Called on the writer thread once a transaction has committed (after_commit) or rolled back
# (after_rollback): what a hook noted inside it (an eviction's log line and counters) is
# made known only if it really happened.
TransactionEndHook = Callable[[], None]


@dataclass(eq=False)
class _Barrier:
    future: asyncio.Future[int]
    patient: bool = False  # may wait out the batching delay (see _top_up)


@dataclass(eq=False)
class _Job:
    fn: Callable[[sqlite3.Connection], Any]
    future: asyncio.Future[Any]


@dataclass(eq=False)
class _InTransaction:
    fn: Callable[[sqlite3.Connection], None]


# SQLite's default max_page_count (3.40: 1073741823; newer: 4294967294); at or above it the
# database may grow.
_UNCAPPED = 1073741823


class _Stop:
    pass


def _can_wait(item: Any) -> bool:
    t = type(item)
    return t is Reading or t is _InTransaction or (t is _Barrier and item.patient)


class _NothingToWrite(Exception):
    pass


@dataclass
class WriterStats:
    readings: int = 0
    events: int = 0
    commits: int = 0
    failed_commits: int = 0
    disk_full: int = 0  # commits refused because the disk (or the page cap) was full
    history_trimmed: int = 0  # local raw readings deleted to make room on a full disk
    last_batch: int = 0
    last_commit_s: float = 0.0
    commit_seconds: list[float] = field(default_factory=list)


_INSERT_READING = "INSERT INTO readings (series_id, ts, value, quality) VALUES (?, ?, ?, ?)"
_UPSERT_LATEST = (
    "INSERT INTO latest (series_id, ts, value, quality) VALUES (?, ?, ?, ?) "
    "ON CONFLICT(series_id) DO UPDATE SET ts=excluded.ts, value=excluded.value, "
    "quality=excluded.quality WHERE excluded.ts >= latest.ts"
)
_INSERT_EVENT = (
    "INSERT INTO events (ts, kind, source, severity, message, data) VALUES (?, ?, ?, ?, ?, ?)"
)


class StoreWriter:
    """Owns the only read-write connection to the store."""

    def __init__(
        self,
        path: str,
        *,
        capacity: int = 100_000,
        max_batch: int = 10_000,
        telemetry_sync: Synchronous = "full",
        clock: Clock | None = None,
        on_commit: Callable[[WriterStats, int, int, float], None] | None = None,
        in_transaction: InTransactionHook | None = None,
        on_commit_error: CommitErrorHook | None = None,
        min_commit_interval_s: float = 0.02,
        reserve_bytes: int = DEFAULT_RESERVE_BYTES,
    ) -> None:
        self.path = path
        self.channel: Channel[Any] = Channel(capacity)
        self.max_batch = max_batch
        self.min_commit_interval_s = min_commit_interval_s
        self.telemetry_sync = telemetry_sync
        self.clock = clock or SystemClock()
        self.stats = WriterStats()
        self._on_commit = on_commit
        self.in_transaction = in_transaction
        self.on_commit_error = on_commit_error
        self.after_commit: TransactionEndHook | None = None
        self.after_rollback: TransactionEndHook | None = None
        self.reserve = Reserve(path + "-reserve", reserve_bytes)
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="store-writer")
        self._conn: sqlite3.Connection | None = None
        self._series: dict[tuple[str, str], int] = {}
        self._sync_mode: str = ""
        self._enqueued = 0
        self._committed = 0
        self._stopped = asyncio.Event()
        self._failing = False
        self._capped = False  # max_page_count pinned while the disk is full

    # ---- wiring -------------------------------------------------------------------------

    def attach(self, bus: Bus) -> None:
        """Subscribe to readings and events; the store never drops, it blocks producers."""
        bus.subscribe(
            "store", (Reading, Event), self.channel.capacity, Overflow.BLOCK, channel=self.channel
        )

    async def open(self) -> None:
        await self._in_thread(self._open)

    def _open(self) -> None:
        conn = connect(self.path)
        migrate(conn)
        self._conn = conn
        self.reserve.ensure()
        for sid, device_id, point in conn.execute("SELECT id, device_id, point FROM series"):
            self._series[(device_id, point)] = sid

    async def _in_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    # ---- producer side --------------------------------------------------------------------

    async def submit(self, record: Reading | Event) -> None:
        await self.channel.put(record)

    async def flush(self) -> int:
        """Wait until everything queued before this call has committed; returns the commit count."""
        return await self.barrier(patient=False)

    def barrier(self, *, patient: bool = True) -> asyncio.Future[int]:
        """Queue a barrier now; the future resolves once everything queued before it has
        committed. For a producer that acknowledges its peer after the commit and goes on
        producing meanwhile (MQTT PUBACKs): a patient barrier lets a batch of readings wait for
        the rest of the stream like readings alone do, instead of forcing an early commit."""
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.channel.force(_Barrier(fut, patient))
        return fut

    def write_in_transaction(self, fn: Callable[[sqlite3.Connection], None]) -> None:
        """Queue fn(conn) to run inside the transaction of the batch it lands in, after that
        batch's readings and events: rows that must commit with them or not at all (a
        receipt of what was received). An exception fails the whole batch, which is retried."""
        self.channel.force(_InTransaction(fn))

    async def accept(self, record: Reading | Event) -> None:
        """Queue one record and return once it is durably committed."""
        await self.submit(record)
        await self.flush()

    async def run_job(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run fn(conn) on the writer thread, in queue order (retention, migrations of data)."""
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.channel.force(_Job(fn, fut))
        return await fut

    async def transact(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run fn(conn) in its own transaction with synchronous=FULL, in queue order.

        For critical records (alarms, HACCP records, audit entries): when this returns, the
        transaction has committed and been fsynced. An exception rolls it back and is raised.
        """

        def job(conn: sqlite3.Connection) -> Any:
            if self._sync_mode != "FULL":
                conn.execute("PRAGMA synchronous=FULL")
                self._sync_mode = "FULL"
            # A full disk is relieved (reserve, eviction) and the transaction tried again at
            # once: these are the records that must not wait behind a full disk.
            for _ in range(4):
                try:
                    conn.execute("BEGIN IMMEDIATE")
                    result = fn(conn)
                    conn.execute("COMMIT")
                except BaseException as exc:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    self._rolled_back()
                    if isinstance(exc, sqlite3.Error) and is_disk_full(exc) and self._relieve(exc):
                        continue
                    raise
                self._committed_ok()
                return result
            raise StoreError("disk full: nothing left to free for a critical transaction")

        return await self.run_job(job)

    async def stop(self) -> None:
        """Commit everything queued, then end run()."""
        self.channel.force(_Stop())
        await self._stopped.wait()

    # ---- the writer task ------------------------------------------------------------------

    async def run(self) -> None:
        if self._conn is None:
            await self.open()
        loop = asyncio.get_running_loop()
        last_commit = -math.inf
        try:
            while True:
                batch = await self.channel.get_batch(self.max_batch)
                batch = await self._top_up(batch, last_commit)
                stop = any(type(item) is _Stop for item in batch)
                await self._commit_with_retry(batch)
                last_commit = loop.time()
                if stop:
                    return
        finally:
            await self._in_thread(self._close)
            self._executor.shutdown(wait=True)
            self._stopped.set()

    async def _top_up(self, batch: list[Any], last_commit: float) -> list[Any]:
        """Let a small batch of plain readings wait for the rest of the stream.

        Readings streaming in (hundreds of MQTT devices) would otherwise be committed a few
        dozen at a time as soon as the previous commit ends, every commit rewriting the same
        index and `latest` pages: the writer then burns its CPU on commits, not readings. So a
        batch of readings alone is held until `min_commit_interval_s` after the previous commit
        and takes what arrived meanwhile (so are a patient barrier and rows written in its
        transaction). A batch holding anything someone waits on now (flush, job, stop) or any
        event is not held; one of those arriving during a hold waits for its
        end (at most `min_commit_interval_s`). Real loop time on purpose: it is a batching
        delay, not behaviour, and must not stall under an injected ManualClock.
        """
        if self.min_commit_interval_s <= 0 or len(batch) >= self.max_batch:
            return batch
        loop = asyncio.get_running_loop()
        wait = last_commit + self.min_commit_interval_s - loop.time()
        if wait <= 0 or not all(_can_wait(item) for item in batch):
            return batch
        await asyncio.sleep(wait)
        if len(self.channel):
            batch += await self.channel.get_batch(self.max_batch - len(batch))
        return batch

    async def _commit_with_retry(self, batch: list[Any]) -> None:
        delay = 0.05
        while True:
            try:
                n_read, n_ev, jobs, seconds = await self._in_thread(self._write, batch)
                break
            except sqlite3.Error as exc:
                # Never swallowed, never dropped: the batch stays in memory, producers block
                # behind the bounded queue, and we retry until the disk takes it.
                self.stats.failed_commits += 1
                if not self._failing:
                    log.error("store: commit failed, will retry: %s", exc)
                    self._failing = True
                if is_disk_full(exc):
                    if await self._in_thread(self._relieve, exc):
                        continue  # space was freed: retry at once, alarms are queued behind
                elif self.on_commit_error is not None:
                    await self._in_thread(self._commit_error, exc)
                await self.clock.sleep(delay)
                delay = min(delay * 2, 5.0)
        if self._failing:
            log.info("store: commits succeed again after %d failures", self.stats.failed_commits)
            self._failing = False
        self.stats.readings += n_read
        self.stats.events += n_ev
        self.stats.commits += 1
        self.stats.last_batch = n_read + n_ev
        self.stats.last_commit_s = seconds
        if self._on_commit is not None:
            self._on_commit(self.stats, n_read, n_ev, seconds)
        for item in batch:
            t = type(item)
            if t is _Barrier:
                if not item.future.done():
                    item.future.set_result(self.stats.commits)
            elif t is _Job:
                result, error = jobs[id(item)]
                if item.future.done():
                    continue
                if error is not None:
                    item.future.set_exception(error)
                else:
                    item.future.set_result(result)

    def _commit_error(self, exc: BaseException) -> bool:
        hook = self.on_commit_error
        if hook is None or self._conn is None:
            return False
        try:
            return bool(hook(self._conn, exc))
        except Exception as hook_exc:  # the retry goes on whatever the hook did
            log.error("store: on_commit_error hook failed: %s", hook_exc)
            return False

    def _relieve(self, exc: BaseException) -> bool:
        """The disk is full (writer thread, outside any transaction). Give up the reserve,
        fold the WAL into the database, let the hook evict what may be evicted (outbox
        telemetry), else trim the oldest local raw history. Freed pages stay in the database
        for the next writes; nothing here needs the filesystem to grow. True if anything
        was freed, so a retry can succeed at once."""
        self.stats.disk_full += 1
        conn = self._conn
        if conn is None:
            return False
        released = self.reserve.release()
        if released:
            log.error(
                "store: disk full; released the %d-byte reserve so alarms and HACCP records "
                "keep committing while telemetry is evicted",
                self.reserve.size,
            )
        checkpoint(conn)
        if not self._capped:
            # From now on the database may not grow: a page written past its end could only
            # be checkpointed into new disk space, so the WAL would grow until nothing, not
            # even an eviction, can commit. Freed pages are reused instead.
            (cap,) = conn.execute("PRAGMA max_page_count").fetchone()
            (pages,) = conn.execute("PRAGMA page_count").fetchone()
            if int(cap) >= _UNCAPPED:  # not someone else's cap
                conn.execute(f"PRAGMA max_page_count = {int(pages)}")
                self._capped = True
        freed = self._commit_error(exc)
        if not freed:
            try:
                (n,) = conn.execute("SELECT count(*) FROM readings").fetchone()
                trimmed = trim_history(conn, max(1000, int(n) // 10), self.clock.time())
            except sqlite3.Error as trim_exc:
                log.error("store: disk full and trimming local history failed: %s", trim_exc)
                trimmed = 0
            if trimmed:
                self.stats.history_trimmed += trimmed
                log.warning("store: disk full: deleted the oldest %d local raw readings", trimmed)
            freed = trimmed > 0
        checkpoint(conn)
        return freed or released

    def _committed_ok(self) -> None:
        if self.after_commit is not None:
            self.after_commit()
        if not self.reserve.present and self.reserve.ensure():
            if self._capped and self._conn is not None:
                self._conn.execute(f"PRAGMA max_page_count = {_UNCAPPED}")
                self._capped = False
            log.info("store: disk space is back; the reserve is in place again")

    def _rolled_back(self) -> None:
        if self.after_rollback is not None:
            self.after_rollback()

    def _write(self, batch: list[Any]) -> tuple[int, int, dict[int, tuple[Any, Any]], float]:
        conn = self._conn
        assert conn is not None
        t0 = self.clock.monotonic()
        rows: list[tuple[Any, ...]] = []
        latest: dict[int, tuple[Any, ...]] = {}
        events: list[tuple[Any, ...]] = []
        jobs: list[_Job] = []
        in_txn: list[Callable[[sqlite3.Connection], None]] = []
        series = self._series
        new_series: list[tuple[str, str, str]] = []
        for item in batch:
            t = type(item)
            if t is Reading:
                key = (item.device_id, item.point)
                sid = series.get(key)
                if sid is None:
                    new_series.append((item.device_id, item.point, item.unit))
                    sid = -len(new_series)  # placeholder, resolved below
                    series[key] = sid
                row = (sid, item.ts, item.value, int(item.quality))
                rows.append(row)
                prev = latest.get(sid)
                if prev is None or prev[1] <= item.ts:
                    latest[sid] = row
            elif t is Event:
                events.append(
                    (
                        item.ts,
                        item.kind,
                        item.source,
                        int(item.severity),
                        item.message,
                        json.dumps(item.data, sort_keys=True, default=str),
                    )
                )
            elif t is _Job:
                jobs.append(item)
            elif t is _InTransaction:
                in_txn.append(item.fn)
        # Events (and, later, alarms and HACCP records) are critical: fsync on every commit.
        mode = "FULL" if events else self.telemetry_sync.upper()
        if mode != self._sync_mode:
            conn.execute(f"PRAGMA synchronous={mode}")
            self._sync_mode = mode
        results: dict[int, tuple[Any, Any]] = {}
        try:
            if not rows and not events and not in_txn:
                raise _NothingToWrite
            conn.execute("BEGIN")
            if new_series:
                rows, latest = self._register_series(conn, new_series, rows, latest)
            if rows:
                conn.executemany(_INSERT_READING, rows)
                conn.executemany(_UPSERT_LATEST, latest.values())
            if events:
                conn.executemany(_INSERT_EVENT, events)
            if self.in_transaction is not None:
                # e.g. the sync outbox: records enter it in the same transaction that accepts
                # them, so a crash can never leave one without the other.
                self.in_transaction(conn, [b for b in batch if type(b) in (Reading, Event)])
            for fn in in_txn:
                fn(conn)
            conn.execute("COMMIT")
        except _NothingToWrite:
            pass
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self._rolled_back()
            for key in [k for k, v in series.items() if v < 0]:
                del series[key]
            raise
        else:
            self._committed_ok()
        for job in jobs:
            try:
                results[id(job)] = (job.fn(conn), None)
            except Exception as exc:  # a job's failure belongs to its caller, not the writer
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                results[id(job)] = (None, exc)
        return len(rows), len(events), results, self.clock.monotonic() - t0

    def _register_series(
        self,
        conn: sqlite3.Connection,
        new: list[tuple[str, str, str]],
        rows: list[tuple[Any, ...]],
        latest: dict[int, tuple[Any, ...]],
    ) -> tuple[list[tuple[Any, ...]], dict[int, tuple[Any, ...]]]:
        mapping: dict[int, int] = {}
        for i, (device_id, point, unit) in enumerate(new, start=1):
            conn.execute(
                "INSERT OR IGNORE INTO series (device_id, point, unit) VALUES (?, ?, ?)",
                (device_id, point, unit),
            )
            (sid,) = conn.execute(
                "SELECT id FROM series WHERE device_id=? AND point=?", (device_id, point)
            ).fetchone()
            mapping[-i] = sid
            self._series[(device_id, point)] = sid
        rows = [(mapping.get(r[0], r[0]), *r[1:]) for r in rows]
        latest = {mapping.get(k, k): (mapping.get(v[0], v[0]), *v[1:]) for k, v in latest.items()}
        return rows, latest

    def _close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.execute("PRAGMA optimize")
            except sqlite3.Error as exc:  # closing must not hide the data already committed
                log.warning("store: optimize on close failed: %s", exc)
            self._conn.close()
            self._conn = None


def ensure_store(path: str) -> None:
    """Create or migrate the store synchronously (for CLI commands that only read)."""
    try:
        conn = connect(path)
        try:
            migrate(conn)
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise StoreError(f"cannot prepare store {path}: {exc}") from exc
