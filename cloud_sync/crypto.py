"""Key material: Ed25519 signing keys, X25519 agreement, HKDF-derived AEAD keys by key id.

Both ends derive the same 32-byte keys from the enrolment key agreement (box X25519 private
with cloud X25519 public, or the other way round). The key id goes into the HKDF `info`, so
rotating is bumping the id: old records keep theirs and still open, new ones use the new key.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_RAW = serialization.Encoding.Raw
_RAW_PUB = serialization.PublicFormat.Raw
_RAW_PRIV = serialization.PrivateFormat.Raw
_NOENC = serialization.NoEncryption()

UPLINK = b"uplink"  # envelopes on the wire, box -> cloud
AT_REST = b"at-rest"  # outbox payloads on the box's disk


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text.encode("ascii"))


def new_signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def new_agreement_key() -> X25519PrivateKey:
    return X25519PrivateKey.generate()


def private_bytes(key: Ed25519PrivateKey | X25519PrivateKey) -> bytes:
    return key.private_bytes(_RAW, _RAW_PRIV, _NOENC)


def public_bytes(
    key: Ed25519PrivateKey | X25519PrivateKey | Ed25519PublicKey | X25519PublicKey,
) -> bytes:
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey | X25519PrivateKey) else key
    return pub.public_bytes(_RAW, _RAW_PUB)


def load_signing_key(raw: bytes) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(raw)


def load_agreement_key(raw: bytes) -> X25519PrivateKey:
    return X25519PrivateKey.from_private_bytes(raw)


def verify(public_raw: bytes, signature: bytes, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public_raw).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def derive_key(
    private: X25519PrivateKey, peer_public_raw: bytes, box_id: str, kid: int, purpose: bytes
) -> bytes:
    shared = private.exchange(X25519PublicKey.from_public_bytes(peer_public_raw))
    info = b"beerflow/" + purpose + b"/" + box_id.encode() + b"/" + str(kid).encode()
    return HKDF(hashes.SHA256(), 32, salt=b"beerflow-sync-v1", info=info).derive(shared)


def fingerprint(public_raw: bytes) -> str:
    return hashlib.sha256(public_raw).hexdigest()[:16]
