"""From configured devices to supervised services: one factory module per transport.

`drivers.<transport>.factory.build(ctx, devices)` receives every enabled device of its
transport at once (so it can share a broker connection, a serial line or the BLE scanner) and
returns the services the supervisor should run.
"""

from __future__ import annotations

import importlib

from drivers.base import DriverContext
from edge_agent.config.model import DeviceConfig
from edge_agent.supervisor import Service
from firmware_profiles.schema import Profile


def build_services(
    ctx: DriverContext, devices: list[tuple[DeviceConfig, Profile]]
) -> list[Service]:
    by_transport: dict[str, list[tuple[DeviceConfig, Profile]]] = {}
    for dev, profile in devices:
        if dev.enabled:
            by_transport.setdefault(profile.transport, []).append((dev, profile))
    services: list[Service] = []
    if any(b.auto_devices for b in ctx.config.brokers):
        by_transport.setdefault("mqtt", [])  # devices that appear by themselves
    for transport in sorted(by_transport):
        module = importlib.import_module(f"drivers.{transport}.factory")
        services += module.build(ctx, by_transport[transport])
    return services
