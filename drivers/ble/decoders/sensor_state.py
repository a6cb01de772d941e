"""Adapters over the maintained Bluetooth-Devices parsers (bthome-ble, xiaomi-ble, govee-ble,
inkbird-ble, thermopro-ble, kegtron-ble). Each returns a sensor-state-data update; this module
flattens it to `{field: value}` and turns every way a parser can fail on garbage into a
CodecError.

The parsers hold per-device state that matters: bthome-ble refuses an encrypted advert whose
counter went backwards (a replay) and remembers that the bindkey was verified. So each sensor
keeps its own `Parsers` for its lifetime; only one-off callers (discovery, a test of a single
payload) pass none and get a fresh parser per advert."""

from __future__ import annotations

import re
import struct
import time
from typing import Any

from bleak.backends.device import BLEDevice
from bluetooth_sensor_state_data import BluetoothData
from bthome_ble import BTHomeBluetoothDeviceData
from govee_ble import GoveeBluetoothDeviceData
from habluetooth.models import BluetoothServiceInfoBleak
from inkbird_ble import INKBIRDBluetoothDeviceData
from kegtron_ble import KegtronBluetoothDeviceData
from thermopro_ble import ThermoProBluetoothDeviceData
from xiaomi_ble import XiaomiBluetoothDeviceData

from drivers.ble.advertisement import Advertisement
from drivers.errors import CodecError
from edge_agent.messages import Value

# What a third-party parser may raise on a malformed payload (it was written for live radios,
# not for adversarial bytes); anything else is a bug and should surface.
_PARSER_ERRORS = (IndexError, ValueError, KeyError, TypeError, struct.error, OverflowError)
_SKIP = frozenset({"signal_strength"})


class Parsers:
    """One sensor's parser objects, made on first use and kept across its adverts."""

    def __init__(self, bindkey: bytes | None = None) -> None:
        self.bindkey = bindkey
        # When the advert being decoded was heard, on the agent's clock: the parsers' own
        # rules ("a packet id behind the last within 4 s is a repeat") must run on the same
        # time as everything else, not on the host's.
        self.now: float | None = None
        self._made: dict[str, BluetoothData] = {}

    def get(self, kind: str) -> BluetoothData:
        parser = self._made.get(kind)
        if parser is None:
            parser = self._made[kind] = _FACTORIES[kind](self.bindkey)
        return parser


_FACTORIES: dict[str, Any] = {
    "bthome": lambda key: BTHomeBluetoothDeviceData(bindkey=key),
    "mibeacon": lambda key: XiaomiBluetoothDeviceData(bindkey=key),
    "govee": lambda _key: GoveeBluetoothDeviceData(),
    "inkbird": lambda _key: INKBIRDBluetoothDeviceData(),
    "thermopro": lambda _key: ThermoProBluetoothDeviceData(),
    "kegtron": lambda _key: KegtronBluetoothDeviceData(),
}


def _parser(kind: str, parsers: Parsers | None, bindkey: bytes | None = None) -> Any:
    if parsers is None:
        return _FACTORIES[kind](bindkey)
    return parsers.get(kind)


def _service_info(adv: Advertisement, at: float | None = None) -> BluetoothServiceInfoBleak:
    return BluetoothServiceInfoBleak(
        adv.name,
        adv.address,
        adv.rssi,
        dict(adv.manufacturer_data),
        dict(adv.service_data),
        list(adv.service_uuids),
        "beerflow",
        BLEDevice(adv.address, adv.name, None),
        None,
        True,
        time.monotonic() if at is None else at,
        None,
    )


def _flatten(
    parser: BluetoothData, adv: Advertisement, parsers: Parsers | None = None
) -> dict[str, Value]:
    info = _service_info(adv, parsers.now if parsers is not None else None)
    # sensor-state-data hands back its per-update dicts without clearing them between
    # updates, so a kept parser would return every value it ever saw, re-stamped. Clear them
    # and parse once (`supported()` parses too, and a second parse of one advert would look
    # like a repeat to the parser's own packet-id check).
    parser._sensor_values_updates.clear()
    parser._binary_sensor_values_updates.clear()
    try:
        update = parser.update(info)
    except _PARSER_ERRORS as exc:
        raise CodecError(f"malformed advertisement: {type(exc).__name__}: {exc}") from exc
    if not parser._device_id_to_type:
        raise CodecError("advertisement not recognised by the parser")
    out: dict[str, Value] = {}
    values: list[tuple[Any, Any]] = [
        *update.entity_values.items(),
        *update.binary_entity_values.items(),
    ]
    for key, value in values:
        name = key.key
        if name in out and key.device_id is not None:  # a multi-channel sensor's second value
            name = f"{name}_{re.sub(r'[^a-z0-9]+', '_', str(key.device_id).lower()).strip('_')}"
        v = value.native_value
        if name in _SKIP or v is None or isinstance(v, str):
            continue
        if isinstance(v, bool | int | float):
            out[name] = v
    return out


def decode_bthome(
    adv: Advertisement, bindkey: bytes | None, parsers: Parsers | None = None
) -> dict[str, Value]:
    parser = _parser("bthome", parsers, bindkey)
    fields = _flatten(parser, adv, parsers)
    if parser.encryption_scheme.name != "NONE" and bindkey is None:
        raise CodecError("encrypted BTHome advert but no bindkey configured")
    if parser.encryption_scheme.name != "NONE" and not fields:
        # a wrong key, or a counter behind the last one seen (a replayed advert)
        raise CodecError("encrypted BTHome advert refused (bindkey or replay check failed)")
    if parser.encryption_scheme.name != "NONE" and not parser.bindkey_verified:
        raise CodecError("BTHome advert could not be decrypted with the configured bindkey")
    return fields


def decode_mibeacon(
    adv: Advertisement, bindkey: bytes | None, parsers: Parsers | None = None
) -> dict[str, Value]:
    """Xiaomi's own MiBeacon (stock firmware, service data 0xFE95), encrypted with the
    device's 16-byte bindkey (v4/v5) or plain."""
    parser = _parser("mibeacon", parsers, bindkey)
    fields = _flatten(parser, adv, parsers)
    if not fields and parser.encryption_scheme.name != "NONE":
        if bindkey is None:
            raise CodecError("encrypted MiBeacon advert but no bindkey configured")
        raise CodecError("MiBeacon advert could not be decrypted with the configured bindkey")
    return fields


def decode_govee(
    adv: Advertisement, length: int, parsers: Parsers | None = None
) -> dict[str, Value]:
    payload = adv.manufacturer_data.get(0xEC88)
    if payload is None or len(payload) != length:
        raise CodecError(f"Govee payload must be {length} bytes on company id 0xEC88")
    return _flatten(_parser("govee", parsers), adv, parsers)


def decode_inkbird(adv: Advertisement, parsers: Parsers | None = None) -> dict[str, Value]:
    # The company id is the temperature, so the payload is any single manufacturer entry.
    if len(adv.manufacturer_data) != 1 or len(next(iter(adv.manufacturer_data.values()))) != 7:
        raise CodecError("Inkbird advert must carry one 7-byte manufacturer entry")
    return _flatten(_parser("inkbird", parsers), adv, parsers)


def decode_thermopro(adv: Advertisement, parsers: Parsers | None = None) -> dict[str, Value]:
    if not adv.manufacturer_data:
        raise CodecError("ThermoPro advert without manufacturer data")
    return _flatten(_parser("thermopro", parsers), adv, parsers)


def decode_kegtron(adv: Advertisement, parsers: Parsers | None = None) -> dict[str, Value]:
    payload = adv.manufacturer_data.get(0xFFFF)
    if payload is None or len(payload) != 27:
        raise CodecError("Kegtron payload must be 27 bytes on company id 0xFFFF")
    fields = _flatten(_parser("kegtron", parsers), adv, parsers)
    for port in (1, 2):
        start = fields.get(f"volume_start_port_{port}")
        used = fields.get(f"volume_dispensed_port_{port}")
        if isinstance(start, int | float) and isinstance(used, int | float):
            fields[f"volume_remaining_port_{port}"] = round(max(0.0, start - used), 3)
    return fields
