"""Advert payloads as real sensors send them, for simulators and byte-vector tests."""

from __future__ import annotations

import struct

from drivers.ble.decoders.pvvx import encode_atc1441, encode_pvvx_custom

__all__ = [
    "bthome",
    "crc16_modbus",
    "encode_atc1441",
    "encode_pvvx_custom",
    "govee_h5074",
    "govee_h5075",
    "inkbird",
    "kegtron",
    "thermopro",
]


def bthome(
    packet_id: int,
    temp_c: float,
    hum: float | None = None,
    battery: int | None = None,
    extra: bytes = b"",
) -> bytes:
    """BTHome v2, plain: objects in ascending id order."""
    out = bytes([0x40, 0x00, packet_id & 0xFF])
    if battery is not None:
        out += bytes([0x01, battery])
    out += b"\x02" + struct.pack("<h", round(temp_c * 100))
    if hum is not None:
        out += b"\x03" + struct.pack("<H", round(hum * 100))
    return out + extra


def govee_h5075(temp_c: float, hum: float, battery: int) -> bytes:
    raw = round(abs(temp_c) * 10) * 1000 + round(hum * 10)
    if temp_c < 0:
        raw |= 0x800000
    return b"\x00" + raw.to_bytes(3, "big") + bytes([battery & 0x7F, 0])


def govee_h5074(temp_c: float, hum: float, battery: int) -> bytes:
    return b"\x00" + struct.pack("<hHB", round(temp_c * 100), round(hum * 100), battery) + b"\x02"


def crc16_modbus(data: bytes) -> int:
    crc = 0xFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def inkbird(temp_c: float, hum: float, battery: int) -> tuple[int, bytes]:
    """(company id, payload): the company id *is* the temperature."""
    company = struct.unpack("<H", struct.pack("<h", round(temp_c * 100)))[0]
    body = struct.pack("<HB", round(hum * 100), 0)
    crc = crc16_modbus(struct.pack("<H", company) + body)
    return company, body + struct.pack("<HB", crc, battery) + b"\x08"


def thermopro(temp_c: float, hum: int, battery_level: int) -> tuple[int, bytes]:
    buf = bytes([0xC2]) + struct.pack("<h", round(temp_c * 10)) + bytes([hum, battery_level])
    buf += b"\x00\x00"
    return int.from_bytes(buf[0:2], "little"), buf[2:]


def kegtron(keg_ml: int, start_ml: int, dispensed_ml: int, name: str = "Tap 1") -> bytes:
    return struct.pack(">HHHB20s", keg_ml, start_ml, dispensed_ml, 0x40, name.encode()[:20])
