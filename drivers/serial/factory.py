"""Serial services: one port link per `[[buses]]` entry, one coordinator per scale on it; each
scale's coordinator also executes its tare and zero commands."""

from __future__ import annotations

import random
from collections.abc import Mapping

from drivers.base import Devices, DriverContext
from drivers.serial.coordinator import PortLink, ScaleCoordinator
from drivers.serial.line import PortSettings, SerialLine
from edge_agent.config.model import DeviceConfig
from edge_agent.supervisor import Service


def device_params(dev: DeviceConfig) -> Mapping[str, float]:
    """Per-device overrides of profile parameters (keg tare, density), when the venue config
    carries them (`params` on a device); profile defaults otherwise."""
    params = getattr(dev, "params", None)
    return params if isinstance(params, Mapping) else {}


def _link_for(ctx: DriverContext, dev: DeviceConfig, max_line: int) -> PortLink:
    assert dev.bus is not None  # the config loader guarantees it
    links: dict[str, PortLink] = ctx.shared.setdefault("serial", {})
    if dev.bus not in links:
        bus = ctx.config.bus(dev.bus)
        assert bus is not None
        settings = PortSettings(bus.port, bus.baudrate, bus.parity, bus.stopbits, bus.bytesize)
        links[dev.bus] = PortLink(SerialLine(settings, ctx.clock, max_line), ctx.clock)
    return links[dev.bus]


def build(ctx: DriverContext, devices: Devices) -> list[Service]:
    services = []
    for dev, profile in devices:
        assert profile.serial is not None
        coord = ScaleCoordinator(
            dev,
            profile,
            _link_for(ctx, dev, profile.serial.max_line_bytes),
            ctx.bus,
            ctx.clock,
            ctx.health.register(dev.id, "serial"),
            params=device_params(dev),
            rng=random.Random(dev.id),
        )
        if profile.serial.commands:
            ctx.commanders[dev.id] = coord
        services.append(Service(f"device:{dev.id}", coord.run, restart=True))
    return services
