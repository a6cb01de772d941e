"""The serial section of a profile. (Placeholder shape: the serial driver defines the real one.)"""

from __future__ import annotations

from dataclasses import dataclass, field

from edge_agent.config.toml_lines import Path
from edge_agent.config.typed_toml import Decoder
from firmware_profiles.common import IDENT, IDENT_HINT, PointKind


@dataclass(frozen=True, slots=True)
class SerialPoint:
    name: str = field(metadata={"pattern": IDENT, "pattern_hint": IDENT_HINT})
    kind: PointKind
    unit: str = ""


@dataclass(frozen=True, slots=True)
class SerialSection:
    points: tuple[SerialPoint, ...] = field(metadata={"nonempty": True})


def check_section(section: SerialSection, dec: Decoder, path: Path) -> None:
    seen: set[str] = set()
    for i, p in enumerate(section.points):
        if p.name in seen:
            dec.error((*path, "points", i, "name"), f"duplicate point name {p.name!r}")
        seen.add(p.name)
