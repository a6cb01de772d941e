"""Load a venue config: parse, decode, cross-check, resolve paths. All errors at once."""

from __future__ import annotations

import dataclasses
import importlib
import ipaddress
import os
import zoneinfo
from pathlib import Path
from typing import Any

from edge_agent.config.device_checks import DeviceCheckContext
from edge_agent.config.model import VenueConfig
from edge_agent.errors import Issue, ValidationError
from edge_agent.staff import PinHashError, parse_pin_hash
from edge_agent.typed_toml import INVALID, Decoder, parse_toml, read_text
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

    explicit_quota = cfg.cloud.outbox_quota_mb if cfg.cloud is not None else None
    if explicit_quota is not None and explicit_quota >= cfg.storage.disk_quota_mb:
        dec.error(
            ("cloud", "outbox_quota_mb"),
            f"must be below storage.disk_quota_mb ({cfg.storage.disk_quota_mb})",
        )

    api = cfg.api
    if api.tcp_port is not None and not _loopback(api.tcp_host) and not api.allow_remote:
        dec.error(
            ("api", "tcp_host"),
            f"{api.tcp_host!r} is not a loopback address: the local API takes staff PINs; "
            "set allow_remote = true in [api] to listen there anyway",
        )

    bus_ids = _index_unique(dec, "buses", [b.id for b in cfg.buses], "id", "bus id")
    _index_unique(dec, "buses", [b.port for b in cfg.buses], "port", "serial port")
    broker_ids = _index_unique(dec, "brokers", [b.id for b in cfg.brokers], "id", "broker id")
    _index_unique(dec, "staff", [m.id for m in cfg.staff], "id", "staff id")
    ha = cfg.home_assistant
    if ha is not None and ha.broker not in broker_ids:
        dec.error(
            ("home_assistant", "broker"),
            f"unknown broker {ha.broker!r}: define it in [[brokers]]",
        )
    for i, member in enumerate(cfg.staff):
        try:
            parse_pin_hash(member.pin_hash)
        except PinHashError as exc:
            dec.error(("staff", i, "pin_hash"), str(exc))
    _index_unique(dec, "devices", [d.id for d in cfg.devices], "id", "device id")
    for i, broker in enumerate(cfg.brokers):
        for j, auto in enumerate(broker.auto_devices):
            found = library.get(auto.profile)
            if found is None or found.mqtt is None:
                why = "not an MQTT profile" if found is not None else "unknown profile"
                dec.error(
                    ("brokers", i, "auto_devices", j, "profile"),
                    f"{why} {auto.profile!r}{library.suggest(auto.profile) if not found else ''}",
                )

    ctx = DeviceCheckContext(cfg, dec, bus_ids, broker_ids)
    for i, dev in enumerate(cfg.devices):
        profile = library.get(dev.profile)
        if profile is None:
            dec.error(
                ("devices", i, "profile"),
                f"unknown profile {dev.profile!r}{library.suggest(dev.profile)}",
            )
            continue
        module = importlib.import_module(f"edge_agent.config.device_checks.{profile.transport}")
        module.check_device(ctx, i, dev, profile)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _index_unique(
    dec: Decoder, section: str, values: list[str], field: str, what: str
) -> dict[str, int]:
    """Index of each value's first entry; every repeat is reported where it is written."""
    first: dict[str, int] = {}
    for i, value in enumerate(values):
        if value in first:
            dec.error(
                (section, i, field),
                f"duplicate {what} {value!r} (first at {section}[{first[value]}])",
            )
        first.setdefault(value, i)
    return first


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
