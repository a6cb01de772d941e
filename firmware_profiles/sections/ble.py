"""The BLE section of a profile: how to recognise a sensor's advertisement, which decoder reads
it, which decoded fields become points, and (optionally) the GATT characteristics a logger
offers for live notifications and history backfill."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from edge_agent.toml_lines import Path
from edge_agent.typed_toml import Decoder
from firmware_profiles.checks import unique_names
from firmware_profiles.common import IDENT, IDENT_HINT, PointKind

BleDecoder = Literal[
    "bthome",
    "mibeacon",
    "pvvx_custom",
    "atc1441",
    "govee_h5075",
    "govee_h5074",
    "inkbird",
    "thermopro",
    "kegtron",
]
# Formats whose payload is encrypted and needs the device's `bindkey` in the venue config.
ENCRYPTED_DECODERS: frozenset[str] = frozenset({"bthome", "mibeacon"})

UUID_RE = r"([0-9a-f]{4}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
UUID_HINT = "a 16-bit UUID as 4 lower-case hex digits ('fcd2') or a full lower-case UUID"
BASE_UUID_SUFFIX = "-0000-1000-8000-00805f9b34fb"


def full_uuid(uuid: str) -> str:
    """'fcd2' -> '0000fcd2-0000-1000-8000-00805f9b34fb' (what BlueZ and bleak report)."""
    return f"0000{uuid}{BASE_UUID_SUFFIX}" if len(uuid) == 4 else uuid


@dataclass(frozen=True, slots=True)
class BleMatch:
    """How an advertisement is recognised as this model (for discovery and sanity checks).

    Every given criterion must hold; at least one must be given."""

    service_data_uuid: str | None = field(
        default=None, metadata={"pattern": UUID_RE, "pattern_hint": UUID_HINT}
    )
    manufacturer_id: int | None = field(default=None, metadata={"min": 0, "max": 0xFFFF})
    local_name_prefix: str | None = field(default=None, metadata={"nonempty": True})
    service_uuid: str | None = field(
        default=None, metadata={"pattern": UUID_RE, "pattern_hint": UUID_HINT}
    )

    def __post_init__(self) -> None:
        if (
            self.service_data_uuid is None
            and self.manufacturer_id is None
            and self.local_name_prefix is None
            and self.service_uuid is None
        ):
            raise ValueError(
                "give at least one of service_data_uuid, manufacturer_id, "
                "local_name_prefix, service_uuid"
            )


@dataclass(frozen=True, slots=True)
class BlePoint:
    name: str = field(metadata={"pattern": IDENT, "pattern_hint": IDENT_HINT})
    kind: PointKind
    unit: str = ""
    # The decoder's field this point reads ("temperature", "battery", "rssi", ...);
    # defaults to the point's name.
    field: str | None = field(default=None, metadata={"nonempty": True})
    description: str = ""

    @property
    def source(self) -> str:
        return self.field or self.name

    @property
    def where(self) -> str:
        return f"advert field {self.source}"


@dataclass(frozen=True, slots=True)
class BleGatt:
    """A logger reachable over GATT: live notifications and history (protocol `beerflow_log_v1`,
    see docs/ble.md). Notifications are re-subscribed after every reconnect."""

    service: str = field(metadata={"pattern": UUID_RE, "pattern_hint": UUID_HINT})
    live: str = field(metadata={"pattern": UUID_RE, "pattern_hint": UUID_HINT})
    history_control: str | None = field(
        default=None, metadata={"pattern": UUID_RE, "pattern_hint": UUID_HINT}
    )
    history_data: str | None = field(
        default=None, metadata={"pattern": UUID_RE, "pattern_hint": UUID_HINT}
    )
    protocol: Literal["beerflow_log_v1"] = "beerflow_log_v1"
    # On the first connection after the agent starts, ask for this much history.
    backfill_window_s: float = field(default=6 * 3600.0, metadata={"min": 0, "max": 400 * 86400})
    connect_timeout_s: float = field(default=10.0, metadata={"min": 0.5, "max": 120})

    def __post_init__(self) -> None:
        if (self.history_control is None) != (self.history_data is None):
            raise ValueError("history needs both history_control and history_data")


@dataclass(frozen=True, slots=True)
class BleSection:
    decoder: BleDecoder
    match: BleMatch
    points: tuple[BlePoint, ...] = field(metadata={"nonempty": True})
    # A device not heard for this long is reported offline.
    offline_after_s: float = field(default=300.0, metadata={"min": 5, "max": 86400})
    # Adverts with the same packet id (or, without one, the same payload) within this window
    # are repeats of one measurement and are dropped.
    dedupe_window_s: float = field(default=4.0, metadata={"min": 0, "max": 600})
    encrypted: bool = False
    gatt: BleGatt | None = None


# Fields each decoder can produce (besides `rssi`, which every advert has).
DECODER_FIELDS: dict[str, frozenset[str]] = {
    "bthome": frozenset(
        {
            "temperature",
            "humidity",
            "battery",
            "voltage",
            "mass",
            "weight",
            "volume",
            "door",
            "opening",
            "power",
            "energy",
            "count",
            "packet_id",
        }
    ),
    "mibeacon": frozenset({"temperature", "humidity", "battery"}),
    "pvvx_custom": frozenset(
        {"temperature", "humidity", "battery", "battery_voltage", "packet_id", "reed_switch"}
    ),
    "atc1441": frozenset({"temperature", "humidity", "battery", "battery_voltage", "packet_id"}),
    "govee_h5075": frozenset({"temperature", "humidity", "battery"}),
    "govee_h5074": frozenset({"temperature", "humidity", "battery"}),
    "inkbird": frozenset({"temperature", "humidity", "battery"}),
    "thermopro": frozenset({"temperature", "humidity", "battery"}),
    "kegtron": frozenset(
        {
            "keg_size_port_1",
            "volume_start_port_1",
            "volume_dispensed_port_1",
            "volume_remaining_port_1",
            "keg_size_port_2",
            "volume_start_port_2",
            "volume_dispensed_port_2",
            "volume_remaining_port_2",
        }
    ),
}
COMMON_FIELDS = frozenset({"rssi"})
_GATT_FIELDS = frozenset({"temperature", "humidity", "battery"})


def check_section(section: BleSection, dec: Decoder, path: Path) -> None:
    """Unique point names; every point reads a field its decoder can produce."""
    unique_names(section.points, dec, (*path, "points"))
    known = DECODER_FIELDS[section.decoder] | COMMON_FIELDS
    for i, p in enumerate(section.points):
        if p.source not in known and not re.fullmatch(r"[a-z_]+_\d+", p.source):
            dec.error(
                (*path, "points", i, "field" if p.field else "name"),
                f"decoder {section.decoder!r} has no field {p.source!r} "
                f"(fields: {', '.join(sorted(known))})",
            )
    if section.encrypted and section.decoder not in ENCRYPTED_DECODERS:
        dec.error((*path, "encrypted"), f"decoder {section.decoder!r} has no encrypted variant")
    if section.gatt is not None and not any(p.source in _GATT_FIELDS for p in section.points):
        dec.error((*path, "gatt"), "a GATT logger needs a temperature, humidity or battery point")
