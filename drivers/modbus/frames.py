"""Pure Modbus frame arithmetic: RTU CRC and framing, PDU requests and responses, wire time.

Used by the simulated slaves (which must answer like a real device, byte for byte) and by the
bench (which needs the frame sizes to compute what a transaction costs on the wire). No I/O.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from drivers.errors import CodecError

READ_FUNCTIONS = {1: "coil", 2: "discrete", 3: "holding", 4: "input"}
WRITE_FUNCTIONS = frozenset({5, 6, 15, 16})
EXC_ILLEGAL_FUNCTION = 1
EXC_ILLEGAL_ADDRESS = 2
EXC_ILLEGAL_VALUE = 3
EXC_DEVICE_FAILURE = 4


def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC_TABLE = _crc_table()


def crc16(data: bytes) -> int:
    """Modbus CRC-16 (poly 0xA001, init 0xFFFF); sent low byte first."""
    crc = 0xFFFF
    for b in data:
        crc = (crc >> 8) ^ _CRC_TABLE[(crc ^ b) & 0xFF]
    return crc


def rtu_frame(unit: int, pdu: bytes) -> bytes:
    body = bytes([unit]) + pdu
    return body + struct.pack("<H", crc16(body))


def rtu_request_length(buf: bytes) -> int | None:
    """Length of the request frame at the start of `buf`, or None while too little has arrived.

    Raises CodecError for a function code a slave cannot frame (the caller drops the buffer and
    waits for line silence, as a real slave does)."""
    if len(buf) < 2:
        return None
    fc = buf[1]
    if fc in (1, 2, 3, 4, 5, 6):
        return 8
    if fc in (15, 16):
        if len(buf) < 7:
            return None
        return 9 + buf[6]
    raise CodecError(f"cannot frame function code {fc}")


def split_rtu(frame: bytes) -> tuple[int, bytes]:
    """(unit, pdu) of a complete RTU frame; CodecError when the CRC does not match."""
    if len(frame) < 4:
        raise CodecError(f"RTU frame too short ({len(frame)} bytes)")
    body, crc = frame[:-2], struct.unpack("<H", frame[-2:])[0]
    if crc16(body) != crc:
        raise CodecError("RTU CRC mismatch")
    return body[0], body[1:]


@dataclass(frozen=True, slots=True)
class Request:
    function: int
    address: int
    count: int
    values: tuple[int, ...] = ()  # register words, or 0/1 per coil for writes


def parse_request(pdu: bytes) -> Request:
    """Decode a request PDU; CodecError for anything malformed."""
    if len(pdu) < 5:
        raise CodecError(f"request PDU too short ({len(pdu)} bytes)")
    fc = pdu[0]
    address, arg = struct.unpack(">HH", pdu[1:5])
    if fc in READ_FUNCTIONS:
        return Request(fc, address, arg)
    if fc == 5:
        if arg not in (0x0000, 0xFF00):
            raise CodecError(f"FC05 value {arg:#06x} is not 0x0000/0xFF00")
        return Request(fc, address, 1, (1 if arg else 0,))
    if fc == 6:
        return Request(fc, address, 1, (arg,))
    if fc in (15, 16):
        if len(pdu) < 6 or len(pdu) != 6 + pdu[5]:
            raise CodecError("write-multiple byte count does not match the PDU")
        data = pdu[6:]
        if fc == 16:
            if len(data) != 2 * arg:
                raise CodecError("FC16 byte count does not match the register count")
            return Request(fc, address, arg, struct.unpack(f">{arg}H", data))
        if len(data) != (arg + 7) // 8:
            raise CodecError("FC15 byte count does not match the coil count")
        bits = tuple((data[i // 8] >> (i % 8)) & 1 for i in range(arg))
        return Request(fc, address, arg, bits)
    raise CodecError(f"unsupported function code {fc}")


def read_response(function: int, values: list[int] | list[bool]) -> bytes:
    if function in (1, 2):
        data = bytearray((len(values) + 7) // 8)
        for i, v in enumerate(values):
            if v:
                data[i // 8] |= 1 << (i % 8)
        return bytes([function, len(data)]) + bytes(data)
    words = [int(v) & 0xFFFF for v in values]
    return bytes([function, 2 * len(words)]) + struct.pack(f">{len(words)}H", *words)


def write_response(req: Request) -> bytes:
    if req.function == 5:
        return struct.pack(">BHH", 5, req.address, 0xFF00 if req.values[0] else 0)
    if req.function == 6:
        return struct.pack(">BHH", 6, req.address, req.values[0])
    return struct.pack(">BHH", req.function, req.address, req.count)


def exception_response(function: int, code: int) -> bytes:
    return bytes([(function | 0x80) & 0xFF, code])


def read_request_pdu(function: int, address: int, count: int) -> bytes:
    return struct.pack(">BHH", function, address, count)


def read_response_size(function: int, count: int) -> int:
    """Bytes of the RTU response to a read of `count` items (unit, fc, byte count, data, CRC)."""
    data = (count + 7) // 8 if function in (1, 2) else 2 * count
    return 3 + data + 2


def wire_time_s(frame_bytes: int, baudrate: int, char_bits: float = 10.0) -> float:
    """Time the bytes occupy on the line (8N1 = 10 bits per character)."""
    return frame_bytes * char_bits / baudrate


def rtu_reply_length(buf: bytes | bytearray, function: int) -> int | None:
    """Length of the reply frame to a request with `function` at the start of `buf`, or None
    while too little has arrived. CodecError when the reply answers a different function."""
    if len(buf) < 2:
        return None
    fc = buf[1]
    if fc == function | 0x80:
        return 5  # unit, fc | 0x80, exception code, CRC
    if fc != function:
        raise CodecError(f"reply with function code {fc} to a request with {function}")
    if function in READ_FUNCTIONS:
        return 5 + buf[2] if len(buf) >= 3 else None
    return 8  # write replies echo address and value/count


def read_reply_values(function: int, pdu: bytes, count: int) -> list[int] | list[bool]:
    """Registers (FC03/04) or bits (FC01/02) of a read reply PDU, at most `count` of them.

    A reply carrying fewer items than asked is returned short, so the caller's decoder can
    count it as malformed data rather than a lost answer."""
    if len(pdu) < 2 or len(pdu) != 2 + pdu[1]:
        raise CodecError("read reply byte count does not match its length")
    data = pdu[2:]
    if function in (1, 2):
        n = min(count, 8 * len(data))
        return [bool((data[i >> 3] >> (i & 7)) & 1) for i in range(n)]
    words = len(data) // 2
    return list(struct.unpack(f">{words}H", data[: 2 * words])[:count])
