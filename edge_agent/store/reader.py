"""Read-only queries on the store, safe beside the running writer (WAL readers never block it)."""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass
from typing import Any

from edge_agent.errors import StoreError
from edge_agent.messages import Quality, Severity, Value
from edge_agent.store.schema import connect


@dataclass(frozen=True, slots=True)
class PointValue:
    device_id: str
    point: str
    unit: str
    ts: float
    value: Value
    quality: Quality


@dataclass(frozen=True, slots=True)
class StoredEvent:
    id: int
    ts: float
    kind: str
    source: str
    severity: Severity
    message: str
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class StoreSummary:
    path: str
    size_bytes: int
    series: int
    readings: int
    rollups: int
    events: int
    outbox: int
    oldest_reading: float | None
    newest_reading: float | None


class StoreReader:
    def __init__(self, path: str) -> None:
        if not os.path.exists(path):
            raise StoreError(f"no store at {path} (has the agent run with this config?)")
        self.path = path
        self._conn: sqlite3.Connection = connect(path, readonly=True)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> StoreReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _q(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        try:
            return self._conn.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"store query failed: {exc}") from exc

    def latest(self, device_id: str | None = None) -> list[PointValue]:
        sql = (
            "SELECT s.device_id, s.point, s.unit, l.ts, l.value, l.quality "
            "FROM latest l JOIN series s ON s.id = l.series_id"
        )
        args: tuple[Any, ...] = ()
        if device_id is not None:
            sql += " WHERE s.device_id = ?"
            args = (device_id,)
        sql += " ORDER BY s.device_id, s.point"
        return [PointValue(d, p, u, ts, v, Quality(q)) for d, p, u, ts, v, q in self._q(sql, args)]

    def readings(
        self,
        device_id: str,
        *,
        point: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 100,
    ) -> list[PointValue]:
        """Newest first, at most `limit` rows."""
        sql = (
            "SELECT s.device_id, s.point, s.unit, r.ts, r.value, r.quality "
            "FROM readings r JOIN series s ON s.id = r.series_id WHERE s.device_id = ?"
        )
        args: list[Any] = [device_id]
        if point is not None:
            sql += " AND s.point = ?"
            args.append(point)
        if since is not None:
            sql += " AND r.ts >= ?"
            args.append(since)
        if until is not None:
            sql += " AND r.ts < ?"
            args.append(until)
        sql += " ORDER BY r.ts DESC, r.rowid DESC LIMIT ?"
        args.append(limit)
        rows = self._q(sql, tuple(args))
        return [PointValue(d, p, u, ts, v, Quality(q)) for d, p, u, ts, v, q in rows]

    def count_readings(self, device_id: str | None = None) -> int:
        if device_id is None:
            return int(self._q("SELECT count(*) FROM readings")[0][0])
        return int(
            self._q(
                "SELECT count(*) FROM readings r JOIN series s ON s.id = r.series_id "
                "WHERE s.device_id = ?",
                (device_id,),
            )[0][0]
        )

    def devices(self) -> list[str]:
        return [r[0] for r in self._q("SELECT DISTINCT device_id FROM series ORDER BY device_id")]

    def events(self, *, limit: int = 50, kind: str | None = None) -> list[StoredEvent]:
        sql = "SELECT id, ts, kind, source, severity, message, data FROM events"
        args: tuple[Any, ...] = ()
        if kind is not None:
            sql += " WHERE kind = ?"
            args = (kind,)
        sql += " ORDER BY id DESC LIMIT ?"
        rows = self._q(sql, (*args, limit))
        return [
            StoredEvent(i, ts, k, src, Severity(sev), msg, json.loads(data or "{}"))
            for i, ts, k, src, sev, msg, data in rows
        ]

    def summary(self) -> StoreSummary:
        (series,) = self._q("SELECT count(*) FROM series")[0]
        (readings, oldest, newest) = self._q("SELECT count(*), min(ts), max(ts) FROM readings")[0]
        (rollups,) = self._q("SELECT count(*) FROM readings_rollup")[0]
        (events,) = self._q("SELECT count(*) FROM events")[0]
        (outbox,) = self._q("SELECT count(*) FROM outbox")[0]
        size = sum(
            os.path.getsize(p)
            for p in (self.path, self.path + "-wal", self.path + "-shm")
            if os.path.exists(p)
        )
        return StoreSummary(
            self.path, size, series, readings, rollups, events, outbox, oldest, newest
        )
