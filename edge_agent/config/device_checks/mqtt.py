"""An MQTT device is reached through a configured `broker`, by its `address` (the device id or
topic name that fills `{device}` in its profile's topics)."""

from __future__ import annotations

from edge_agent.config.device_checks import DeviceCheckContext
from edge_agent.config.model import DeviceConfig
from firmware_profiles.schema import Profile


def check_device(ctx: DeviceCheckContext, i: int, dev: DeviceConfig, profile: Profile) -> None:
    dec = ctx.dec
    ctx.unused(i, dev, ("bus", "host", "port", "bindkey"), "MQTT")
    if dev.broker is None:
        known = ", ".join(sorted(ctx.broker_ids)) or "none defined"
        dec.error(("devices", i), f"an MQTT device needs 'broker' (brokers: {known})")
    elif dev.broker not in ctx.broker_ids:
        known = ", ".join(sorted(ctx.broker_ids)) or "none defined"
        dec.error(("devices", i, "broker"), f"undefined broker {dev.broker!r} (brokers: {known})")
    if dev.address is None:
        dec.error(("devices", i), "an MQTT device needs 'address' (its device id or topic name)")
        return
    if (
        not dev.address.strip()
        or any(c in dev.address for c in "+#\0")
        or dev.address.startswith("/")
    ):
        dec.error(
            ("devices", i, "address"),
            "must be a device id or topic name without MQTT wildcards (+, #) or a leading '/'",
        )
        return
    if dev.broker is not None:
        ctx.claim(
            ("mqtt", dev.broker, dev.address), i, ("devices", i, "address"), "broker and address"
        )
