"""Per-transport checks of a device's addressing, one module per transport.

The loader calls `edge_agent.config.device_checks.<transport>.check_device(ctx, i, device,
profile)` for every device; each reports problems through `ctx.dec.error(path, message)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edge_agent.config.model import VenueConfig
from edge_agent.typed_toml import Decoder


@dataclass
class DeviceCheckContext:
    cfg: VenueConfig
    dec: Decoder
    bus_ids: dict[str, int]
    broker_ids: dict[str, int]
    # Addresses already taken, per transport, so two devices cannot claim one.
    taken: dict[tuple[Any, ...], int] = field(default_factory=dict)

    def claim(self, key: tuple[Any, ...], i: int, path: tuple[str | int, ...], what: str) -> None:
        if key in self.taken:
            self.dec.error(path, f"devices[{self.taken[key]}] already uses this {what}")
        else:
            self.taken[key] = i

    def unused(self, i: int, dev: Any, fields: tuple[str, ...], transport: str) -> None:
        """Fields another transport uses must not be set: they would be silently ignored."""
        for f in fields:
            if getattr(dev, f) is not None:
                self.dec.error(("devices", i, f), f"'{f}' is not used by a {transport} device")
