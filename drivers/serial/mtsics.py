"""Pure MT-SICS codec: request lines out, typed replies in. No ports, clocks or loggers.

A reply is `<command> <status> [data] [unit]` terminated by CRLF; errors that the scale could
not attribute to a command come back bare (`ES`, `ET`, `EL`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from drivers.errors import CodecError, CommandRejected

EOL = b"\r\n"
_COMMAND = re.compile(r"[A-Z@][A-Z0-9]{0,7}")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")
_UNIT = re.compile(r"[A-Za-z%/]{1,6}")
_STATUS_WORDS = {"S", "D", "A", "B", "I", "L", "+", "-"}

ErrorKind = Literal["syntax", "transmission", "logic"]
_ERRORS: dict[str, ErrorKind] = {"ES": "syntax", "ET": "transmission", "EL": "logic"}


@dataclass(frozen=True, slots=True)
class Weight:
    """A weight value: `stable` False means the scale is still moving (dynamic)."""

    command: str
    value: float
    unit: str
    stable: bool
    # Digits after the decimal point as the scale sent them: its display resolution, which
    # a conversion to another unit must keep (12.30 g is 0.01230 kg, not 0.012 kg).
    decimals: int = 0


@dataclass(frozen=True, slots=True)
class OutOfRange:
    """`+` overload (above capacity) or `-` underload (below the zero range)."""

    command: str
    over: bool


@dataclass(frozen=True, slots=True)
class Done:
    """`A`: command executed; `text` carries any data (quoted strings unquoted)."""

    command: str
    text: str = ""


@dataclass(frozen=True, slots=True)
class Refused:
    """`I`: busy or not executable now; `L`: a parameter was wrong."""

    command: str
    busy: bool


@dataclass(frozen=True, slots=True)
class ScaleError:
    """ES/ET/EL: the scale did not understand the line (no command echo)."""

    kind: ErrorKind


Reply = Weight | OutOfRange | Done | Refused | ScaleError


def encode_request(command: str, *args: str) -> bytes:
    """One request line; refuses anything the scale's parser would choke on."""
    if not _COMMAND.fullmatch(command):
        raise CommandRejected(f"not an MT-SICS command: {command!r}")
    for a in args:
        if not a.isascii() or any(c in a for c in '"\r\n') or not a.isprintable():
            raise CommandRejected(f"argument not sendable over MT-SICS: {a!r}")
    return " ".join((command, *args)).encode("ascii") + EOL


def decode_reply(line: bytes) -> Reply:
    """One reply line (with or without its CRLF) → a typed reply, or CodecError."""
    if line.endswith(EOL):
        line = line[: -len(EOL)]
    try:
        text = line.decode("ascii")
    except UnicodeDecodeError as exc:
        raise CodecError(f"non-ASCII reply {line[:32]!r}") from exc
    if not text.isprintable():
        raise CodecError(f"control characters in reply {line[:32]!r}")
    text = text.strip()
    if text in _ERRORS:
        return ScaleError(_ERRORS[text])
    parts = text.split(maxsplit=2)
    if len(parts) < 2:
        raise CodecError(f"reply without a status: {text[:32]!r}")
    command, status = parts[0], parts[1]
    rest = parts[2] if len(parts) == 3 else ""
    if not _COMMAND.fullmatch(command) or status not in _STATUS_WORDS:
        raise CodecError(f"not an MT-SICS reply: {text[:32]!r}")
    if status in ("S", "D"):
        if not rest and command in ("Z", "ZI"):
            return Done(command)  # zero replies may use S/D without data on some models
        return _weight(command, rest, stable=status == "S")
    if status in ("+", "-"):
        if rest:
            raise CodecError(f"data after an out-of-range status: {text[:32]!r}")
        return OutOfRange(command, over=status == "+")
    if status in ("I", "L"):
        return Refused(command, busy=status == "I")
    return Done(command, _unquote(rest))


def _weight(command: str, rest: str, stable: bool) -> Weight:
    fields = rest.split()
    if len(fields) != 2:
        raise CodecError(f"weight reply needs value and unit, got {rest[:32]!r}")
    value, unit = fields
    if not _NUMBER.fullmatch(value) or not _UNIT.fullmatch(unit):
        raise CodecError(f"bad weight field {rest[:32]!r}")
    decimals = len(value.partition(".")[2])
    return Weight(command, float(value), unit, stable, decimals)


def _unquote(rest: str) -> str:
    rest = rest.strip()
    if len(rest) >= 2 and rest[0] == rest[-1] == '"':
        return rest[1:-1]
    return rest


def parse_identity(text: str) -> tuple[str, float | None, str | None]:
    """The I2 data (`"type capacity unit"`) → (type, capacity, unit), unknown parts as None."""
    fields = text.split()
    if len(fields) >= 3 and _NUMBER.fullmatch(fields[-2]) and _UNIT.fullmatch(fields[-1]):
        return " ".join(fields[:-2]), float(fields[-2]), fields[-1]
    return text.strip(), None, None


def reply_matches(request: bytes, reply: Reply) -> bool:
    """Whether a reply answers this request (a late reply to an earlier one does not)."""
    if isinstance(reply, ScaleError):
        return True
    sent = request.split(maxsplit=1)[0].decode("ascii")
    # SI and S are both answered with S; TI with T; ZI with Z.
    base = {"SI": "S", "TI": "T", "ZI": "Z"}.get(sent, sent)
    return reply.command in (sent, base)
