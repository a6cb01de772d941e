"""Chain anchors and the cloud's receipts: what is signed, as pure functions.

An anchor is the box's statement "my HACCP chain holds `count` records and the last one hashes
to `head`", signed with its Ed25519 identity key. The cloud keeps every anchor and answers with
a receipt signed by its own key. A receipt kept on the box lets `haccp verify` prove, offline,
that the chain was not cut short or rewritten since: the receipt's record must still be there
with the same hash.
"""

from __future__ import annotations

import math
import re
import sqlite3
from dataclasses import dataclass
from typing import Any

from rules.errors import RulesError
from rules.haccp.chain import canonical, hash_at

_HEX64 = re.compile(r"[0-9a-f]{64}")


class AnchorError(RulesError, ValueError):
    """An anchor or receipt that is malformed; the message says which field."""


@dataclass(frozen=True, slots=True)
class Anchor:
    box: str
    venue: str
    count: int
    head: str
    at: float

    def message(self) -> bytes:
        return canonical(
            {
                "what": "haccp-anchor",
                "box": self.box,
                "venue": self.venue,
                "count": self.count,
                "head": self.head,
                "at": self.at,
            }
        )


@dataclass(frozen=True, slots=True)
class Receipt:
    anchor: Anchor
    received_at: float

    def message(self) -> bytes:
        a = self.anchor
        return canonical(
            {
                "what": "haccp-receipt",
                "box": a.box,
                "venue": a.venue,
                "count": a.count,
                "head": a.head,
                "at": a.at,
                "received_at": self.received_at,
            }
        )


def anchor_from(doc: Any) -> Anchor:
    if not isinstance(doc, dict):
        raise AnchorError("an anchor is a JSON object")
    try:
        box, venue, count, head, at = (
            doc["box"],
            doc["venue"],
            doc["count"],
            doc["head"],
            doc["at"],
        )
    except KeyError as exc:
        raise AnchorError(f"anchor field {exc.args[0]!r} is missing") from None
    if not isinstance(box, str) or not isinstance(venue, str):
        raise AnchorError("anchor box and venue must be text")
    if type(count) is not int or count < 0:
        raise AnchorError("anchor count must be a whole number ≥ 0")
    if not isinstance(head, str) or not _HEX64.fullmatch(head):
        raise AnchorError("anchor head must be 64 hex digits")
    if type(at) not in (int, float) or not math.isfinite(at):
        raise AnchorError("anchor time must be a finite number")
    return Anchor(box, venue, count, head, float(at))


def anchor_doc(a: Anchor) -> dict[str, Any]:
    return {"box": a.box, "venue": a.venue, "count": a.count, "head": a.head, "at": a.at}


# ---- the receipts the box keeps --------------------------------------------------------------


def save_receipt(conn: sqlite3.Connection, r: Receipt, sig: str) -> None:
    a = r.anchor
    conn.execute(
        "INSERT INTO haccp_receipts (count, head, anchored_at, received_at, box, venue, sig) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (a.count, a.head, a.at, r.received_at, a.box, a.venue, sig),
    )


def last_receipt(conn: sqlite3.Connection) -> tuple[Receipt, str] | None:
    row = conn.execute(
        "SELECT box, venue, count, head, anchored_at, received_at, sig FROM haccp_receipts "
        "ORDER BY id DESC LIMIT 1"
    ).fetchone()
    if row is None:
        return None
    box, venue, count, head, at, received, sig = row
    return Receipt(Anchor(box, venue, int(count), head, float(at)), float(received)), str(sig)


@dataclass(frozen=True, slots=True)
class ReceiptCheck:
    ok: bool
    detail: str
    receipt: Receipt | None = None


def receipt_doc(r: Receipt, sig: str) -> dict[str, Any]:
    return {**anchor_doc(r.anchor), "received_at": r.received_at, "sig": sig}


def receipt_from(doc: Any) -> tuple[Receipt, str]:
    a = anchor_from(doc)
    received, sig = doc.get("received_at"), doc.get("sig")
    if type(received) not in (int, float) or not isinstance(sig, str):
        raise AnchorError("a receipt needs received_at and sig")
    return Receipt(a, float(received)), sig


def check_against_receipt(
    conn: sqlite3.Connection,
    verify_sig: Any | None = None,
    kept: tuple[Receipt, str] | None = None,
) -> ReceiptCheck:
    """Does the chain still hold what the cloud last acknowledged? `verify_sig(message, sig)`
    checks the receipt's signature with the pinned cloud key (None: no identity on this box).
    `kept` is the copy kept outside the store (beside the box identity): a store replaced or
    its receipts deleted is still held to the newest receipt either place has."""
    found = last_receipt(conn)
    if kept is not None and (found is None or kept[0].anchor.count > found[0].anchor.count):
        found = kept
    if found is None:
        return ReceiptCheck(True, "no cloud receipt yet (the chain has not been anchored)")
    r, sig = found
    if verify_sig is not None and not verify_sig(r.message(), sig):
        return ReceiptCheck(False, "the last cloud receipt's signature is not the cloud's", r)
    n = conn.execute("SELECT count(*) FROM haccp_records").fetchone()[0]
    a = r.anchor
    if n < a.count:
        return ReceiptCheck(
            False,
            f"TRUNCATED: the cloud's receipt covers {a.count} record(s), the store holds {n}",
            r,
        )
    h = hash_at(conn, a.count)
    if h != a.head:
        return ReceiptCheck(
            False,
            f"REWRITTEN: record {a.count} does not hash to what the cloud acknowledged",
            r,
        )
    return ReceiptCheck(True, f"matches the cloud's receipt for {a.count} record(s)", r)
