"""Each venue's HACCP chain in the cloud: stored as the box sent it, verified as it arrives,
anchored by the box's signed heads, and served to whoever must prove it (an inspector's report
made from the cloud alone).

What it catches, each as a security event naming the venue:
- a record whose content does not match its hash, or malformed (NaN, duplicate keys, types);
- a record whose previous-hash link does not match the record before it;
- a record arriving again with a different hash (history rewritten, or the store replaced);
- an anchor whose count is below the last accepted anchor (truncated, deleted, replaced);
- an anchor whose head is not the hash the cloud holds for that record (rewritten).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud_api import db
from cloud_api.errors import CloudError
from cloud_sync import crypto
from rules.haccp.anchor import AnchorError, Receipt, anchor_from
from rules.haccp.chain import GENESIS, MalformedRecord, check_fields, record_hash, strict_loads

log = logging.getLogger("cloud_api.security")

STREAM = "haccp_chain"


class AnchorRefused(CloudError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _event(c: sa.Connection, now: float, kind: str, box: str, venue: str, detail: str) -> None:
    log.warning("security: %s box=%s venue=%s %s", kind, box, venue, detail)
    c.execute(
        db.security_events.insert(),
        [
            {
                "at": now,
                "kind": kind,
                "box_id": box,
                "remote": "haccp",
                "detail": f"venue {venue}: {detail}"[:500],
            }
        ],
    )


def _check(body: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
    """The record's problem ("" if none) and its parsed data."""
    try:
        check_fields(
            body.get("seq"),
            body.get("ts"),
            body.get("unit"),
            body.get("kind"),
            body.get("prev"),
            body.get("hash"),
        )
        data = strict_loads(body.get("data"))
    except MalformedRecord as exc:
        return f"malformed: {exc}", None
    h = record_hash(body["prev"], body["seq"], float(body["ts"]), body["unit"], body["kind"], data)
    if h != body["hash"]:
        return "content does not match its hash", data
    return "", data


def ingest_chain(
    c: sa.Connection, box: str, venue: str, bodies: list[dict[str, Any]], now: float
) -> int:
    """Store and verify chain records inside the ingest transaction; returns how many were new."""
    usable = [b for b in bodies if type(b.get("seq")) is int and b["seq"] > 0]
    for b in bodies:
        if b not in usable:
            _event(c, now, "haccp_record_invalid", box, venue, f"record without a seq: {b!r:.200}")
    if not usable:
        return 0
    usable.sort(key=lambda b: int(b["seq"]))
    lo, hi = int(usable[0]["seq"]), int(usable[-1]["seq"])
    t = db.haccp_records
    known: dict[int, tuple[str, str]] = {
        int(s): (h, p)
        for s, h, p in c.execute(
            sa.select(t.c.seq, t.c.hash, t.c.prev_hash).where(
                t.c.box_id == box, t.c.seq >= lo - 1, t.c.seq <= hi + 1
            )
        )
    }
    rows: list[dict[str, Any]] = []
    for b in usable:
        seq = int(b["seq"])
        problem, _ = _check(b)
        h, prev = str(b.get("hash", "")), str(b.get("prev", ""))
        if seq in known:
            if known[seq][0] != h:
                _event(
                    c,
                    now,
                    "haccp_chain_conflict",
                    box,
                    venue,
                    f"record {seq} arrived again with a different hash: the box's history "
                    "was rewritten or its store replaced",
                )
            continue
        before = GENESIS if seq == 1 else known.get(seq - 1, (None, ""))[0]
        if not problem and before is not None and before != prev:
            problem = "previous-hash link does not match record before"
        after = known.get(seq + 1)
        if not problem and after is not None and after[1] != h:
            problem = "the next record's previous-hash link does not match this one"
        if problem:
            _event(c, now, "haccp_record_invalid", box, venue, f"record {seq}: {problem}")
        known[seq] = (h, prev)
        ts = b.get("ts")
        rows.append(
            {
                "box_id": box,
                "seq": seq,
                "venue_id": venue,
                "ts": ts if isinstance(ts, float) and math.isfinite(ts) else 0.0,
                "unit": str(b.get("unit", ""))[:128],
                "kind": str(b.get("kind", ""))[:64],
                "data": str(b.get("data", "")),
                "prev_hash": prev[:64],
                "hash": h[:64],
                "received_at": now,
                "problem": problem,
            }
        )
    if rows:
        c.execute(db.insert_ignore(c.engine, t), rows)
    return len(rows)


def record_anchor(
    engine: sa.Engine,
    sign_key: Ed25519PrivateKey,
    box: str,
    venue: str,
    box_pub: bytes,
    doc: Any,
    now: float,
) -> dict[str, Any]:
    """Keep a signed anchor and answer a signed receipt, or refuse it (409) with the reason
    when the box's chain no longer extends what the cloud holds."""
    try:
        a = anchor_from(doc)
        sig = crypto.unb64(str(doc["sig"]))
    except (AnchorError, KeyError, ValueError, TypeError) as exc:
        raise AnchorRefused(400, f"malformed anchor: {exc}") from exc
    if a.box != box or a.venue != venue:
        raise AnchorRefused(400, "anchor names another box or venue")
    if not crypto.verify(box_pub, sig, a.message()):
        with engine.begin() as c:
            _event(c, now, "haccp_anchor_bad_sig", box, venue, "anchor signature invalid")
        raise AnchorRefused(401, "anchor not signed by this box's key")
    problem = ""
    at, rt = db.haccp_anchors, db.haccp_records
    with engine.begin() as c:
        last = c.execute(
            sa.select(at.c.count, at.c.head)
            .where(at.c.box_id == box, at.c.problem == "")
            .order_by(at.c.id.desc())
            .limit(1)
        ).first()
        if last is not None and a.count < int(last[0]):
            problem = (
                f"TRUNCATED: the box's chain now holds {a.count} record(s), "
                f"the last anchor held {int(last[0])}"
            )
        else:
            stored = (
                GENESIS
                if a.count == 0
                else c.execute(
                    sa.select(rt.c.hash).where(rt.c.box_id == box, rt.c.seq == a.count)
                ).scalar()
            )
            bad = c.execute(
                sa.select(rt.c.seq, rt.c.problem)
                .where(rt.c.box_id == box, rt.c.seq <= a.count, rt.c.problem != "")
                .order_by(rt.c.seq)
                .limit(1)
            ).first()
            if stored is None:
                problem = f"UNKNOWN HEAD: the cloud holds no record {a.count} for this box"
            elif stored != a.head:
                problem = f"REWRITTEN: record {a.count} does not hash to what the cloud holds"
            elif bad is not None:
                problem = (
                    f"REWRITTEN: record {bad[0]} does not extend the chain the cloud holds "
                    f"({bad[1]})"
                )
        c.execute(
            at.insert(),
            [
                {
                    "box_id": box,
                    "venue_id": venue,
                    "count": a.count,
                    "head": a.head,
                    "box_at": a.at,
                    "sig": crypto.b64(sig),
                    "received_at": now,
                    "problem": problem,
                }
            ],
        )
        if problem:
            _event(c, now, "haccp_anchor_refused", box, venue, problem)
    if problem:
        raise AnchorRefused(409, problem)
    receipt = Receipt(a, now)
    return {
        "count": a.count,
        "head": a.head,
        "received_at": now,
        "sig": crypto.b64(sign_key.sign(receipt.message())),
    }


# ---- reading and verifying ------------------------------------------------------------------


def venue_records(
    engine: sa.Engine,
    venue: str,
    start: float | None = None,
    end: float | None = None,
    limit: int = 10_000,
) -> list[dict[str, Any]]:
    t = db.haccp_records
    q = sa.select(t).where(t.c.venue_id == venue)
    if start is not None:
        q = q.where(t.c.ts >= start)
    if end is not None:
        q = q.where(t.c.ts < end)
    q = q.order_by(t.c.box_id, t.c.seq).limit(limit)
    with engine.connect() as c:
        return [
            {
                "box": r["box_id"],
                "seq": r["seq"],
                "ts": r["ts"],
                "unit": r["unit"],
                "kind": r["kind"],
                "data": r["data"],
                "prev_hash": r["prev_hash"],
                "hash": r["hash"],
                "received_at": r["received_at"],
                "problem": r["problem"],
            }
            for r in c.execute(q).mappings()
        ]


@dataclass
class BoxChain:
    box: str
    records: int = 0
    ok: bool = True
    broken_seq: int | None = None
    reason: str = ""
    head: str = GENESIS
    last_anchor: dict[str, Any] | None = None
    refused_anchors: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)


def verify_venue(engine: sa.Engine, venue: str) -> list[BoxChain]:
    """Walk every box's stored chain again (the cloud's own copy could be edited too), and set
    it against the last accepted anchor and the security events raised on the way."""
    t, at, st, bt = db.haccp_records, db.haccp_anchors, db.security_events, db.boxes
    out: list[BoxChain] = []
    with engine.connect() as c:
        boxes = sorted(
            {r[0] for r in c.execute(sa.select(bt.c.id).where(bt.c.venue_id == venue))}
            | {
                r[0]
                for r in c.execute(sa.select(t.c.box_id).where(t.c.venue_id == venue).distinct())
            }
        )
        for box in boxes:
            bc = BoxChain(box)
            prev, expected = GENESIS, 1
            q = sa.select(t).where(t.c.box_id == box).order_by(t.c.seq)
            for r in c.execute(q).mappings():
                body = {
                    "seq": r["seq"],
                    "ts": r["ts"],
                    "unit": r["unit"],
                    "kind": r["kind"],
                    "data": r["data"],
                    "prev": r["prev_hash"],
                    "hash": r["hash"],
                }
                problem = r["problem"] or _check(body)[0]
                if not problem and r["seq"] != expected:
                    bc.broken_seq, bc.reason = expected, f"record {expected} not received"
                elif not problem and r["prev_hash"] != prev:
                    problem = "previous-hash link does not match record before"
                if problem:
                    bc.broken_seq, bc.reason = int(r["seq"]), problem
                if bc.broken_seq is not None:
                    bc.ok = False
                    break
                prev, expected = r["hash"], expected + 1
                bc.records += 1
            bc.head = prev
            last = (
                c.execute(
                    sa.select(at)
                    .where(at.c.box_id == box, at.c.problem == "")
                    .order_by(at.c.id.desc())
                    .limit(1)
                )
                .mappings()
                .first()
            )
            if last is not None:
                bc.last_anchor = {
                    "count": last["count"],
                    "head": last["head"],
                    "at": last["box_at"],
                    "received_at": last["received_at"],
                }
            bc.refused_anchors = int(
                c.execute(
                    sa.select(sa.func.count()).where(at.c.box_id == box, at.c.problem != "")
                ).scalar()
                or 0
            )
            bc.events = [
                dict(e)
                for e in c.execute(
                    sa.select(st.c.at, st.c.kind, st.c.detail)
                    .where(st.c.box_id == box, st.c.kind.like("haccp%"))
                    .order_by(st.c.id)
                ).mappings()
            ]
            if bc.events or bc.refused_anchors:
                bc.ok = False
                if not bc.reason:
                    bc.reason = (
                        f"{len(bc.events)} HACCP security event(s): {bc.events[-1]['detail']}"
                    )
            out.append(bc)
    return out
