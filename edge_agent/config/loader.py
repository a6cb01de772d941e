"""Load a venue config: parse, decode, cross-check, resolve paths. All errors at once."""

from __future__ import annotations

import dataclasses
import os
import zoneinfo
from pathlib import Path
from typing import Any

from edge_agent.config.model import VenueConfig
from edge_agent.config.typed_toml import INVALID, Decoder, parse_toml, read_text
from edge_agent.errors import Issue, ValidationError
from firmware_profiles.loader import ProfileLibrary, load_library


def load_config(file: str, library: ProfileLibrary | None = None) -> VenueConfig:
    """The config, or ValidationError listing every problem with its file, line and field."""
    text = read_text(file)
    return load_config_text(text, file, library)


def load_config_text(text: str, file: str, library: ProfileLibrary | None = None) -> VenueConfig:
    data, lines = parse_toml(text, file)
    dec = Decoder(file, lines)
    cfg = dec.decode_dataclass(VenueConfig, _without_source(data, dec), ())
    base = Path(file).resolve().parent
    if library is None:
        dirs = _profile_dirs(data, base)
        try:
            library = load_library(dirs)
        except ValidationError as exc:
            dec.issues.extend(exc.issues)
            library = ProfileLibrary({}, {})
    if cfg is not INVALID:
        _cross_check(cfg, dec, library)
    if dec.issues:
        raise ValidationError(dec.issues)
    return _resolve_paths(cfg, base, file)


def _without_source(data: dict[str, Any], dec: Decoder) -> dict[str, Any]:
    if "source" in data:
        dec.error(("source",), "unknown key")
        data = {k: v for k, v in data.items() if k != "source"}
    return data


def _profile_dirs(data: dict[str, Any], base: Path) -> list[Path]:
    section = data.get("profiles")
    dirs = section.get("dirs") if isinstance(section, dict) else None
    if not isinstance(dirs, list):
        return []
    return [base / d for d in dirs if isinstance(d, str)]


def _cross_check(cfg: VenueConfig, dec: Decoder, library: ProfileLibrary) -> None:
    try:
        zoneinfo.ZoneInfo(cfg.venue.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        dec.error(("venue", "timezone"), f"unknown time zone {cfg.venue.timezone!r}")

    bus_ids: dict[str, int] = {}
    for i, bus in enumerate(cfg.buses):
        if bus.id in bus_ids:
            dec.error(
                ("buses", i, "id"),
                f"duplicate bus id {bus.id!r} (first at buses[{bus_ids[bus.id]}])",
            )
        bus_ids.setdefault(bus.id, i)
    ports: dict[str, int] = {}
    for i, bus in enumerate(cfg.buses):
        if bus.port in ports:
            dec.error(
                ("buses", i, "port"),
                f"serial port {bus.port!r} is already buses[{ports[bus.port]}]",
            )
        ports.setdefault(bus.port, i)

    dev_ids: dict[str, int] = {}
    endpoints: dict[tuple[Any, ...], int] = {}
    for i, dev in enumerate(cfg.devices):
        if dev.id in dev_ids:
            dec.error(
                ("devices", i, "id"),
                f"duplicate device id {dev.id!r} (first at devices[{dev_ids[dev.id]}])",
            )
        dev_ids.setdefault(dev.id, i)
        profile = library.get(dev.profile)
        if profile is None:
            dec.error(
                ("devices", i, "profile"),
                f"unknown profile {dev.profile!r}{library.suggest(dev.profile)}",
            )
            continue
        if profile.transport == "modbus":
            endpoint = _check_modbus_device(cfg, dec, i, bus_ids)
            if endpoint is not None:
                if endpoint in endpoints:
                    dec.error(
                        ("devices", i, "unit_id"),
                        f"devices[{endpoints[endpoint]}] already uses this address and unit id",
                    )
                endpoints.setdefault(endpoint, i)


def _check_modbus_device(
    cfg: VenueConfig, dec: Decoder, i: int, bus_ids: dict[str, int]
) -> tuple[Any, ...] | None:
    dev = cfg.devices[i]
    if (dev.bus is None) == (dev.host is None):
        dec.error(
            ("devices", i), "a Modbus device needs exactly one of 'bus' (RTU) or 'host' (TCP)"
        )
        return None
    if dev.unit_id == 0:
        dec.error(("devices", i, "unit_id"), "unit id 0 is broadcast; use 1-247")
        return None
    if dev.bus is not None:
        if dev.bus not in bus_ids:
            known = ", ".join(sorted(bus_ids)) or "none defined"
            dec.error(("devices", i, "bus"), f"undefined bus {dev.bus!r} (buses: {known})")
            return None
        bus = cfg.buses[bus_ids[dev.bus]]
        if bus.bytesize != 8:
            dec.error(
                ("buses", bus_ids[dev.bus], "bytesize"),
                f"Modbus RTU needs 8 data bits (device {dev.id!r} uses this bus)",
            )
        if dev.port is not None:
            dec.error(("devices", i, "port"), "'port' is for Modbus TCP; an RTU device has 'bus'")
        return ("bus", dev.bus, dev.unit_id)
    return ("tcp", dev.host, dev.port or 502, dev.unit_id)


def _resolve_paths(cfg: VenueConfig, base: Path, file: str) -> VenueConfig:
    def resolve(p: str) -> str:
        return p if os.path.isabs(p) else str(base / p)

    storage = dataclasses.replace(cfg.storage, path=resolve(cfg.storage.path))
    api = dataclasses.replace(cfg.api, socket=resolve(cfg.api.socket))
    profiles = dataclasses.replace(cfg.profiles, dirs=tuple(resolve(d) for d in cfg.profiles.dirs))
    return dataclasses.replace(
        cfg, storage=storage, api=api, profiles=profiles, source=str(Path(file).resolve())
    )


def issues_of(exc: ValidationError) -> list[Issue]:
    return list(exc.issues)
