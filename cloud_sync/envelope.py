"""The wire envelope and the at-rest record sealing: pure functions, bytes in and bytes out.

Envelope layout::

    b"BFE1" | u16 header length | header (canonical JSON) | AEAD(zlib(body))

The header (box, venue, key id, envelope id, nonce, box send time, format version) travels in
clear so the cloud can pick the key, and is authenticated as associated data, so changing any
byte of it fails the tag.

Body, format 2 (what boxes send): one line of JSON ``[[stream, seq, created], …]``, then one
line per record with the record's JSON exactly as the box stored it. The cloud keeps those
bytes as they are (no decode-and-re-encode per record); compact JSON never holds a raw
newline, and a count mismatch fails the envelope. Format 1 (a JSON list of
``[stream, seq, created, record]``) is still read.

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
MAX_SEQ = 2**63 - 1  # a record's seq fits a signed 64-bit column
STREAM_RE = re.compile(r"[a-z][a-z0-9_]{0,31}")


@dataclass(frozen=True, slots=True)
class EnvelopeHeader:
    box: str
    venue: str
    kid: int
    envelope_id: str
    sent_at: float
    nonce: bytes
    version: int = 2
    generation: str = ""  # the box's store generation ("" for stores older than them)


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
        "v": h.version,
    }
    if h.generation:
        doc["gen"] = h.generation
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def seal_raw(
    box: str, venue: str, kid: int, key: bytes, items: Iterable[bytes], sent_at: float
) -> tuple[EnvelopeHeader, bytes]:
    """Seal pre-encoded format-1 JSON items (``[stream,seq,created,record]``)."""
    return _seal(box, venue, kid, key, b"[" + b",".join(items) + b"]", sent_at, 1)


def seal_records(
    box: str,
    venue: str,
    kid: int,
    key: bytes,
    addresses: list[tuple[str, int, float]],
    bodies: list[bytes],
    sent_at: float,
    generation: str = "",
) -> tuple[EnvelopeHeader, bytes]:
    """Seal records (their stored JSON bytes) with their (stream, seq, created) addresses."""
    meta = json.dumps(addresses, separators=(",", ":")).encode()
    return _seal(box, venue, kid, key, meta + b"\n" + b"\n".join(bodies), sent_at, 2, generation)


def _seal(
    box: str,
    venue: str,
    kid: int,
    key: bytes,
    body: bytes,
    sent_at: float,
    version: int,
    generation: str = "",
) -> tuple[EnvelopeHeader, bytes]:
    header = EnvelopeHeader(
        box, venue, kid, os.urandom(16).hex(), sent_at, os.urandom(NONCE), version, generation
    )
    hb = _header_bytes(header)
    ct = ChaCha20Poly1305(key).encrypt(header.nonce, zlib.compress(body, 1), hb)
    return header, MAGIC + struct.pack(">H", len(hb)) + hb + ct


def encode_item(stream: str, seq: int, created: float, record_json: bytes) -> bytes:
    return b'["%s",%d,%r,%s]' % (stream.encode(), seq, created, record_json)


def seal(
    box: str, venue: str, kid: int, key: bytes, records: Iterable[SyncRecord], sent_at: float
) -> tuple[EnvelopeHeader, bytes]:
    recs = list(records)
    return seal_records(
        box,
        venue,
        kid,
        key,
        [(r.stream, r.seq, r.created) for r in recs],
        [json.dumps(r.body, separators=(",", ":")).encode() for r in recs],
        sent_at,
    )


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
            version=int(doc.get("v", 1)),
            generation=str(doc.get("gen", "")),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise EnvelopeError(f"malformed envelope header: {exc}") from exc
    if len(header.nonce) != NONCE or not re.fullmatch(r"[0-9a-f]{32}", header.envelope_id):
        raise EnvelopeError("malformed envelope header: nonce or id")
    if not re.fullmatch(r"([0-9a-f]{32})?", header.generation):
        raise EnvelopeError("malformed envelope header: store generation")
    if header.version not in (1, 2):
        raise EnvelopeError(f"unknown envelope format {header.version}")
    return header, hb, blob[6 + n :]


# (stream, seq, box time, the record's JSON text as sent, the record decoded)
OpenedRecord = tuple[str, int, float, str, dict[str, Any]]


def open_records(header: EnvelopeHeader, hb: bytes, ct: bytes, key: bytes) -> list[OpenedRecord]:
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
    out: list[OpenedRecord] = []
    loads = json.loads
    try:
        if header.version == 1:
            for s, q, c, b in loads(raw):
                text = json.dumps(b, separators=(",", ":"))
                out.append((s, q, float(c), text, dict(b)))
        else:
            meta_raw, _, rest = raw.partition(b"\n")
            meta = loads(meta_raw)
            texts = rest.decode().split("\n") if meta else []
            if not isinstance(meta, list) or len(texts) != len(meta):
                raise EnvelopeError("malformed envelope body: record count mismatch")
            for (s, q, c), t in zip(meta, texts, strict=True):
                b = loads(t)
                if type(b) is not dict:
                    raise TypeError("a record must be a JSON object")
                out.append((s, q, float(c), t, b))
    except (ValueError, TypeError) as exc:
        raise EnvelopeError(f"malformed envelope body: {exc}") from exc
    for s in {r[0] for r in out}:
        if type(s) is not str or not STREAM_RE.fullmatch(s):
            raise EnvelopeError(f"bad record stream {s!r}")
    for r in out:
        q = r[1]
        if type(q) is not int or not 1 <= q <= MAX_SEQ:
            raise EnvelopeError(f"bad record address {r[0]!r}/{q!r}")
    return out


def open_body(header: EnvelopeHeader, hb: bytes, ct: bytes, key: bytes) -> list[SyncRecord]:
    return [SyncRecord(s, q, c, b) for s, q, c, _, b in open_records(header, hb, ct, key)]


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
