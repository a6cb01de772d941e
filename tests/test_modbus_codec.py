"""The pure Modbus codec: batching plans, signed values, word orders, and garbage never crashes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.errors import CodecError, CommandRejected
from drivers.modbus.codec import ReadBlock, decode_block, decode_point, encode_point, plan_reads
from firmware_profiles.loader import load_library
from firmware_profiles.schema import ModbusPoint, ModbusSection


def pt(name, address, type_="int16", table="holding", scale=1.0, **kw):
    return ModbusPoint(
        name=name,
        kind="temperature" if table not in ("coil", "discrete") else "alarm",
        table=table,
        address=address,
        type=type_,
        scale=scale,
        **kw,
    )


def test_dixell_plan_is_three_requests():
    prof = load_library().get("dixell-xr77u")
    blocks = plan_reads(prof.modbus)
    assert [(b.table, b.start, b.count) for b in blocks] == [
        ("holding", 256, 3),
        ("holding", 853, 1),
        ("coil", 536, 9),
    ]


def test_plan_respects_max_registers_and_gap():
    points = tuple(pt(f"p{i}", a) for i, a in enumerate([0, 1, 2, 10, 11, 40]))
    section = ModbusSection(points=points, max_registers_per_read=4, max_gap=8)
    blocks = plan_reads(section)
    assert [(b.start, b.count) for b in blocks] == [(0, 3), (10, 2), (40, 1)]
    assert all(b.count <= 4 for b in blocks)


def test_signed_tenths_below_zero():
    # Read unsigned, -3.5 °C would show as 6550.1 °C: the bug the profile's type prevents.
    p = pt("t", 256, scale=0.1)
    assert decode_point(p, [0xFFDD], "big", "big") == -3.5
    assert decode_point(p, [215], "big", "big") == 21.5


@pytest.mark.parametrize(
    ("words", "word_order", "expected"),
    [([0x41AC, 0x0000], "big", 21.5), ([0x0000, 0x41AC], "little", 21.5)],
)
def test_float32_word_orders(words, word_order, expected):
    p = pt("f", 0, "float32")
    assert decode_point(p, words, "big", word_order) == expected


def test_short_response_is_a_codec_error():
    block = ReadBlock("holding", 256, 3, (pt("a", 256), pt("b", 258)))
    with pytest.raises(CodecError, match="short response"):
        decode_block(block, [1, 2])


def test_bits_decode():
    block = ReadBlock("coil", 536, 9, (pt("d", 536, "bool", "coil"), pt("c", 542, "bool", "coil")))
    bits = [True] + [False] * 5 + [True] + [False] * 9
    assert [v for _, v in decode_block(block, bits)] == [True, True]


def test_encode_rejects_out_of_range():
    with pytest.raises(CommandRejected):
        encode_point(pt("t", 1, scale=0.1), 5000.0)


types_ = st.sampled_from(["int16", "uint16", "int32", "uint32", "float32"])


@given(
    types_,
    st.sampled_from(["big", "little"]),
    st.sampled_from(["big", "little"]),
    st.integers(-30000, 30000),
)
def test_encode_decode_round_trip(type_, byte_order, word_order, n):
    if type_.startswith("uint"):
        n = abs(n)
    p = pt("x", 100, type_, scale=0.1)
    words = encode_point(p, n / 10, byte_order, word_order)
    assert decode_point(p, words, byte_order, word_order) == pytest.approx(n / 10, abs=1e-3)


@given(
    st.lists(st.one_of(st.integers(-(2**20), 2**20), st.booleans()), max_size=20),
    types_,
)
def test_garbage_registers_raise_codec_error_or_decode(values, type_):
    block = ReadBlock("holding", 0, 2, (pt("x", 0, type_),))
    try:
        out = decode_block(block, values)
    except CodecError:
        return
    assert len(out) == 1
