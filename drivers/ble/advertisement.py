"""One received advertisement, as the driver and the decoders see it (no bleak types)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Advertisement:
    address: str
    rssi: int
    name: str = ""
    # company id -> payload; service UUID (full, lower case) -> payload
    manufacturer_data: dict[int, bytes] = field(default_factory=dict)
    service_data: dict[str, bytes] = field(default_factory=dict)
    service_uuids: tuple[str, ...] = ()
