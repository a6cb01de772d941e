"""A device profile: identity, transport, and the section that maps the device to points.

A profile file is data, not code: adding a device model is adding a file. The section's shape
belongs to its transport (`firmware_profiles/sections/<transport>.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from firmware_profiles.common import (
    IDENT,
    IDENT_HINT,
    SLUG,
    SLUG_HINT,
    Order,
    PointInfo,
    PointKind,
)
from firmware_profiles.sections.ble import BleSection
from firmware_profiles.sections.modbus import (
    BIT_TABLES,
    REGISTER_WIDTH,
    ModbusCommand,
    ModbusPoint,
    ModbusSection,
)
from firmware_profiles.sections.mqtt import MqttSection
from firmware_profiles.sections.opcua import OpcuaSection
from firmware_profiles.sections.serial import SerialSection

__all__ = [
    "BIT_TABLES",
    "IDENT",
    "IDENT_HINT",
    "REGISTER_WIDTH",
    "SLUG",
    "SLUG_HINT",
    "ModbusCommand",
    "ModbusPoint",
    "ModbusSection",
    "Order",
    "PointInfo",
    "PointKind",
    "Profile",
    "Transport",
]

Transport = Literal["modbus", "mqtt", "ble", "opcua", "serial"]
TRANSPORTS: tuple[str, ...] = ("modbus", "mqtt", "ble", "opcua", "serial")


@dataclass(frozen=True, slots=True)
class Profile:
    id: str = field(metadata={"pattern": SLUG, "pattern_hint": SLUG_HINT})
    vendor: str = field(metadata={"nonempty": True})
    model: str = field(metadata={"nonempty": True})
    transport: Transport
    firmware: str = "*"
    description: str = ""
    verification: Literal["mapped_unverified", "user_verified", "simulator_only"] = (
        "mapped_unverified"
    )
    modbus: ModbusSection | None = None
    mqtt: MqttSection | None = None
    ble: BleSection | None = None
    opcua: OpcuaSection | None = None
    serial: SerialSection | None = None

    def __post_init__(self) -> None:
        if getattr(self, self.transport) is None:
            raise ValueError(
                f"a {self.transport} profile needs a [{self.transport}] table with its points"
            )
        others = [t for t in TRANSPORTS if t != self.transport and getattr(self, t) is not None]
        if others:
            raise ValueError(f"a {self.transport} profile cannot have a [{others[0]}] table")

    @property
    def section(self) -> Any:
        return getattr(self, self.transport)

    @property
    def points(self) -> Sequence[PointInfo]:
        return tuple(self.section.points)
