"""The wire envelope and the at-rest record sealing: pure functions, bytes in and bytes out.

Envelope layout::

    b"BFE1" | u16 header length | header (canonical JSON) | AEAD(zlib(records JSON))

The header (box, venue, key id, envelope id, nonce, box send time) travels in clear so the
cloud can pick the key, and is authenticated as associated data, so changing any byte of it
fails the tag. The body is a JSON list of ``[stream, seq, created, record]`` items.

At rest each outbox payload is ``nonce | AEAD(record JSON)`` with ``stream:seq`` as associated
data, so a payload moved to another row on disk fails to open.
"""

from __future__ import annotations

import json
import os
import re
import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from cloud_sync.crypto import b64, unb64
from cloud_sync.errors import EnvelopeError

MAGIC = b"BFE1"
MAX_HEADER = 4096
MAX_BODY = 64 * 1024 * 1024  # decompressed; refuses zip bombs
NONCE = 12
STREAM_RE = re.compile(r"[a-z][a-z0-9_]{0,31}")


@dataclass(frozen=True, slots=True)
class EnvelopeHeader:
    box: str
    venue: str
    kid: int
    envelope_id: str
    sent_at: float
    nonce: bytes


@dataclass(frozen=True, slots=True)
class SyncRecord:
    stream: str
    seq: int
    created: float
    body: dict[str, Any]


def _header_bytes(h: EnvelopeHeader) -> bytes:
    doc = {
        "box": h.box,
        "env": h.envelope_id,
        "kid": h.kid,
        "nonce": b64(h.nonce),
        "sent": h.sent_at,
        "venue": h.venue,
        "v": 1,
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def seal_raw(
    box: str, venue: str, kid: int, key: bytes, items: Iterable[bytes], sent_at: float
) -> tuple[EnvelopeHeader, bytes]:
    """Seal pre-encoded JSON items (``[stream,seq,created,record]``) into one envelope."""
    header = EnvelopeHeader(box, venue, kid, os.urandom(16).hex(), sent_at, os.urandom(NONCE))
    hb = _header_bytes(header)
    body = zlib.compress(b"[" + b",".join(items) + b"]", 1)
    ct = ChaCha20Poly1305(key).encrypt(header.nonce, body, hb)
    return header, MAGIC + struct.pack(">H", len(hb)) + hb + ct


def encode_item(stream: str, seq: int, created: float, record_json: bytes) -> bytes:
    return b'["%s",%d,%r,%s]' % (stream.encode(), seq, created, record_json)


def seal(
    box: str, venue: str, kid: int, key: bytes, records: Iterable[SyncRecord], sent_at: float
) -> tuple[EnvelopeHeader, bytes]:
    items = (encode_item(r.stream, r.seq, r.created, json.dumps(r.body).encode()) for r in records)
    return seal_raw(box, venue, kid, key, items, sent_at)


def read_header(blob: bytes) -> tuple[EnvelopeHeader, bytes, bytes]:
    """Parse the clear header; returns it, its exact bytes (the AAD) and the ciphertext."""
    if len(blob) < 6 or blob[:4] != MAGIC:
        raise EnvelopeError("not an envelope (bad magic)")
    (n,) = struct.unpack(">H", blob[4:6])
    if n > MAX_HEADER or len(blob) < 6 + n + 16:
        raise EnvelopeError("truncated envelope")
    hb = blob[6 : 6 + n]
    try:
        doc = json.loads(hb)
        header = EnvelopeHeader(
            box=str(doc["box"]),
            venue=str(doc["venue"]),
            kid=int(doc["kid"]),
            envelope_id=str(doc["env"]),
            sent_at=float(doc["sent"]),
            nonce=unb64(str(doc["nonce"])),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise EnvelopeError(f"malformed envelope header: {exc}") from exc
    if len(header.nonce) != NONCE or not re.fullmatch(r"[0-9a-f]{32}", header.envelope_id):
        raise EnvelopeError("malformed envelope header: nonce or id")
    return header, hb, blob[6 + n :]


def open_body(header: EnvelopeHeader, hb: bytes, ct: bytes, key: bytes) -> list[SyncRecord]:
    """Authenticate and decode the body; every failure is an EnvelopeError."""
    try:
        packed = ChaCha20Poly1305(key).decrypt(header.nonce, ct, hb)
    except InvalidTag as exc:
        raise EnvelopeError("envelope failed authentication") from exc
    d = zlib.decompressobj()
    try:
        raw = d.decompress(packed, MAX_BODY)
    except zlib.error as exc:
        raise EnvelopeError(f"envelope body does not decompress: {exc}") from exc
    if d.unconsumed_tail:
        raise EnvelopeError("envelope body too large")
    try:
        items = json.loads(raw)
        out = [SyncRecord(str(s), int(q), float(c), dict(b)) for s, q, c, b in items]
    except (ValueError, TypeError) as exc:
        raise EnvelopeError(f"malformed envelope body: {exc}") from exc
    for r in out:
        if not STREAM_RE.fullmatch(r.stream) or r.seq < 1:
            raise EnvelopeError(f"bad record address {r.stream!r}/{r.seq}")
    return out


def open_envelope(blob: bytes, key: bytes) -> tuple[EnvelopeHeader, list[SyncRecord]]:
    header, hb, ct = read_header(blob)
    return header, open_body(header, hb, ct, key)


# ---- at rest -----------------------------------------------------------------------------


def seal_at_rest(aead: ChaCha20Poly1305, stream: str, seq: int, record_json: bytes) -> bytes:
    nonce = os.urandom(NONCE)
    return nonce + aead.encrypt(nonce, record_json, b"%s:%d" % (stream.encode(), seq))


def open_at_rest(aead: ChaCha20Poly1305, stream: str, seq: int, payload: bytes) -> bytes:
    try:
        return aead.decrypt(payload[:NONCE], payload[NONCE:], b"%s:%d" % (stream.encode(), seq))
    except InvalidTag as exc:
        raise EnvelopeError(f"outbox record {stream}/{seq} failed authentication") from exc
