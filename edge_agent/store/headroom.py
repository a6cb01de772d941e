"""Headroom the store can always give back: a reserve file beside the database.

Under WAL even a DELETE needs free space first (its pages go to the `-wal` file before the
database), so a store whose filesystem is full cannot evict its way out by itself. The
reserve is released the moment SQLite reports the disk full: that leaves room for the
eviction's transaction, the checkpoint that gives the space back, and the alarms and HACCP
records queued behind them. It is put back once the filesystem has room for it again and as
much to spare, so a box recovers by itself when space returns.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import sqlite3

log = logging.getLogger(__name__)

# More than the WAL grows between automatic checkpoints (1000 pages, 4 MiB) plus an
# eviction step and a batch of critical records.
DEFAULT_RESERVE_BYTES = 8 * 1024 * 1024


def is_disk_full(exc: BaseException) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return code == sqlite3.SQLITE_FULL or "database or disk is full" in str(exc)


def free_bytes(path: str) -> int:
    st = os.statvfs(os.path.dirname(os.path.abspath(path)) or ".")
    return st.f_bavail * st.f_frsize


class Reserve:
    """A preallocated private file of `size` bytes at `path` (0 disables it)."""

    def __init__(self, path: str, size: int = DEFAULT_RESERVE_BYTES) -> None:
        self.path = path
        self.size = size
        self.released = 0  # how many times it was given up

    @property
    def present(self) -> bool:
        return self.size <= 0 or os.path.exists(self.path)

    def ensure(self, spare: int | None = None) -> bool:
        """Create the reserve if it is missing and the filesystem has its size free plus
        `spare` (by default as much again); True when it is in place afterwards."""
        if self.present:
            return True
        if free_bytes(self.path) < self.size + (self.size if spare is None else spare):
            return False
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        except OSError as exc:
            log.warning("store: cannot create the disk reserve %s: %s", self.path, exc)
            return False
        try:
            try:
                os.posix_fallocate(fd, 0, self.size)
            except OSError as exc:
                if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                    raise
                # A filesystem without fallocate: write the blocks for real.
                block = b"\0" * 65536
                for _ in range(0, self.size, len(block)):
                    os.write(fd, block)
            os.fsync(fd)
        except OSError as exc:
            os.close(fd)
            os.unlink(self.path)
            log.warning("store: cannot fill the disk reserve %s: %s", self.path, exc)
            return False
        os.close(fd)
        return True

    def release(self) -> bool:
        """Give the reserve's space back to the filesystem; True if there was one."""
        if self.size <= 0:
            return False
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            return False
        self.released += 1
        return True


def checkpoint(conn: sqlite3.Connection) -> None:
    """Fold the WAL into the database and restart it (outside any transaction). The WAL
    file keeps its size: on a full disk that space is what the next transactions write
    into. Best effort: it may fail on a full disk, and the caller retries."""
    try:
        conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchall()
    except sqlite3.Error as exc:
        log.debug("store: checkpoint failed: %s", exc)


def trim_history(conn: sqlite3.Connection, rows: int, now: float) -> int:
    """Delete the oldest `rows` rows of local raw history (their copy for the cloud is in
    the outbox, evicted by its own rules) in one transaction that also records it as an
    event; returns how many went."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        cur = conn.execute(
            "DELETE FROM readings WHERE rowid IN "
            "(SELECT rowid FROM readings ORDER BY rowid LIMIT ?) RETURNING ts",
            (rows,),
        )
        stamps = [t for (t,) in cur.fetchall()]
        if stamps:
            data = {"rows": len(stamps), "from_ts": min(stamps), "to_ts": max(stamps)}
            conn.execute(
                "INSERT INTO events (ts, kind, source, severity, message, data) "
                "VALUES (?, 'store.history_trimmed', 'store', 2, ?, ?)",
                (now, "disk full: oldest local raw readings deleted", json.dumps(data)),
            )
        conn.execute("COMMIT")
    except sqlite3.Error:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return len(stamps)
