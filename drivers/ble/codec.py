"""The one entry point from an advertisement to point values: pure, no I/O, no clock.

`decode(section, advert)` picks the profile's decoder, decodes the payload into fields, adds
`rssi`, and maps fields to the profile's points. Garbage raises CodecError, never anything else.
"""

from __future__ import annotations

from collections.abc import Callable

from drivers.ble.advertisement import Advertisement
from drivers.ble.decoders import pvvx, sensor_state
from drivers.errors import CodecError
from edge_agent.messages import Value
from firmware_profiles.sections.ble import BleMatch, BleSection, full_uuid

ENV_SENSING_UUID = full_uuid("181a")
BTHOME_UUID = full_uuid("fcd2")


def _service_payload(adv: Advertisement, uuid: str) -> bytes:
    payload = adv.service_data.get(uuid)
    if payload is None:
        raise CodecError(f"no service data for {uuid}")
    return payload


Parsers = sensor_state.Parsers
_Decoder = Callable[[Advertisement, bytes | None, "Parsers | None"], dict[str, Value]]
_DECODERS: dict[str, _Decoder] = {
    "bthome": sensor_state.decode_bthome,
    "mibeacon": sensor_state.decode_mibeacon,
    "pvvx_custom": lambda a, _k, _p: pvvx.decode_pvvx_custom(
        _service_payload(a, ENV_SENSING_UUID), a.address
    ),
    "atc1441": lambda a, _k, _p: pvvx.decode_atc1441(
        _service_payload(a, ENV_SENSING_UUID), a.address
    ),
    "govee_h5075": lambda a, _k, p: sensor_state.decode_govee(a, 6, p),
    "govee_h5074": lambda a, _k, p: sensor_state.decode_govee(a, 7, p),
    "inkbird": lambda a, _k, p: sensor_state.decode_inkbird(a, p),
    "thermopro": lambda a, _k, p: sensor_state.decode_thermopro(a, p),
    "kegtron": lambda a, _k, p: sensor_state.decode_kegtron(a, p),
}


def decode_fields(
    section: BleSection,
    adv: Advertisement,
    bindkey: bytes | None = None,
    parsers: Parsers | None = None,
) -> dict[str, Value]:
    """Every field the decoder found in this advert, plus `rssi`. `parsers`: the sensor's
    kept parser state (replay and counter checks); None decodes this advert on its own."""
    fields = _DECODERS[section.decoder](adv, bindkey, parsers)
    if not fields:
        raise CodecError(f"{section.decoder}: advert carries no readings")
    fields["rssi"] = adv.rssi
    return fields


def to_points(section: BleSection, fields: dict[str, Value]) -> list[tuple[str, Value]]:
    return [(p.name, fields[p.source]) for p in section.points if p.source in fields]


def decode(
    section: BleSection, adv: Advertisement, bindkey: bytes | None = None
) -> list[tuple[str, Value]]:
    return to_points(section, decode_fields(section, adv, bindkey))


def payload_key(section: BleSection, adv: Advertisement) -> bytes:
    """The bytes that carry the measurement (not the RSSI): equal keys mean a repeated advert."""
    m = section.match
    if m.service_data_uuid is not None:
        return adv.service_data.get(full_uuid(m.service_data_uuid), b"")
    parts = [k.to_bytes(2, "little") + v for k, v in sorted(adv.manufacturer_data.items())]
    return b"".join(parts)


def has_payload(section: BleSection, adv: Advertisement) -> bool:
    """False for a sighting without measurement data (a scan response, an RSSI-only update)."""
    m = section.match
    if m.service_data_uuid is not None:
        return full_uuid(m.service_data_uuid) in adv.service_data
    return bool(adv.manufacturer_data)


def matches(match: BleMatch, adv: Advertisement) -> bool:
    """Does this advert look like the profile's model? Every given criterion must hold."""
    if match.service_data_uuid is not None and full_uuid(match.service_data_uuid) not in (
        adv.service_data
    ):
        return False
    if match.manufacturer_id is not None and match.manufacturer_id not in adv.manufacturer_data:
        return False
    if match.local_name_prefix is not None and not adv.name.startswith(match.local_name_prefix):
        return False
    return match.service_uuid is None or full_uuid(match.service_uuid) in adv.service_uuids
