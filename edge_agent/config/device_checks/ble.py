"""A BLE device is addressed by its MAC; a bindkey only where the advert format is encrypted."""

from __future__ import annotations

import re

from edge_agent.config.device_checks import DeviceCheckContext
from edge_agent.config.model import DeviceConfig
from firmware_profiles.schema import Profile
from firmware_profiles.sections.ble import ENCRYPTED_DECODERS

MAC_RE = re.compile(r"[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}")
BINDKEY_RE = re.compile(r"[0-9A-Fa-f]{32}")


def check_device(ctx: DeviceCheckContext, i: int, dev: DeviceConfig, profile: Profile) -> None:
    dec = ctx.dec
    ctx.unused(i, dev, ("bus", "host", "port", "broker"), "BLE")
    if dev.address is None:
        dec.error(("devices", i), "a BLE device needs 'address', its MAC as AA:BB:CC:DD:EE:FF")
        return
    if not MAC_RE.fullmatch(dev.address):
        dec.error(
            ("devices", i, "address"),
            f"{dev.address!r} is not a MAC address like AA:BB:CC:DD:EE:FF",
        )
        return
    ctx.claim(("ble", dev.address.upper()), i, ("devices", i, "address"), "MAC address")
    section = profile.ble
    if dev.bindkey is None:
        if section is not None and section.encrypted:
            dec.error(("devices", i), f"profile {profile.id!r} is encrypted: add 'bindkey'")
        return
    if section is None or section.decoder not in ENCRYPTED_DECODERS:
        dec.error(
            ("devices", i, "bindkey"),
            f"profile {profile.id!r} uses an unencrypted advert format; remove 'bindkey'",
        )
    elif not BINDKEY_RE.fullmatch(dev.bindkey):
        # The key itself is a secret: never echo it back.
        dec.error(("devices", i, "bindkey"), "a bindkey is 32 hex characters (16 bytes)")
