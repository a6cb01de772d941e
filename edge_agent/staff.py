"""Staff identity: PIN hashes in the venue config, verification, and lock-out after wrong PINs.

The venue config holds `pin_hash = "scrypt$n$r$p$salt_b64$hash_b64"`, never a PIN. A four-digit
PIN has only 10 000 values, so the hash alone cannot keep it secret from someone who copies the
config; scrypt makes each guess cost memory and time, and the lock-out stops guessing at the
terminal. A wrong PIN is recorded as an `Event` (who, when, how many) — never the PIN itself.

The hash format parser is pure; `StaffDirectory` takes a clock and an event sink so tests drive
the lock-out with a ManualClock.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import logging
import os
import secrets
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from edge_agent.clock import Clock
from edge_agent.errors import EdgeError
from edge_agent.messages import Event, Severity

log = logging.getLogger(__name__)

SCHEME = "scrypt"
# 2**14 × r=8 is 16 MiB and ~50 ms on a Raspberry Pi 4 class CPU: slow for a guesser, quick
# enough for a cook pressing Confirm.
DEFAULT_N, DEFAULT_R, DEFAULT_P = 2**14, 8, 1
SALT_BYTES = 16
KEY_BYTES = 32
MAX_N = 2**20  # 1 GiB at r=8 would not fit the box; refuse hashes that would exhaust it
MAX_R, MAX_P = 32, 16
MIN_SALT, MIN_KEY, MAX_BYTES = 8, 16, 64
MIN_PIN, MAX_PIN = 4, 12

MAX_FAILURES = 5
LOCKOUT_S = 60.0


class PinHashError(EdgeError, ValueError):
    """A `pin_hash` that is not `scrypt$n$r$p$salt_b64$hash_b64` with sane parameters."""


@dataclass(frozen=True, slots=True)
class PinHash:
    n: int
    r: int
    p: int
    salt: bytes
    key: bytes

    def format(self) -> str:
        salt = base64.b64encode(self.salt).decode()
        key = base64.b64encode(self.key).decode()
        return f"{SCHEME}${self.n}${self.r}${self.p}${salt}${key}"


def _int(text: str, name: str, lo: int, hi: int) -> int:
    if not text.isascii() or not text.isdigit():
        raise PinHashError(f"{name} must be a whole number, got {text[:20]!r}")
    value = int(text)
    if not lo <= value <= hi:
        raise PinHashError(f"{name} must be between {lo} and {hi}, got {value}")
    return value


def _b64(text: str, name: str, lo: int) -> bytes:
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise PinHashError(f"{name} is not base64") from exc
    if not lo <= len(raw) <= MAX_BYTES:
        raise PinHashError(f"{name} must be {lo} to {MAX_BYTES} bytes, got {len(raw)}")
    return raw


def parse_pin_hash(text: str) -> PinHash:
    """The parameters of a stored hash, or PinHashError saying what is wrong (never the text:
    it is a secret-ish value and ends up in logs)."""
    parts = text.split("$")
    if len(parts) != 6 or parts[0] != SCHEME:
        raise PinHashError(
            "pin_hash must look like scrypt$n$r$p$salt$hash "
            "(make one with `beerflow-edge staff hash-pin`)"
        )
    n = _int(parts[1], "scrypt n", 2, MAX_N)
    if n & (n - 1):
        raise PinHashError(f"scrypt n must be a power of two, got {n}")
    r = _int(parts[2], "scrypt r", 1, MAX_R)
    p = _int(parts[3], "scrypt p", 1, MAX_P)
    # OpenSSL refuses parameters needing more than maxmem; check here so a config error is
    # reported at load, not when a cook first types a PIN.
    if 128 * r * n > 2**30:
        raise PinHashError(f"scrypt n={n}, r={r} needs more than 1 GiB of memory")
    return PinHash(n, r, p, _b64(parts[4], "salt", MIN_SALT), _b64(parts[5], "hash", MIN_KEY))


def check_pin_format(pin: str) -> None:
    if not (pin.isascii() and pin.isdigit() and MIN_PIN <= len(pin) <= MAX_PIN):
        raise ValueError(f"a PIN is {MIN_PIN} to {MAX_PIN} digits")


def _derive(pin: str, h: PinHash) -> bytes:
    return hashlib.scrypt(
        pin.encode("utf-8"),
        salt=h.salt,
        n=h.n,
        r=h.r,
        p=h.p,
        maxmem=2**30 + 2**20,
        dklen=len(h.key),
    )


def hash_pin(
    pin: str,
    *,
    n: int = DEFAULT_N,
    r: int = DEFAULT_R,
    p: int = DEFAULT_P,
    salt: bytes | None = None,
) -> str:
    check_pin_format(pin)
    h = PinHash(n, r, p, salt if salt is not None else secrets.token_bytes(SALT_BYTES), b"\0" * 32)
    return PinHash(n, r, p, h.salt, _derive(pin, h)).format()


def verify_pin(pin: str, stored: PinHash) -> bool:
    # compare_digest: the time taken does not tell a guesser how many bytes matched.
    return hmac.compare_digest(_derive(pin, stored), stored.key)


# ---- the directory: who may act, and the lock-out --------------------------------------


class StaffRecord(Protocol):
    """What the directory needs of a `[[staff]]` entry (edge_agent.config.model.StaffMember)."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def pin_hash(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Staff:
    id: str
    name: str
    role: str


class AuthError(EdgeError):
    """Root: the staff member could not be confirmed."""


class WrongPin(AuthError):
    """Unknown staff ID or wrong PIN (HTTP 401)."""


class LockedOut(AuthError):
    """Too many wrong PINs for this staff member (HTTP 429)."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass
class _Attempts:
    failures: int = 0
    locked_until: float = 0.0
    pending: int = 0  # PINs being verified right now: they count before their verdict


# IDs nobody has are tracked too (answered exactly like a known member's wrong PIN), but only
# this many at once, so a guesser cycling through IDs cannot grow memory.
MAX_TRACKED = 1000
WRONG = "wrong staff ID or PIN"


EventSink = Callable[[Event], Awaitable[None]]


class StaffDirectory:
    """Checks a staff ID and PIN; five wrong PINs lock that ID out for a minute.

    The lock-out is atomic: an attempt is counted *before* its PIN is verified (in a worker
    thread), so however many guesses arrive at once, at most `max_failures` are ever checked
    per lock-out window. An unknown ID gets the same answer, the same scrypt work and the same
    lock-out as a known one with a wrong PIN, and no answer names the member. With a
    `state_path` the counts and lock-outs are kept in a private file and survive a restart."""

    def __init__(
        self,
        staff: Iterable[StaffRecord],
        clock: Clock,
        record: EventSink,
        *,
        max_failures: int = MAX_FAILURES,
        lockout_s: float = LOCKOUT_S,
        state_path: str | None = None,
    ) -> None:
        self._staff = {
            s.id: (Staff(s.id, s.name, s.role), parse_pin_hash(s.pin_hash)) for s in staff
        }
        self.clock = clock
        self.record = record
        self.max_failures = max_failures
        self.lockout_s = lockout_s
        self._attempts: dict[str, _Attempts] = {}
        self.state_path = state_path
        # Verified against when the ID is unknown, so the answer takes as long.
        costs = [h for _, h in self._staff.values()]
        like = costs[0] if costs else PinHash(DEFAULT_N, DEFAULT_R, DEFAULT_P, b"", b"")
        self._decoy = parse_pin_hash(hash_pin("0000", n=like.n, r=like.r, p=like.p))
        self._load()

    def __len__(self) -> int:
        return len(self._staff)

    async def authenticate(self, staff_id: str, pin: str) -> Staff:
        entry = self._staff.get(staff_id)
        staff, stored = entry if entry is not None else (None, self._decoy)
        now = self.clock.time()
        att = self._attempt(staff_id)
        if att.locked_until > now:
            wait = att.locked_until - now
            raise LockedOut(f"too many wrong PINs: try again in {wait:.0f} s", wait)
        if att.failures + att.pending >= self.max_failures:
            # Guesses already in flight would use up the tries: this one is not checked.
            raise LockedOut("too many PIN attempts at once: try again shortly", 1.0)
        att.pending += 1
        try:
            ok = (
                bool(pin)
                and len(pin) <= MAX_PIN * 4
                and await asyncio.to_thread(verify_pin, pin, stored)
                and staff is not None
            )
        finally:
            att.pending -= 1
        if ok and staff is not None:
            if att.failures:
                att.failures = 0
                await self._save()
            return staff
        att.failures += 1
        left = self.max_failures - att.failures
        why = "wrong PIN" if staff is not None else "unknown staff ID"
        if left <= 0:
            att.failures = 0
            att.locked_until = now + self.lockout_s
            await self._save()
            await self._failed(staff_id, staff, why, locked_s=self.lockout_s)
            raise LockedOut(f"{WRONG}; locked for {self.lockout_s:.0f} s", self.lockout_s)
        await self._save()
        await self._failed(staff_id, staff, why, left=left)
        raise WrongPin(f"{WRONG} ({left} tries left before a lock-out)")

    def _attempt(self, staff_id: str) -> _Attempts:
        att = self._attempts.get(staff_id)
        if att is None:
            if len(self._attempts) >= MAX_TRACKED:
                # Forget an idle entry (no failures, not locked, nothing pending) first.
                now = self.clock.time()
                for k, v in list(self._attempts.items()):
                    if not v.pending and (v.locked_until <= now):
                        del self._attempts[k]
                        if len(self._attempts) < MAX_TRACKED:
                            break
            att = self._attempts[staff_id] = _Attempts()
        return att

    def _load(self) -> None:
        if self.state_path is None or not os.path.exists(self.state_path):
            return
        try:
            with open(self.state_path, encoding="utf-8") as f:
                doc = json.load(f)
            for k, (failures, until) in dict(doc).items():
                self._attempts[str(k)[:64]] = _Attempts(int(failures), float(until))
        except (OSError, ValueError, TypeError) as exc:
            # Unreadable state must not open the door wider: every known ID starts locked.
            log.warning(
                "staff: lock-out state %s unreadable (%s); locking all", self.state_path, exc
            )
            until = self.clock.time() + self.lockout_s
            self._attempts = {k: _Attempts(0, until) for k in self._staff}

    async def _save(self) -> None:
        if self.state_path is None:
            return
        doc = {
            k: [a.failures, a.locked_until]
            for k, a in self._attempts.items()
            if a.failures or a.locked_until > self.clock.time()
        }
        await asyncio.to_thread(_write_private, self.state_path, json.dumps(doc).encode())

    async def _failed(
        self,
        staff_id: str,
        staff: Staff | None,
        why: str,
        *,
        left: int | None = None,
        locked_s: float | None = None,
    ) -> None:
        data: dict[str, object] = {"staff_id": staff_id[:64], "reason": why}
        if left is not None:
            data["tries_left"] = left
        if locked_s is not None:
            data["locked_s"] = locked_s
        who = staff.name if staff else f"ID {staff_id[:32]!r}"  # for the record, not the caller
        severity = Severity.WARNING if locked_s is not None else Severity.INFO
        msg = f"{why} for {who}" + (f"; locked for {locked_s:.0f} s" if locked_s else "")
        await self.record(
            Event("staff.pin_failed", self.clock.time(), "staff", severity, msg, data)
        )


def _write_private(path: str, data: bytes) -> None:
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
