"""The shape of a device profile: what every transport shares, and the Profile itself.

Each transport describes its own section (registers, topics, adverts, nodes, frames) in
`firmware_profiles/sections/<transport>.py`; a profile file has exactly the section of its
transport."""

from __future__ import annotations

from typing import Literal, Protocol

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
    "level",
    "program",
    "status",
]

Order = Literal["big", "little"]


class PointInfo(Protocol):
    """What every transport's point has, whatever else it carries."""

    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def unit(self) -> str: ...
