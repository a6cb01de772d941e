"""The shape of a device profile. A profile maps a device's registers (later: nodes, adverts,
topics, serial frames) to semantic points and typed commands."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

IDENT = r"[a-z][a-z0-9_]*"
SLUG = r"[a-z0-9][a-z0-9._-]*"
IDENT_HINT = "lower-case letters, digits and _ starting with a letter"
SLUG_HINT = "lower-case letters, digits, '.', '_' and '-'"

PointKind = Literal[
    "temperature",
    "setpoint",
    "humidity",
    "door_open",
    "defrost_active",
    "compressor_on",
    "fan_on",
    "alarm",
    "running",
    "weight",
    "power",
    "energy",
    "voltage",
    "current",
    "frequency",
    "power_factor",
    "battery",
    "rssi",
    "volume",
    "mode",
    "duration",
    "counter",
    "state",
]

Table = Literal["holding", "input", "coil", "discrete"]
RegisterType = Literal["int16", "uint16", "int32", "uint32", "float32", "bool"]
Order = Literal["big", "little"]

REGISTER_WIDTH: dict[str, int] = {
    "int16": 1,
    "uint16": 1,
    "int32": 2,
    "uint32": 2,
    "float32": 2,
    "bool": 1,
}
BIT_TABLES = frozenset({"coil", "discrete"})


@dataclass(frozen=True, slots=True)
class ModbusPoint:
    name: str = field(metadata={"pattern": IDENT, "pattern_hint": IDENT_HINT})
    kind: PointKind
    table: Table
    address: int = field(metadata={"min": 0, "max": 65535})
    type: RegisterType = "int16"
    scale: float = 1.0
    offset: float = 0.0
    unit: str = ""
    word_order: Order | None = None
    writable: bool = False
    description: str = ""

    def __post_init__(self) -> None:
        if self.table in BIT_TABLES and self.type != "bool":
            raise ValueError(f"a {self.table} point must have type 'bool' (got {self.type!r})")
        if self.table not in BIT_TABLES and self.type == "bool":
            raise ValueError(
                "type 'bool' is only for coil/discrete tables; "
                "a register flag is a uint16 with kind 'state'"
            )
        if self.writable and self.table not in ("holding", "coil"):
            raise ValueError(f"only holding registers and coils can be written, not {self.table}")
        if self.address + REGISTER_WIDTH[self.type] - 1 > 65535:
            raise ValueError("point runs past register 65535")

    @property
    def width(self) -> int:
        return REGISTER_WIDTH[self.type]


@dataclass(frozen=True, slots=True)
class ModbusCommand:
    """A typed write: the argument is range-checked, scaled like the point, then written."""

    name: str = field(metadata={"pattern": IDENT, "pattern_hint": IDENT_HINT})
    point: str
    min: float | None = None
    max: float | None = None
    readback: bool = True
    description: str = ""


@dataclass(frozen=True, slots=True)
class ModbusSection:
    points: tuple[ModbusPoint, ...] = field(metadata={"nonempty": True})
    commands: tuple[ModbusCommand, ...] = ()
    max_registers_per_read: int = field(default=32, metadata={"min": 1, "max": 125})
    max_bits_per_read: int = field(default=64, metadata={"min": 1, "max": 2000})
    max_gap: int = field(default=8, metadata={"min": 0, "max": 100})
    byte_order: Order = "big"
    word_order: Order = "big"
    timeout_s: float = field(default=1.0, metadata={"min": 0.05, "max": 30})
    min_write_interval_s: float = field(default=1.0, metadata={"min": 0, "max": 3600})
    default_baudrate: int | None = None
    default_parity: Literal["N", "E", "O"] | None = None


@dataclass(frozen=True, slots=True)
class Profile:
    id: str = field(metadata={"pattern": SLUG, "pattern_hint": SLUG_HINT})
    vendor: str = field(metadata={"nonempty": True})
    model: str = field(metadata={"nonempty": True})
    transport: Literal["modbus"]
    firmware: str = "*"
    description: str = ""
    verification: Literal["mapped_unverified", "user_verified", "simulator_only"] = (
        "mapped_unverified"
    )
    modbus: ModbusSection | None = None

    def __post_init__(self) -> None:
        if self.transport == "modbus" and self.modbus is None:
            raise ValueError("a modbus profile needs a [modbus] table with its points")

    @property
    def points(self) -> tuple[ModbusPoint, ...]:
        return self.modbus.points if self.modbus is not None else ()
