"""The append-only HACCP log: every record hash-chained over its canonical JSON (SHA-256).

`append` runs inside the writer's transaction, so the chain's head is read and extended
atomically; `verify` walks the chain and names the first record that does not add up.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from rules.errors import RulesError

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
    "check_action",  # the corrective action that completes a failed check
    "missed_check",  # a check not done by its deadline: stated, never left blank
    "signoff",  # a manager's verification of a period's records
    "unit_config",  # a unit's label, type, point and limits, whenever they change
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
    head: str = GENESIS  # hash of the last record verified


class MalformedRecord(RulesError, ValueError):
    """A stored record that cannot be read as a chain record; the message says why."""


def _no_constant(name: str) -> Any:
    raise MalformedRecord(f"data holds {name}, which is not a number JSON allows")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise MalformedRecord(f"data holds the key {k!r} twice")
        out[k] = v
    return out


def strict_loads(text: Any) -> dict[str, Any]:
    """A record's data as stored: a JSON object, no NaN/Infinity, no duplicate keys."""
    if not isinstance(text, str):
        raise MalformedRecord(f"data is {type(text).__name__}, not JSON text")
    try:
        obj = json.loads(text, parse_constant=_no_constant, object_pairs_hook=_no_duplicates)
    except MalformedRecord:
        raise
    except (ValueError, RecursionError) as exc:
        raise MalformedRecord(f"data is not valid JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise MalformedRecord(f"data is a JSON {type(obj).__name__}, not an object")
    return obj


def check_fields(seq: Any, ts: Any, unit: Any, kind: Any, prev: Any, h: Any) -> None:
    """The typed columns of a record, whatever SQLite's loose typing let in."""
    if type(seq) is not int:
        raise MalformedRecord(f"seq is {type(seq).__name__}, not an integer")
    if type(ts) not in (int, float) or not math.isfinite(ts):
        raise MalformedRecord(f"time {ts!r} is not a finite number")
    if not isinstance(unit, str) or not unit:
        raise MalformedRecord(f"unit {unit!r} is not a name")
    if not isinstance(kind, str) or not kind:
        raise MalformedRecord(f"kind {kind!r} is not a name")
    for name, v in (("previous hash", prev), ("hash", h)):
        if not isinstance(v, str) or not _HEX64.fullmatch(v):
            raise MalformedRecord(f"{name} {str(v)[:70]!r} is not 64 hex digits")


_HEX64 = re.compile(r"[0-9a-f]{64}")


def verify(conn: sqlite3.Connection) -> Verification:
    """Walk the whole chain; the first record that does not add up is named with the reason.
    Malformed data (NaN, duplicate keys, wrong types) is a reason, never an exception."""
    prev = GENESIS
    expected = 1
    n = 0
    cur = conn.execute(
        "SELECT seq, ts, unit, kind, data, prev_hash, hash FROM haccp_records ORDER BY seq"
    )
    for seq, ts, unit, kind, data, prev_hash, h in cur:
        where = seq if type(seq) is int else expected
        try:
            check_fields(seq, ts, unit, kind, prev_hash, h)
            parsed = strict_loads(data)
        except MalformedRecord as exc:
            return Verification(False, n, where, f"malformed: {exc}", prev)
        if seq != expected:
            return Verification(
                False, n, expected, f"record {expected} is missing (next is {seq})", prev
            )
        if prev_hash != prev:
            return Verification(
                False, n, seq, "previous-hash link does not match record before", prev
            )
        if record_hash(prev, seq, float(ts), unit, kind, parsed) != h:
            return Verification(False, n, seq, "content does not match its hash", prev)
        prev = h
        expected += 1
        n += 1
    return Verification(True, n, head=prev)


def head(conn: sqlite3.Connection) -> tuple[int, str]:
    """(count, hash of the last record) as stored, without verifying: what an anchor signs."""
    row = conn.execute("SELECT seq, hash FROM haccp_records ORDER BY seq DESC LIMIT 1").fetchone()
    return (0, GENESIS) if row is None else (int(row[0]), str(row[1]))


def hash_at(conn: sqlite3.Connection, seq: int) -> str | None:
    if seq == 0:
        return GENESIS
    row = conn.execute("SELECT hash FROM haccp_records WHERE seq=?", (seq,)).fetchone()
    return None if row is None else str(row[0])


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
        try:
            parsed = strict_loads(data)
        except MalformedRecord as exc:  # shown as such; `verify` names it
            parsed = {"malformed": str(exc)}
        yield HaccpRecord(seq, ts, u, k, parsed, h)


def record(conn: sqlite3.Connection, seq: int) -> HaccpRecord | None:
    row = conn.execute(
        "SELECT seq, ts, unit, kind, data, hash FROM haccp_records WHERE seq=?", (seq,)
    ).fetchone()
    if row is None:
        return None
    try:
        parsed = strict_loads(row[4])
    except MalformedRecord as exc:
        parsed = {"malformed": str(exc)}
    return HaccpRecord(row[0], row[1], row[2], row[3], parsed, row[5])
