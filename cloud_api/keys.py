"""The cloud's own keys (Ed25519 to sign acks and documents, X25519 for agreement), 0600."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from cloud_sync import crypto


@dataclass(frozen=True)
class CloudKeys:
    sign: Ed25519PrivateKey
    kx: X25519PrivateKey

    @property
    def sign_pub(self) -> str:
        return crypto.b64(crypto.public_bytes(self.sign))

    @property
    def kx_pub(self) -> str:
        return crypto.b64(crypto.public_bytes(self.kx))


def load_or_create(path: str) -> CloudKeys:
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        return CloudKeys(
            crypto.load_signing_key(crypto.unb64(doc["sign"])),
            crypto.load_agreement_key(crypto.unb64(doc["kx"])),
        )
    keys = CloudKeys(crypto.new_signing_key(), crypto.new_agreement_key())
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(
            fd,
            json.dumps(
                {
                    "sign": crypto.b64(crypto.private_bytes(keys.sign)),
                    "kx": crypto.b64(crypto.private_bytes(keys.kx)),
                }
            ).encode(),
        )
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(path + ".tmp", path)
    return keys
