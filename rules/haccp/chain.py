"""The append-only HACCP log: every record hash-chained over its canonical JSON (SHA-256).

`append` runs inside the writer's transaction, so the chain's head is read and extended
atomically; `verify` walks the chain and names the first record that does not add up.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64

RECORD_KINDS = (
    "reading",  # periodic recorded reading of a monitored unit
    "gap",  # no data for a whole recording slot: stated, never interpolated
    "excursion_start",
    "excursion_end",
    "acknowledged",
    "corrective_action",
    "check",  # manual checks: opening/closing, probe readings, calibration, line clean
    "cooling",
    "reheat",
    "danger_zone",
    "line_clean_due",
)


def canonical(obj: Any) -> bytes:
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def record_hash(prev: str, seq: int, ts: float, unit: str, kind: str, data: Any) -> str:
    body = canonical({"seq": seq, "ts": ts, "unit": unit, "kind": kind, "data": data})
    return hashlib.sha256(prev.encode("ascii") + body).hexdigest()


@dataclass(frozen=True, slots=True)
class HaccpRecord:
    seq: int
    ts: float
    unit: str
    kind: str
    data: dict[str, Any]
    hash: str


def append(conn: sqlite3.Connection, ts: float, unit: str, kind: str, data: dict[str, Any]) -> int:
    """Append one record; call inside a write transaction. Returns its sequence number."""
    row = conn.execute("SELECT seq, hash FROM haccp_records ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev = (row[0] + 1, row[1]) if row else (1, GENESIS)
    text = canonical(data).decode("utf-8")
    # Hash what is stored: the data as read back from its canonical text.
    h = record_hash(prev, seq, ts, unit, kind, json.loads(text))
    conn.execute(
        "INSERT INTO haccp_records (seq, ts, unit, kind, data, prev_hash, hash) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (seq, ts, unit, kind, text, prev, h),
    )
    return int(seq)


@dataclass(frozen=True, slots=True)
class Verification:
    ok: bool
    records: int
    broken_seq: int | None = None
    reason: str = ""


def verify(conn: sqlite3.Connection) -> Verification:
    prev = GENESIS
    expected = 1
    n = 0
    cur = conn.execute(
        "SELECT seq, ts, unit, kind, data, prev_hash, hash FROM haccp_records ORDER BY seq"
    )
    for seq, ts, unit, kind, data, prev_hash, h in cur:
        if seq != expected:
            return Verification(False, n, expected, f"record {expected} is missing (next is {seq})")
        if prev_hash != prev:
            return Verification(False, n, seq, "previous-hash link does not match record before")
        try:
            parsed = json.loads(data)
        except ValueError:
            return Verification(False, n, seq, "data is not valid JSON")
        if record_hash(prev, seq, ts, unit, kind, parsed) != h:
            return Verification(False, n, seq, "content does not match its hash")
        prev = h
        expected += 1
        n += 1
    return Verification(True, n)


def records(
    conn: sqlite3.Connection,
    start: float | None = None,
    end: float | None = None,
    unit: str | None = None,
    kind: str | None = None,
    limit: int | None = None,
) -> Iterator[HaccpRecord]:
    sql = "SELECT seq, ts, unit, kind, data, hash FROM haccp_records WHERE 1=1"
    args: list[Any] = []
    if start is not None:
        sql += " AND ts >= ?"
        args.append(start)
    if end is not None:
        sql += " AND ts < ?"
        args.append(end)
    if unit is not None:
        sql += " AND unit = ?"
        args.append(unit)
    if kind is not None:
        sql += " AND kind = ?"
        args.append(kind)
    sql += " ORDER BY seq"
    if limit is not None:
        sql += " LIMIT ?"
        args.append(limit)
    for seq, ts, u, k, data, h in conn.execute(sql, args):
        yield HaccpRecord(seq, ts, u, k, json.loads(data), h)
