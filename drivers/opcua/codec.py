"""Pure OPC-UA value handling: raw variant values in, typed point values out; command arguments
checked against the profile before anything is sent. No sockets, clocks or loggers here."""

from __future__ import annotations

import enum
import math
import uuid
from datetime import UTC, datetime
from typing import Any

from asyncua import ua

from drivers.errors import CodecError, CommandRejected
from edge_agent.messages import Value
from firmware_profiles.sections.opcua import ArgType, OpcuaArg, OpcuaCommand, OpcuaPoint

MAX_TEXT = 1024

INT_RANGES: dict[str, tuple[int, int]] = {
    "int16": (-(2**15), 2**15 - 1),
    "uint16": (0, 2**16 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint64": (0, 2**64 - 1),
    "sbyte": (-128, 127),
    "byte": (0, 255),
}
FLOAT_TYPES = frozenset({"float", "double"})
# SQLite stores integers as signed 64-bit: a UInt64 above that is published as a float.
_INT64 = INT_RANGES["int64"]
# OPC-UA's DateTime zero (1601-01-01) and anything before 1970 mean "no time".
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_BYTES = MAX_TEXT // 2


def scalar(name: str, raw: Any) -> Any:
    """A built-in OPC-UA scalar as a plain Python value the point rules apply to.

    LocalizedText → its text, QualifiedName → its name, DateTime → unix seconds, an
    enumeration → its integer value, ByteString → lower-case hex, Guid → its text form,
    NodeId → its string form. Other values pass through unchanged."""
    if isinstance(raw, ua.LocalizedText):
        if raw.Text is None:
            raise CodecError(f"{name}: localized text without text")
        return raw.Text
    if isinstance(raw, ua.QualifiedName):
        if raw.Name is None:
            raise CodecError(f"{name}: qualified name without a name")
        return raw.Name
    if isinstance(raw, datetime):
        aware = raw if raw.tzinfo is not None else raw.replace(tzinfo=UTC)
        if aware <= _EPOCH:
            raise CodecError(f"{name}: no time (DateTime {raw.isoformat()})")
        return aware.timestamp()
    if isinstance(raw, enum.Enum) and not isinstance(raw, bool):
        value = raw.value
        if isinstance(value, bool) or not isinstance(value, int):
            raise CodecError(f"{name}: enumeration {type(raw).__name__} is not integer-valued")
        return value
    if isinstance(raw, bytes | bytearray):
        if len(raw) > MAX_BYTES:
            raise CodecError(f"{name}: byte string longer than {MAX_BYTES} bytes")
        return bytes(raw).hex()
    if isinstance(raw, uuid.UUID):
        return str(raw)
    if isinstance(raw, ua.NodeId):
        return raw.to_string()
    return raw


def decode_value(point: OpcuaPoint, raw: Any) -> Value:
    """The value a point publishes for one raw variant value; CodecError when it does not fit."""
    if raw is None:
        raise CodecError(f"{point.name}: no value")
    raw = scalar(point.name, raw)
    if point.enum:
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise CodecError(f"{point.name}: enum value must be an integer, got {_kind(raw)}")
        name = point.enum.get(str(raw))
        if name is None:
            raise CodecError(f"{point.name}: {raw} is not one of the profile's enum values")
        return name
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int | float):
        if isinstance(raw, float) and not math.isfinite(raw):
            raise CodecError(f"{point.name}: not a finite number ({raw})")
        if isinstance(raw, int) and point.scale == 1.0 and point.offset == 0.0:
            return raw if _INT64[0] <= raw <= _INT64[1] else float(raw)
        value = float(raw) * point.scale + point.offset
        if not math.isfinite(value):
            raise CodecError(f"{point.name}: scaled value overflows")
        return round(value, 6)
    if isinstance(raw, str):
        if len(raw) > MAX_TEXT:
            raise CodecError(f"{point.name}: text longer than {MAX_TEXT} characters")
        return raw
    raise CodecError(f"{point.name}: unsupported value type {_kind(raw)}")


def _kind(raw: Any) -> str:
    return type(raw).__name__


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CommandRejected(f"{name} must be a number (got {_kind(value)})")
    if not math.isfinite(value):
        raise CommandRejected(f"{name} must be a finite number")
    return float(value)


def _in_range(name: str, value: float, lo: float | None, hi: float | None) -> None:
    if lo is not None and value < lo:
        raise CommandRejected(f"{name} {value:g} is below the minimum {lo:g}")
    if hi is not None and value > hi:
        raise CommandRejected(f"{name} {value:g} is above the maximum {hi:g}")


def write_value(command: OpcuaCommand, point: OpcuaPoint, args: dict[str, Value]) -> Value:
    """The engineering value a write command asks for, range-checked (arg 'value')."""
    extra = set(args) - {"value"}
    if extra:
        raise CommandRejected(f"unexpected argument(s): {', '.join(sorted(extra))}")
    if "value" not in args:
        raise CommandRejected("missing argument 'value'")
    value = args["value"]
    if isinstance(value, bool):
        if command.min is not None or command.max is not None:
            raise CommandRejected("value must be a number")
        return value
    if point.enum:
        if not isinstance(value, str) or value not in point.enum.values():
            allowed = ", ".join(point.enum.values())
            raise CommandRejected(f"value must be one of {allowed}")
        return value
    number = _number("value", value)
    _in_range("value", number, command.min, command.max)
    return number


def raw_for_node(point: OpcuaPoint, value: Value, variant: str) -> Any:
    """Convert an engineering value to what the node's data type holds (reverse scale/enum).

    `variant` is the node's VariantType name, lower case ("double", "int32", "boolean", ...).
    """
    if point.enum:
        reverse = {v: int(k) for k, v in point.enum.items()}
        if not isinstance(value, str) or value not in reverse:
            raise CommandRejected(f"{value!r} is not one of the enum values")
        value = reverse[value]
    if variant == "boolean":
        if not isinstance(value, bool):
            raise CommandRejected(f"{point.name} holds true/false")
        return value
    if isinstance(value, str):
        if variant != "string":
            raise CommandRejected(f"{point.name} holds a {variant}, not text")
        return value
    number = (float(value) - point.offset) / point.scale
    if variant in FLOAT_TYPES:
        return number
    if variant in INT_RANGES:
        rounded = round(number)
        if abs(rounded - number) > 1e-6:
            raise CommandRejected(f"{point.name} holds whole numbers ({variant})")
        lo, hi = INT_RANGES[variant]
        if not lo <= rounded <= hi:
            raise CommandRejected(f"{rounded} does not fit the node's {variant}")
        return rounded
    raise CommandRejected(f"cannot write a {variant} node")


def call_args(command: OpcuaCommand, args: dict[str, Value]) -> list[tuple[Any, ArgType]]:
    """A method command's arguments in the profile's order, each type- and range-checked."""
    extra = set(args) - {a.name for a in command.args}
    if extra:
        raise CommandRejected(f"unexpected argument(s): {', '.join(sorted(extra))}")
    return [(_arg(a, args), a.type) for a in command.args]


def _text_arg(spec: OpcuaArg, value: Value) -> str:
    """Text a person typed: what the device will show, so no control characters; one of the
    profile's choices when it lists them."""
    if not isinstance(value, str):
        raise CommandRejected(f"{spec.name} must be text")
    if spec.choices:
        if value not in spec.choices:
            raise CommandRejected(f"{spec.name} must be one of {', '.join(spec.choices)}")
        return value
    if not value.strip():
        raise CommandRejected(f"{spec.name} must not be empty")
    if len(value) > spec.max_length:
        raise CommandRejected(f"{spec.name} is longer than {spec.max_length} characters")
    if any(not ch.isprintable() for ch in value):
        raise CommandRejected(f"{spec.name} contains control characters")
    return value


def _enum_arg(spec: OpcuaArg, value: Value) -> Value:
    """A name from the profile's enum (or its integer) as the integer the device takes."""
    names = ", ".join(spec.enum.values())
    if isinstance(value, str):
        by_name = {label: int(key) for key, label in spec.enum.items()}
        if value not in by_name:
            raise CommandRejected(f"{spec.name} must be one of {names}")
        return by_name[value]
    if isinstance(value, int) and not isinstance(value, bool) and str(value) not in spec.enum:
        raise CommandRejected(f"{spec.name} must be one of {names}")
    return value


def _arg(spec: OpcuaArg, args: dict[str, Value]) -> Any:
    if spec.name not in args:
        raise CommandRejected(f"missing argument {spec.name!r}")
    value = args[spec.name]
    if spec.type == "string":
        return _text_arg(spec, value)
    if spec.enum:
        value = _enum_arg(spec, value)
    if spec.type == "bool":
        if not isinstance(value, bool):
            raise CommandRejected(f"{spec.name} must be true or false")
        return value
    number = _number(spec.name, value)
    _in_range(spec.name, number, spec.min, spec.max)
    if spec.type in FLOAT_TYPES:
        return number
    if number != int(number):
        raise CommandRejected(f"{spec.name} must be a whole number")
    lo, hi = INT_RANGES[spec.type]
    if not lo <= int(number) <= hi:
        raise CommandRejected(f"{spec.name} does not fit a {spec.type}")
    return int(number)
