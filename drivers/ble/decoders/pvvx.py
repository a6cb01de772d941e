"""The two plain formats of the LYWSD03MMC custom firmware, on service data UUID 0x181A.

"custom" (pvvx): 15 bytes, little-endian: MAC reversed (6), temperature s16 x0.01 °C,
humidity u16 x0.01 %, battery u16 mV, battery u8 %, measurement counter u8, flags u8.
"atc1441": 13 bytes, big-endian: MAC (6), temperature s16 x0.1 °C, humidity u8 %,
battery u8 %, battery u16 mV, counter u8.
"""

from __future__ import annotations

import struct

from drivers.errors import CodecError
from edge_agent.messages import Value

_CUSTOM = struct.Struct("<6shHHBBB")
_ATC1441 = struct.Struct(">6shBBHB")


def _mac(raw: bytes) -> str:
    return ":".join(f"{b:02X}" for b in raw)


def decode_pvvx_custom(payload: bytes, address: str | None = None) -> dict[str, Value]:
    if len(payload) != _CUSTOM.size:
        raise CodecError(f"pvvx custom payload must be {_CUSTOM.size} bytes, got {len(payload)}")
    mac, temp, hum, mv, pct, counter, flags = _CUSTOM.unpack(payload)
    if address is not None and _mac(mac[::-1]) != address.upper():
        raise CodecError(f"pvvx custom payload carries MAC {_mac(mac[::-1])}, not {address}")
    if pct > 100 or hum > 10000:
        raise CodecError(f"pvvx custom values out of range (battery {pct} %, humidity {hum})")
    return {
        "temperature": round(temp * 0.01, 2),
        "humidity": round(hum * 0.01, 2),
        "battery_voltage": round(mv / 1000, 3),
        "battery": pct,
        "packet_id": counter,
        "reed_switch": bool(flags & 0x01),
    }


def decode_atc1441(payload: bytes, address: str | None = None) -> dict[str, Value]:
    if len(payload) != _ATC1441.size:
        raise CodecError(f"atc1441 payload must be {_ATC1441.size} bytes, got {len(payload)}")
    mac, temp, hum, pct, mv, counter = _ATC1441.unpack(payload)
    if address is not None and _mac(mac) != address.upper():
        raise CodecError(f"atc1441 payload carries MAC {_mac(mac)}, not {address}")
    if pct > 100 or hum > 100:
        raise CodecError(f"atc1441 values out of range (battery {pct} %, humidity {hum} %)")
    return {
        "temperature": round(temp * 0.1, 1),
        "humidity": hum,
        "battery": pct,
        "battery_voltage": round(mv / 1000, 3),
        "packet_id": counter,
    }


def encode_pvvx_custom(
    address: str, temp_c: float, hum: float, mv: int, pct: int, counter: int, flags: int = 0
) -> bytes:
    mac = bytes.fromhex(address.replace(":", ""))[::-1]
    return _CUSTOM.pack(mac, round(temp_c * 100), round(hum * 100), mv, pct, counter & 0xFF, flags)


def encode_atc1441(address: str, temp_c: float, hum: int, pct: int, mv: int, counter: int) -> bytes:
    mac = bytes.fromhex(address.replace(":", ""))
    return _ATC1441.pack(mac, round(temp_c * 10), hum, pct, mv, counter & 0xFF)
