"""Addressing checks for ble devices."""

from __future__ import annotations

from edge_agent.config.device_checks import DeviceCheckContext
from edge_agent.config.model import DeviceConfig
from firmware_profiles.schema import Profile


def check_device(ctx: DeviceCheckContext, i: int, dev: DeviceConfig, profile: Profile) -> None:
    if dev.address is None and dev.bus is None:
        ctx.dec.error(("devices", i), "missing 'address'")
