"""Passphrase encryption for backups, streamed so a gigabyte store never sits in memory.

scrypt turns the passphrase into an AES-256-GCM key; the data is cut into 1 MiB chunks, each
sealed with a nonce of (random prefix, chunk counter, last-chunk flag) and the header as
associated data: the STREAM construction (Hoang, Reyhanitabar, Rogaway, Vizár, 2015), so a
reordered, dropped, truncated or extended chunk fails like a wrong passphrase does. The
primitives are the `cryptography` package's; age's Python binding would have done the same
but only on whole in-memory buffers.

File: MAGIC | salt(16) | log2(n) | r | p | nonce prefix(7) | chunks, each
      length(4, big-endian, top bit = last) | ciphertext (chunk + 16-byte tag).
"""

from __future__ import annotations

import os
import struct
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from edge_agent.errors import EdgeError

MAGIC = b"BEERFLOW-BACKUP-1\n"
CHUNK = 1 << 20
LAST = 0x8000_0000
DEFAULT_LOG2_N = 17  # 128 MiB of scrypt memory: about a second on a Pi 4, costly to guess


class BackupCryptoError(EdgeError):
    """Wrong passphrase, or a damaged, truncated or tampered backup."""


def _key(passphrase: str, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    if not passphrase:
        raise BackupCryptoError("an empty passphrase is not accepted")
    kdf = Scrypt(salt=salt, length=32, n=1 << log2_n, r=r, p=p)
    return kdf.derive(passphrase.encode("utf-8"))


def _nonce(prefix: bytes, counter: int, last: bool) -> bytes:
    return prefix + struct.pack(">IB", counter, 1 if last else 0)


class EncryptingWriter:
    """A write-only file object: write() plaintext, close() seals the last chunk."""

    def __init__(self, out: BinaryIO, passphrase: str, log2_n: int = DEFAULT_LOG2_N) -> None:
        salt, prefix = os.urandom(16), os.urandom(7)
        r, p = 8, 1
        self._header = MAGIC + salt + bytes([log2_n, r, p]) + prefix
        self._aead = AESGCM(_key(passphrase, salt, log2_n, r, p))
        self._prefix = prefix
        self._out = out
        self._buf = bytearray()
        self._counter = 0
        self.closed = False
        out.write(self._header)

    def _seal(self, data: bytes, last: bool) -> None:
        ct = self._aead.encrypt(_nonce(self._prefix, self._counter, last), data, self._header)
        self._out.write(struct.pack(">I", len(ct) | (LAST if last else 0)) + ct)
        self._counter += 1

    def write(self, data: bytes) -> int:
        self._buf += data
        while len(self._buf) > CHUNK:
            self._seal(bytes(self._buf[:CHUNK]), last=False)
            del self._buf[:CHUNK]
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._seal(bytes(self._buf), last=True)
            self._buf.clear()
            self.closed = True


class DecryptingReader:
    """A read-only file object over an encrypted backup; raises BackupCryptoError on any damage."""

    def __init__(self, src: BinaryIO, passphrase: str) -> None:
        head = src.read(len(MAGIC) + 16 + 3 + 7)
        if len(head) < len(MAGIC) + 26 or not head.startswith(MAGIC):
            raise BackupCryptoError("not a BeerFlow backup (or an unsupported version)")
        salt = head[len(MAGIC) : len(MAGIC) + 16]
        log2_n, r, p = head[len(MAGIC) + 16 : len(MAGIC) + 19]
        if not (10 <= log2_n <= 22 and 1 <= r <= 32 and 1 <= p <= 16):
            raise BackupCryptoError("backup header has implausible key-derivation parameters")
        self._header = head
        self._prefix = head[-7:]
        self._aead = AESGCM(_key(passphrase, salt, log2_n, r, p))
        self._src = src
        self._buf = bytearray()
        self._counter = 0
        self._done = False

    def _next_chunk(self) -> None:
        raw = self._src.read(4)
        if len(raw) < 4:
            raise BackupCryptoError("backup is truncated")
        (n,) = struct.unpack(">I", raw)
        last, n = bool(n & LAST), n & ~LAST
        if n > CHUNK + 16:
            raise BackupCryptoError("backup is damaged (chunk length)")
        ct = self._src.read(n)
        if len(ct) < n:
            raise BackupCryptoError("backup is truncated")
        try:
            pt = self._aead.decrypt(_nonce(self._prefix, self._counter, last), ct, self._header)
        except InvalidTag:
            raise BackupCryptoError(
                "wrong passphrase, or the backup is damaged or was altered"
            ) from None
        self._counter += 1
        self._buf += pt
        if last:
            if self._src.read(1):
                raise BackupCryptoError("backup has data after its last chunk")
            self._done = True

    def read(self, size: int = -1) -> bytes:
        while not self._done and (size < 0 or len(self._buf) < size):
            self._next_chunk()
        if size < 0:
            size = len(self._buf)
        out = bytes(self._buf[:size])
        del self._buf[:size]
        return out
