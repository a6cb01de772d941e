"""A serial device (a scale) is reached on a `[[buses]]` entry by its `bus`, and by nothing else.

MT-SICS has no addressing, so a line carries one scale. Per-device keg parameters (`params`,
when the venue config has them) must be ones the profile knows.
"""

from __future__ import annotations

from collections.abc import Mapping

from edge_agent.config.device_checks import DeviceCheckContext
from edge_agent.config.model import DeviceConfig
from firmware_profiles.schema import Profile
from firmware_profiles.sections.serial import PARAMETERS


def check_device(ctx: DeviceCheckContext, i: int, dev: DeviceConfig, profile: Profile) -> None:
    dec = ctx.dec
    ctx.unused(i, dev, ("host", "port", "address", "broker", "bindkey"), "serial")
    if dev.bus is None:
        dec.error(("devices", i), "a serial device needs 'bus' (the id of a [[buses]] entry)")
        return
    if dev.bus not in ctx.bus_ids:
        known = ", ".join(sorted(ctx.bus_ids)) or "none defined"
        dec.error(("devices", i, "bus"), f"undefined bus {dev.bus!r} (buses: {known})")
        return
    sharing = [j for j, d in enumerate(ctx.cfg.devices) if d.bus == dev.bus and j != i]
    if sharing:
        dec.error(
            ("devices", i, "bus"),
            f"a scale needs its line to itself; devices[{sharing[0]}] also uses bus {dev.bus!r}",
        )
    section = profile.serial
    if section is not None and dev.poll_interval_s < section.min_poll_interval_s:
        dec.error(
            ("devices", i, "poll_interval_s"),
            f"profile {profile.id!r} polls at most every {section.min_poll_interval_s:g} s",
        )
    params = getattr(dev, "params", None)
    if isinstance(params, Mapping) and params:
        if section is None or section.keg is None:
            dec.error(("devices", i, "params"), f"profile {profile.id!r} takes no parameters")
            return
        for key in params:
            if key not in PARAMETERS:
                dec.error(
                    ("devices", i, "params", key),
                    f"unknown parameter {key!r} (known: {', '.join(PARAMETERS)})",
                )
