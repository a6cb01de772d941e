"""The box's identity: its keys, its id, the cloud's pinned public keys; one 0600 file.

The file lives next to the store (``<store dir>/sync/identity.json``), never in the venue
config, so a config can be copied, diffed and downlinked without carrying a secret.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, replace
from functools import cached_property

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from cloud_sync import crypto
from cloud_sync.errors import SyncError


@dataclass(frozen=True)
class BoxIdentity:
    box_id: str
    venue: str
    cloud_url: str
    sign_key: str  # b64 raw Ed25519 private key
    kx_key: str  # b64 raw X25519 private key
    kid: int = 1
    tenant: str = ""
    cloud_sign_pub: str = ""  # pinned at enrolment
    cloud_kx_pub: str = ""
    pending_claim: str = ""  # set by `provision --offline` until enrolment succeeds

    @property
    def enrolled(self) -> bool:
        return bool(self.cloud_sign_pub and self.cloud_kx_pub)

    @property
    def sign_pub(self) -> bytes:
        return crypto.public_bytes(crypto.load_signing_key(crypto.unb64(self.sign_key)))

    @property
    def kx_pub(self) -> bytes:
        return crypto.public_bytes(crypto.load_agreement_key(crypto.unb64(self.kx_key)))

    def sign(self, message: bytes) -> bytes:
        return crypto.load_signing_key(crypto.unb64(self.sign_key)).sign(message)

    def key(self, kid: int, purpose: bytes) -> bytes:
        if not self.enrolled:
            raise SyncError("box is not enrolled yet: no keys agreed with the cloud")
        priv = crypto.load_agreement_key(crypto.unb64(self.kx_key))
        return crypto.derive_key(priv, crypto.unb64(self.cloud_kx_pub), self.box_id, kid, purpose)

    @cached_property
    def _at_rest(self) -> dict[int, ChaCha20Poly1305]:
        return {}

    def at_rest(self, kid: int) -> ChaCha20Poly1305:
        found = self._at_rest.get(kid)
        if found is None:
            found = self._at_rest[kid] = ChaCha20Poly1305(self.key(kid, crypto.AT_REST))
        return found


def new_identity(venue: str, cloud_url: str, claim: str = "") -> BoxIdentity:
    sk = crypto.new_signing_key()
    kx = crypto.new_agreement_key()
    box_id = "box-" + crypto.fingerprint(crypto.public_bytes(sk))
    return BoxIdentity(
        box_id=box_id,
        venue=venue,
        cloud_url=cloud_url.rstrip("/"),
        sign_key=crypto.b64(crypto.private_bytes(sk)),
        kx_key=crypto.b64(crypto.private_bytes(kx)),
        pending_claim=claim,
    )


def save(path: str, ident: BoxIdentity) -> None:
    """Write atomically with mode 0600 (the directory 0700): a crash leaves old or new."""
    d = os.path.dirname(path)
    os.makedirs(d, mode=0o700, exist_ok=True)
    os.chmod(d, 0o700)
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, json.dumps(asdict(ident), indent=2, sort_keys=True).encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def load(path: str) -> BoxIdentity | None:
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise SyncError(f"cannot read box identity {path}: {exc}") from exc
    mode = os.stat(path).st_mode & 0o777
    if mode & 0o077:
        raise SyncError(f"box identity {path} is readable by others (mode {mode:o}); chmod 600")
    try:
        return BoxIdentity(**doc)
    except TypeError as exc:
        raise SyncError(f"box identity {path} is malformed: {exc}") from exc


def enrolled_copy(
    ident: BoxIdentity, tenant: str, cloud_sign_pub: str, cloud_kx_pub: str
) -> BoxIdentity:
    return replace(
        ident,
        tenant=tenant,
        cloud_sign_pub=cloud_sign_pub,
        cloud_kx_pub=cloud_kx_pub,
        pending_claim="",
    )
