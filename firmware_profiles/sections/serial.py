"""The serial section of a profile: a line protocol on an RS-232/RS-485 port, mapped to points.

Only MT-SICS (Mettler Toledo's Standard Interface Command Set, also spoken by many other
indicators) exists today; `protocol` is a Literal so a new line protocol is a new value plus a
codec, and every profile states which one it speaks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from edge_agent.toml_lines import Path
from edge_agent.typed_toml import Decoder
from firmware_profiles.checks import unique_names
from firmware_profiles.common import IDENT, IDENT_HINT, PointKind

Protocol = Literal["mt-sics"]
# S waits for a stable weight (a settling scale may not answer before the timeout); SI answers
# at once with the current weight flagged stable or dynamic, which is what a poller wants.
Request = Literal["SI", "S"]
Source = Literal["weight", "stable", "overload", "underload", "litres_remaining", "pouring"]
Action = Literal["tare", "zero", "tare_immediate", "zero_immediate"]

# Mass units a weight point may be published in (the scale's unit is converted).
MASS_UNITS: dict[str, float] = {"mg": 1e-6, "g": 1e-3, "kg": 1.0, "t": 1e3, "lb": 0.45359237}
MASS_UNITS["oz"] = MASS_UNITS["lb"] / 16
SOURCE_KIND: dict[str, tuple[str, ...]] = {
    "weight": ("weight",),
    "stable": ("state", "status"),
    "overload": ("alarm", "state"),
    "underload": ("alarm", "state"),
    "litres_remaining": ("volume", "level"),
    "pouring": ("state", "running"),
}
PARAMETERS = ("keg_tare_kg", "density_kg_per_l", "capacity_l")


@dataclass(frozen=True, slots=True)
class SerialPoint:
    name: str = field(metadata={"pattern": IDENT, "pattern_hint": IDENT_HINT})
    kind: PointKind
    source: Source
    unit: str = ""
    # Round published values; a weight is always kept to the scale's own resolution.
    decimals: int | None = field(default=None, metadata={"min": 0, "max": 6})
    description: str = ""

    def __post_init__(self) -> None:
        if self.kind not in SOURCE_KIND[self.source]:
            allowed = " or ".join(repr(k) for k in SOURCE_KIND[self.source])
            raise ValueError(f"a {self.source} point must have kind {allowed}")
        if self.source == "weight" and self.unit not in MASS_UNITS:
            raise ValueError(f"a weight point needs a mass unit ({', '.join(MASS_UNITS)})")
        if self.source == "litres_remaining" and self.unit != "L":
            raise ValueError("a litres_remaining point has unit 'L'")
        if self.source in ("stable", "overload", "underload", "pouring") and self.unit:
            raise ValueError(f"a {self.source} point is a flag and has no unit")

    @property
    def where(self) -> str:
        return self.source


@dataclass(frozen=True, slots=True)
class SerialCommand:
    """A command staff or rules can send (tare, zero); it takes no arguments."""

    name: str = field(metadata={"pattern": IDENT, "pattern_hint": IDENT_HINT})
    action: Action
    description: str = ""


@dataclass(frozen=True, slots=True)
class KegParameters:
    """Defaults for a keg on the platform; a device's `params` override them per keg.

    litres = (gross - keg_tare_kg) / density_kg_per_l, gross being what the platform weighs
    (the platform itself zeroed out)."""

    keg_tare_kg: float = field(metadata={"min": 0, "max": 200})
    density_kg_per_l: float = field(default=1.01, metadata={"min": 0.5, "max": 2.0})
    capacity_l: float | None = field(default=None, metadata={"min": 1, "max": 1000})
    # A drop of this much between two polls counts as a pour.
    pour_threshold_kg: float = field(default=0.02, metadata={"min": 0.001, "max": 10})


@dataclass(frozen=True, slots=True)
class SerialSection:
    points: tuple[SerialPoint, ...] = field(metadata={"nonempty": True})
    protocol: Protocol = "mt-sics"
    request: Request = "SI"
    commands: tuple[SerialCommand, ...] = ()
    keg: KegParameters | None = None
    # A scale's display updates a few times a second; polling faster only loads the line.
    min_poll_interval_s: float = field(default=0.2, metadata={"min": 0.05, "max": 3600})
    timeout_s: float = field(default=1.0, metadata={"min": 0.05, "max": 30})
    # Tare and zero wait for the weight to settle, which takes seconds on a busy bar.
    command_timeout_s: float = field(default=5.0, metadata={"min": 0.1, "max": 60})
    default_baudrate: int | None = None
    max_line_bytes: int = field(default=128, metadata={"min": 16, "max": 4096})


def check_section(section: SerialSection, dec: Decoder, path: Path) -> None:
    """Cross-field checks: unique names, keg points need keg parameters, sane timeouts."""
    unique_names(section.points, dec, (*path, "points"))
    for i, p in enumerate(section.points):
        if p.source in ("litres_remaining", "pouring") and section.keg is None:
            dec.error(
                (*path, "points", i, "source"),
                f"a {p.source} point needs a [{path[-1]}.keg] table (keg_tare_kg, density)",
            )
    if not any(p.source == "weight" for p in section.points):
        dec.error((*path, "points"), "a scale profile needs a point with source 'weight'")
    names: dict[str, int] = {}
    for i, c in enumerate(section.commands):
        if c.name in names:
            dec.error((*path, "commands", i, "name"), f"duplicate command name {c.name!r}")
        names.setdefault(c.name, i)
    if section.command_timeout_s < section.timeout_s:
        dec.error((*path, "command_timeout_s"), "must not be shorter than timeout_s")
    if section.keg is not None and section.keg.capacity_l is not None:
        keg = section.keg
        assert keg.capacity_l is not None
        if keg.capacity_l * keg.density_kg_per_l + keg.keg_tare_kg > 500:
            dec.error((*path, "keg", "capacity_l"), "a full keg this heavy is not a keg")
