"""The Modbus section of a profile: registers and coils mapped to points, typed writes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from edge_agent.toml_lines import Path
from edge_agent.typed_toml import Decoder
from firmware_profiles.checks import unique_names
from firmware_profiles.common import IDENT, IDENT_HINT, Order, PointKind

Table = Literal["holding", "input", "coil", "discrete"]
RegisterType = Literal["int16", "uint16", "int32", "uint32", "float32", "bool"]
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

    @property
    def where(self) -> str:
        scale = f" x{self.scale:g}" if self.scale != 1 else ""
        return f"{self.table} {self.address} {self.type}{scale}{' rw' if self.writable else ''}"


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


def check_section(section: ModbusSection, dec: Decoder, path: Path) -> None:
    """Cross-field checks: unique names, no overlapping registers, commands on writable points."""
    unique_names(section.points, dec, (*path, "points"))
    for i, p in enumerate(section.points):
        if p.table not in BIT_TABLES and p.width > section.max_registers_per_read:
            dec.error((*path, "points", i, "type"), "wider than max_registers_per_read")
    occupied: dict[tuple[str, int], str] = {}
    for i, p in enumerate(section.points):
        for a in range(p.address, p.address + p.width):
            other = occupied.get((p.table, a))
            if other is not None:
                dec.error(
                    (*path, "points", i, "address"),
                    f"{p.table} register {a} is already used by point {other!r}",
                )
                break
            occupied[(p.table, a)] = p.name
    by_name = {p.name: p for p in section.points}
    for i, c in enumerate(section.commands):
        target = by_name.get(c.point)
        if target is None:
            dec.error((*path, "commands", i, "point"), f"no point named {c.point!r}")
        elif not target.writable:
            dec.error((*path, "commands", i, "point"), f"point {c.point!r} is not writable")
        if c.min is not None and c.max is not None and c.min > c.max:
            dec.error((*path, "commands", i, "min"), "min is greater than max")
