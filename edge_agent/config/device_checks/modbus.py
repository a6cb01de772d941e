"""A Modbus device is reached over TCP (`host`, `port`) or on an RS-485 `bus`, by unit id."""

from __future__ import annotations

from edge_agent.config.device_checks import DeviceCheckContext
from edge_agent.config.model import DeviceConfig
from firmware_profiles.schema import Profile


def check_device(ctx: DeviceCheckContext, i: int, dev: DeviceConfig, profile: Profile) -> None:
    dec = ctx.dec
    ctx.unused(i, dev, ("address", "broker", "bindkey"), "Modbus")
    if (dev.bus is None) == (dev.host is None):
        dec.error(
            ("devices", i), "a Modbus device needs exactly one of 'bus' (RTU) or 'host' (TCP)"
        )
        return
    if dev.unit_id == 0:
        dec.error(("devices", i, "unit_id"), "unit id 0 is broadcast; use 1-247")
        return
    if dev.bus is None:
        ctx.claim(
            ("modbus-tcp", dev.host, dev.port or 502, dev.unit_id),
            i,
            ("devices", i, "unit_id"),
            "address and unit id",
        )
        return
    if dev.bus not in ctx.bus_ids:
        known = ", ".join(sorted(ctx.bus_ids)) or "none defined"
        dec.error(("devices", i, "bus"), f"undefined bus {dev.bus!r} (buses: {known})")
        return
    bus_index = ctx.bus_ids[dev.bus]
    if ctx.cfg.buses[bus_index].bytesize != 8:
        dec.error(
            ("buses", bus_index, "bytesize"),
            f"Modbus RTU needs 8 data bits (device {dev.id!r} uses this bus)",
        )
    if dev.port is not None:
        dec.error(("devices", i, "port"), "'port' is for Modbus TCP; an RTU device has 'bus'")
    ctx.claim(("modbus-rtu", dev.bus, dev.unit_id), i, ("devices", i, "unit_id"), "bus and unit id")
