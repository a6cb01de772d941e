"""The `beerflow_log_v1` GATT history protocol (pure; documented in docs/ble.md).

A record is 9 bytes, little-endian: unix time u32, temperature s16 x0.01 °C, humidity u16
x0.01 %, battery u8 %. The live characteristic notifies one record per measurement. Writing
`01` + since (u32) to the control characteristic makes the logger notify, on the data
characteristic, every stored record newer than `since`, oldest first, up to 20 per
notification, then a single `00` byte to end the transfer.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from drivers.errors import CodecError

RECORD = struct.Struct("<IhHB")
END = b"\x00"
REQUEST = 0x01
PER_NOTIFICATION = 20


@dataclass(frozen=True, slots=True)
class LogRecord:
    ts: int
    temperature: float
    humidity: float
    battery: int

    def fields(self) -> dict[str, float | int]:
        return {"temperature": self.temperature, "humidity": self.humidity, "battery": self.battery}


def encode_record(r: LogRecord) -> bytes:
    return RECORD.pack(r.ts, round(r.temperature * 100), round(r.humidity * 100), r.battery)


def decode_records(payload: bytes) -> list[LogRecord]:
    if not payload or len(payload) % RECORD.size:
        raise CodecError(f"history payload of {len(payload)} bytes is not whole records")
    out = []
    for ts, t, h, b in RECORD.iter_unpack(payload):
        if b > 100 or h > 10000 or ts == 0:
            raise CodecError(f"history record out of range (ts {ts}, humidity {h}, battery {b})")
        out.append(LogRecord(ts, round(t / 100, 2), round(h / 100, 2), b))
    return out


def request(since: int) -> bytes:
    return bytes([REQUEST]) + struct.pack("<I", max(0, since))


def parse_request(data: bytes) -> int:
    if len(data) != 5 or data[0] != REQUEST:
        raise CodecError("not a history request")
    return int(struct.unpack("<I", data[1:])[0])


def answer(records: list[LogRecord], since: int) -> list[bytes]:
    """What the logger notifies for a request: chunks of records, then the end marker."""
    newer = [encode_record(r) for r in sorted(records, key=lambda r: r.ts) if r.ts > since]
    chunks = [
        b"".join(newer[i : i + PER_NOTIFICATION]) for i in range(0, len(newer), PER_NOTIFICATION)
    ]
    return [*chunks, END]
