"""Pure Modbus register codec: plan batched reads, decode words into point values, encode writes.

No sockets, clocks or loggers here: registers in, values out.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from drivers.errors import CodecError, CommandRejected
from firmware_profiles.schema import BIT_TABLES, ModbusPoint, ModbusSection

Words = Sequence[int] | Sequence[bool]


@dataclass(frozen=True, slots=True)
class ReadBlock:
    table: str
    start: int
    count: int
    points: tuple[ModbusPoint, ...]


def plan_reads(section: ModbusSection) -> list[ReadBlock]:
    """Group points into as few requests as the device allows.

    Points of one table are merged into a block while the block stays within the per-profile
    maximum and the hole between them is at most `max_gap` registers (reading a few unused
    registers is cheaper than another round trip).
    """
    blocks: list[ReadBlock] = []
    by_table: dict[str, list[ModbusPoint]] = {}
    for p in section.points:
        by_table.setdefault(p.table, []).append(p)
    for table in ("holding", "input", "coil", "discrete"):
        pts = sorted(by_table.get(table, ()), key=lambda p: p.address)
        limit = section.max_bits_per_read if table in BIT_TABLES else section.max_registers_per_read
        current: list[ModbusPoint] = []
        start = end = 0
        for p in pts:
            p_end = p.address + p.width
            if current and p.address - end <= section.max_gap and p_end - start <= limit:
                current.append(p)
                end = max(end, p_end)
                continue
            if current:
                blocks.append(ReadBlock(table, start, end - start, tuple(current)))
            current, start, end = [p], p.address, p_end
        if current:
            blocks.append(ReadBlock(table, start, end - start, tuple(current)))
    return blocks


def _word(w: int, byte_order: str) -> int:
    if not 0 <= w <= 0xFFFF:
        raise CodecError(f"register value {w} outside 0..65535")
    return ((w & 0xFF) << 8) | (w >> 8) if byte_order == "little" else w


def decode_point(
    point: ModbusPoint, words: Sequence[int], byte_order: str, word_order: str
) -> float | int:
    """Decode one register point from its words (already sliced to its width)."""
    if len(words) != point.width:
        raise CodecError(f"{point.name}: expected {point.width} registers, got {len(words)}")
    ws = [_word(int(w), byte_order) for w in words]
    order = point.word_order or word_order
    if point.width == 2 and order == "little":
        ws.reverse()
    t = point.type
    raw: float | int
    if t == "int16":
        raw = ws[0] - 0x10000 if ws[0] & 0x8000 else ws[0]
    elif t == "uint16":
        raw = ws[0]
    else:
        packed = struct.pack(">HH", ws[0], ws[1])
        if t == "int32":
            raw = struct.unpack(">i", packed)[0]
        elif t == "uint32":
            raw = struct.unpack(">I", packed)[0]
        else:
            raw = struct.unpack(">f", packed)[0]
            if not math.isfinite(raw):
                raise CodecError(f"{point.name}: not a finite float")
    if point.scale == 1.0 and point.offset == 0.0:
        return raw
    return round(raw * point.scale + point.offset, 6)


def decode_block(
    block: ReadBlock, values: Words, byte_order: str = "big", word_order: str = "big"
) -> list[tuple[ModbusPoint, float | int | bool]]:
    """Decode a block's response; a short or malformed response raises CodecError."""
    if len(values) < block.count:
        raise CodecError(
            f"{block.table} {block.start}+{block.count}: short response ({len(values)} values)"
        )
    out: list[tuple[ModbusPoint, float | int | bool]] = []
    if block.table in BIT_TABLES:
        for p in block.points:
            out.append((p, bool(values[p.address - block.start])))
        return out
    for p in block.points:
        off = p.address - block.start
        words = [int(v) for v in values[off : off + p.width]]
        out.append((p, decode_point(p, words, byte_order, word_order)))
    return out


def encode_point(
    point: ModbusPoint, value: float | bool, byte_order: str = "big", word_order: str = "big"
) -> list[int] | bool:
    """The registers (or coil state) that make the device hold `value` at this point."""
    if point.table in BIT_TABLES:
        return bool(value)
    raw = (float(value) - point.offset) / point.scale
    t = point.type
    if t == "float32":
        ws = list(struct.unpack(">HH", struct.pack(">f", raw)))
    else:
        n = round(raw)
        lo, hi = {
            "int16": (-0x8000, 0x7FFF),
            "uint16": (0, 0xFFFF),
            "int32": (-0x80000000, 0x7FFFFFFF),
            "uint32": (0, 0xFFFFFFFF),
        }[t]
        if not lo <= n <= hi:
            raise CommandRejected(f"{point.name}: {value} does not fit {t}")
        if point.width == 1:
            ws = [n & 0xFFFF]
        else:
            u = n & 0xFFFFFFFF
            ws = [u >> 16, u & 0xFFFF]
    if point.width == 2 and (point.word_order or word_order) == "little":
        ws.reverse()
    return [_word(w, byte_order) for w in ws]
