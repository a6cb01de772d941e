"""MQTT discovery payloads for Home Assistant: pure, no I/O.

One entity per point of each device, announced per entity (not device-based discovery, which
older Home Assistant releases do not read) under
``<prefix>/<component>/<object_id>/config`` with ``object_id == unique_id``. States go to
``<base>/<venue>/<device>/<point>``; availability is the box's own will topic plus one topic
per device, and Home Assistant needs both to say "online" (availability_mode all).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from edge_agent import __version__
from edge_agent.config.model import DeviceConfig, HomeAssistantSection, VenueSection
from firmware_profiles.common import PointInfo

ONLINE, OFFLINE = "online", "offline"
ON, OFF = "ON", "OFF"
_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]+")


@dataclass(frozen=True, slots=True)
class EntityKind:
    """How one kind of point appears in Home Assistant."""

    component: str  # "sensor" or "binary_sensor"
    device_class: str | None = None
    state_class: str | None = None
    diagnostic: bool = False


# Units per sensor device class that Home Assistant accepts; a point whose unit is not in the
# list is exported without a device class (still with its unit) rather than rejected by HA.
DEVICE_CLASS_UNITS: dict[str, frozenset[str]] = {
    "temperature": frozenset({"°C", "°F", "K"}),
    "humidity": frozenset({"%"}),
    "battery": frozenset({"%"}),
    "power": frozenset({"W", "kW"}),
    "energy": frozenset({"Wh", "kWh", "MWh"}),
    "voltage": frozenset({"V", "mV"}),
    "current": frozenset({"A", "mA"}),
    "frequency": frozenset({"Hz", "kHz"}),
    "power_factor": frozenset({"%", ""}),
    "weight": frozenset({"kg", "g", "lb", "oz"}),
    "volume_storage": frozenset({"L", "mL", "gal", "m³"}),
    "signal_strength": frozenset({"dB", "dBm"}),
    "duration": frozenset({"s", "min", "h", "d", "ms"}),
}

KINDS: dict[str, EntityKind] = {
    "temperature": EntityKind("sensor", "temperature", "measurement"),
    "setpoint": EntityKind("sensor", "temperature", "measurement"),
    "humidity": EntityKind("sensor", "humidity", "measurement"),
    "battery": EntityKind("sensor", "battery", "measurement", diagnostic=True),
    "power": EntityKind("sensor", "power", "measurement"),
    # A meter: Home Assistant reads any decrease as a reset, which is what a meter's wrap is.
    "energy": EntityKind("sensor", "energy", "total_increasing"),
    "voltage": EntityKind("sensor", "voltage", "measurement"),
    "current": EntityKind("sensor", "current", "measurement"),
    "frequency": EntityKind("sensor", "frequency", "measurement"),
    "power_factor": EntityKind("sensor", "power_factor", "measurement"),
    "weight": EntityKind("sensor", "weight", "measurement"),
    "volume": EntityKind("sensor", "volume_storage", "measurement"),
    "rssi": EntityKind("sensor", "signal_strength", "measurement", diagnostic=True),
    "duration": EntityKind("sensor", "duration", "measurement"),
    "counter": EntityKind("sensor", None, "total_increasing"),
    "level": EntityKind("sensor", None, "measurement"),
    "mode": EntityKind("sensor"),
    "state": EntityKind("sensor"),
    "program": EntityKind("sensor"),
    "status": EntityKind("sensor"),
    "door_open": EntityKind("binary_sensor", "door"),
    "defrost_active": EntityKind("binary_sensor", "running"),
    "compressor_on": EntityKind("binary_sensor", "running"),
    "fan_on": EntityKind("binary_sensor", "running"),
    "running": EntityKind("binary_sensor", "running"),
    "alarm": EntityKind("binary_sensor", "problem"),
}


def safe_id(*parts: str) -> str:
    """An id Home Assistant accepts in a discovery topic: only [a-zA-Z0-9_-]."""
    return "_".join(_UNSAFE.sub("_", p).strip("_") or "x" for p in parts)


def box_availability_topic(settings: HomeAssistantSection, venue: str) -> str:
    return f"{settings.base_topic}/{safe_id(venue)}/status"


def device_availability_topic(settings: HomeAssistantSection, venue: str, device: str) -> str:
    return f"{settings.base_topic}/{safe_id(venue)}/{safe_id(device)}/availability"


def state_topic(settings: HomeAssistantSection, venue: str, device: str, point: str) -> str:
    return f"{settings.base_topic}/{safe_id(venue)}/{safe_id(device)}/{safe_id(point)}"


def birth_topic(settings: HomeAssistantSection) -> str:
    return f"{settings.discovery_prefix}/status"


@dataclass(frozen=True, slots=True)
class Entity:
    """One point's discovery message and where its state goes."""

    device_id: str
    point: str
    component: str
    config_topic: str
    state_topic: str
    config: dict[str, Any]


def entity_kind(kind: str, unit: str) -> EntityKind:
    ek = KINDS.get(kind, EntityKind("sensor"))
    if ek.device_class in DEVICE_CLASS_UNITS and unit not in DEVICE_CLASS_UNITS[ek.device_class]:
        return EntityKind(ek.component, None, ek.state_class, ek.diagnostic)
    return ek


def device_entities(
    settings: HomeAssistantSection,
    venue: VenueSection,
    box_id: str,
    device: DeviceConfig,
    vendor: str,
    model: str,
    points: Sequence[PointInfo],
) -> list[Entity]:
    dev_block: dict[str, Any] = {
        "identifiers": [safe_id("beerflow", venue.id, device.id)],
        "name": device.display_name,
        "manufacturer": vendor,
        "model": model,
        "via_device": safe_id("beerflow", "box", box_id),
    }
    if device.zone:
        dev_block["suggested_area"] = device.zone
    out = []
    for p in points:
        ek = entity_kind(p.kind, p.unit)
        uid = safe_id("beerflow", venue.id, device.id, p.name)
        cfg: dict[str, Any] = {
            "name": p.name.replace("_", " ").capitalize(),
            "unique_id": uid,
            "object_id": uid,
            "state_topic": state_topic(settings, venue.id, device.id, p.name),
            "availability": [
                {"topic": box_availability_topic(settings, venue.id)},
                {"topic": device_availability_topic(settings, venue.id, device.id)},
            ],
            "availability_mode": "all",
            "payload_available": ONLINE,
            "payload_not_available": OFFLINE,
            "device": dev_block,
            "origin": {"name": "BeerFlow Edge", "sw_version": __version__},
            "qos": 1,
        }
        if settings.expire_after_s:
            cfg["expire_after"] = settings.expire_after_s
        if ek.component == "binary_sensor":
            cfg["payload_on"], cfg["payload_off"] = ON, OFF
        elif p.unit:
            cfg["unit_of_measurement"] = p.unit
        if ek.device_class:
            cfg["device_class"] = ek.device_class
        if ek.state_class:
            cfg["state_class"] = ek.state_class
        if ek.diagnostic:
            cfg["entity_category"] = "diagnostic"
        topic = f"{settings.discovery_prefix}/{ek.component}/{uid}/config"
        out.append(Entity(device.id, p.name, ek.component, topic, cfg["state_topic"], cfg))
    return out


def box_device(settings: HomeAssistantSection, venue: VenueSection, box_id: str) -> Entity:
    """The box itself, as a connectivity binary sensor every device entity links to."""
    uid = safe_id("beerflow", "box", box_id)
    topic = box_availability_topic(settings, venue.id)
    cfg = {
        "name": "Box online",
        "unique_id": uid,
        "object_id": uid,
        "state_topic": topic,
        "payload_on": ONLINE,
        "payload_off": OFFLINE,
        "device_class": "connectivity",
        "entity_category": "diagnostic",
        "device": {
            "identifiers": [uid],
            "name": f"BeerFlow box ({venue.name})",
            "manufacturer": "BeerFlow",
            "model": "BeerFlow Edge",
            "sw_version": __version__,
        },
        "origin": {"name": "BeerFlow Edge", "sw_version": __version__},
        "qos": 1,
    }
    path = f"{settings.discovery_prefix}/binary_sensor/{uid}/config"
    return Entity("", "", "binary_sensor", path, topic, cfg)


def state_payload(component: str, value: Any) -> str:
    """A reading's value as the state Home Assistant parses for this component."""
    if component == "binary_sensor":
        if isinstance(value, str):
            return ON if value.strip().lower() in ("1", "true", "on", "open", "yes") else OFF
        return ON if value else OFF
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return repr(round(value, 6))
    return str(value)
