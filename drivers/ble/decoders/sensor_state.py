"""Adapters over the maintained Bluetooth-Devices parsers (bthome-ble, govee-ble, inkbird-ble,
thermopro-ble, kegtron-ble). Each returns a sensor-state-data update; this module flattens it
to `{field: value}` and turns every way a parser can fail on garbage into a CodecError.

A fresh parser object per advert keeps decoding pure: the parsers hold per-device state."""

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

from drivers.ble.advertisement import Advertisement
from drivers.errors import CodecError
from edge_agent.messages import Value

# What a third-party parser may raise on a malformed payload (it was written for live radios,
# not for adversarial bytes); anything else is a bug and should surface.
_PARSER_ERRORS = (IndexError, ValueError, KeyError, TypeError, struct.error, OverflowError)
_SKIP = frozenset({"signal_strength"})


def _service_info(adv: Advertisement) -> BluetoothServiceInfoBleak:
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
        time.monotonic(),
        None,
    )


def _flatten(parser: BluetoothData, adv: Advertisement) -> dict[str, Value]:
    info = _service_info(adv)
    try:
        if not parser.supported(info):
            raise CodecError("advertisement not recognised by the parser")
        update = parser.update(info)
    except _PARSER_ERRORS as exc:
        raise CodecError(f"malformed advertisement: {type(exc).__name__}: {exc}") from exc
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


def decode_bthome(adv: Advertisement, bindkey: bytes | None) -> dict[str, Value]:
    parser = BTHomeBluetoothDeviceData(bindkey=bindkey)
    fields = _flatten(parser, adv)
    if parser.encryption_scheme.name != "NONE" and bindkey is None:
        raise CodecError("encrypted BTHome advert but no bindkey configured")
    if parser.encryption_scheme.name != "NONE" and not parser.bindkey_verified:
        raise CodecError("BTHome advert could not be decrypted with the configured bindkey")
    return fields


def decode_govee(adv: Advertisement, length: int) -> dict[str, Value]:
    payload = adv.manufacturer_data.get(0xEC88)
    if payload is None or len(payload) != length:
        raise CodecError(f"Govee payload must be {length} bytes on company id 0xEC88")
    return _flatten(GoveeBluetoothDeviceData(), adv)


def decode_inkbird(adv: Advertisement) -> dict[str, Value]:
    # The company id is the temperature, so the payload is any single manufacturer entry.
    if len(adv.manufacturer_data) != 1 or len(next(iter(adv.manufacturer_data.values()))) != 7:
        raise CodecError("Inkbird advert must carry one 7-byte manufacturer entry")
    return _flatten(INKBIRDBluetoothDeviceData(), adv)


def decode_thermopro(adv: Advertisement) -> dict[str, Value]:
    if not adv.manufacturer_data:
        raise CodecError("ThermoPro advert without manufacturer data")
    return _flatten(ThermoProBluetoothDeviceData(), adv)


def decode_kegtron(adv: Advertisement) -> dict[str, Value]:
    payload = adv.manufacturer_data.get(0xFFFF)
    if payload is None or len(payload) != 27:
        raise CodecError("Kegtron payload must be 27 bytes on company id 0xFFFF")
    fields = _flatten(KegtronBluetoothDeviceData(), adv)
    for port in (1, 2):
        start = fields.get(f"volume_start_port_{port}")
        used = fields.get(f"volume_dispensed_port_{port}")
        if isinstance(start, int | float) and isinstance(used, int | float):
            fields[f"volume_remaining_port_{port}"] = round(max(0.0, start - used), 3)
    return fields
