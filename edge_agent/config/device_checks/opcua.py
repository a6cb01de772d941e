"""An OPC-UA device is reached at an endpoint URL, `opc.tcp://host:port/path`, optionally ending
in `#ObjectName` to pick one device object when a server exposes several."""

from __future__ import annotations

from edge_agent.config.device_checks import DeviceCheckContext
from edge_agent.config.model import DeviceConfig
from edge_agent.config.opcua_address import parse_address
from firmware_profiles.schema import Profile


def check_device(ctx: DeviceCheckContext, i: int, dev: DeviceConfig, profile: Profile) -> None:
    ctx.unused(i, dev, ("bus", "host", "port", "broker", "bindkey"), "OPC-UA")
    if dev.address is None:
        ctx.dec.error(
            ("devices", i),
            "an OPC-UA device needs 'address' = \"opc.tcp://host:port/path\"",
        )
        return
    try:
        addr = parse_address(dev.address)
    except ValueError as exc:
        ctx.dec.error(("devices", i, "address"), f"{dev.address!r}: {exc}")
        return
    ctx.claim(("opcua", addr.url, addr.object_name), i, ("devices", i, "address"), "address")
