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
import secrets
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from edge_agent.clock import Clock
from edge_agent.messages import Event, Severity

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


class PinHashError(ValueError):
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


class AuthError(Exception):
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


EventSink = Callable[[Event], Awaitable[None]]


class StaffDirectory:
    """Checks a staff ID and PIN; five wrong PINs lock that member out for a minute.

    Lock-out state is per staff member and in memory: a restart of the agent forgets it, which
    costs a guesser a restart per five guesses — the restart is slower than the lock."""

    def __init__(
        self,
        staff: Iterable[StaffRecord],
        clock: Clock,
        record: EventSink,
        *,
        max_failures: int = MAX_FAILURES,
        lockout_s: float = LOCKOUT_S,
    ) -> None:
        self._staff = {
            s.id: (Staff(s.id, s.name, s.role), parse_pin_hash(s.pin_hash)) for s in staff
        }
        self.clock = clock
        self.record = record
        self.max_failures = max_failures
        self.lockout_s = lockout_s
        self._attempts: dict[str, _Attempts] = {}

    def __len__(self) -> int:
        return len(self._staff)

    async def authenticate(self, staff_id: str, pin: str) -> Staff:
        entry = self._staff.get(staff_id)
        if entry is None:
            await self._failed(staff_id, None, "unknown staff ID")
            raise WrongPin(f"no staff member with ID {staff_id[:32]!r}")
        staff, stored = entry
        now = self.clock.time()
        att = self._attempts.setdefault(staff_id, _Attempts())
        if att.locked_until > now:
            wait = att.locked_until - now
            raise LockedOut(
                f"too many wrong PINs for {staff.name}: try again in {wait:.0f} s", wait
            )
        ok = (
            bool(pin)
            and len(pin) <= MAX_PIN * 4
            and await asyncio.to_thread(verify_pin, pin, stored)
        )
        if ok:
            att.failures = 0
            return staff
        att.failures += 1
        left = self.max_failures - att.failures
        if left <= 0:
            att.failures = 0
            att.locked_until = now + self.lockout_s
            await self._failed(staff_id, staff, "wrong PIN", locked_s=self.lockout_s)
            raise LockedOut(
                f"wrong PIN for {staff.name}; locked for {self.lockout_s:.0f} s",
                self.lockout_s,
            )
        await self._failed(staff_id, staff, "wrong PIN", left=left)
        raise WrongPin(f"wrong PIN for {staff.name} ({left} tries left before a lock-out)")

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
        who = staff.name if staff else f"ID {staff_id[:32]!r}"
        severity = Severity.WARNING if locked_s is not None else Severity.INFO
        msg = f"{why} for {who}" + (f"; locked for {locked_s:.0f} s" if locked_s else "")
        await self.record(
            Event("staff.pin_failed", self.clock.time(), "staff", severity, msg, data)
        )
