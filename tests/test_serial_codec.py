"""The pure MT-SICS codec and the point fan-out: byte vectors from the command reference, and
any bytes at all give a reply or a CodecError, never a crash."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.errors import CodecError, CommandRejected
from drivers.serial.mtsics import (
    Done,
    OutOfRange,
    Refused,
    ScaleError,
    Weight,
    decode_reply,
    encode_request,
    parse_identity,
    reply_matches,
)
from drivers.serial.points import Keg, fan_out, keg_for, to_unit, weight_in
from edge_agent.messages import Quality
from firmware_profiles.loader import load_library


@pytest.mark.parametrize(
    ("line", "reply"),
    [
        (b"S S     100.00 g\r\n", Weight("S", 100.0, "g", True, 2)),
        (b"S D      12.345 kg", Weight("S", 12.345, "kg", False, 3)),
        (b"S S     -0.50 lb\r\n", Weight("S", -0.5, "lb", True, 2)),
        (b"T S      50.00 g\r\n", Weight("T", 50.0, "g", True, 2)),
        (b"TI D      5.1 g\r\n", Weight("TI", 5.1, "g", False, 1)),
        (b"S S        12 g\r\n", Weight("S", 12.0, "g", True, 0)),
        (b"S +\r\n", OutOfRange("S", over=True)),
        (b"S -\r\n", OutOfRange("S", over=False)),
        (b"Z A\r\n", Done("Z")),
        (b"ZI S\r\n", Done("ZI")),
        (b'I2 A "WMS 6.0 kg"\r\n', Done("I2", "WMS 6.0 kg")),
        (b'I4 A "B123"\r\n', Done("I4", "B123")),
        (b"T I\r\n", Refused("T", busy=True)),
        (b"D L\r\n", Refused("D", busy=False)),
        (b"ES\r\n", ScaleError("syntax")),
        (b"ET\r\n", ScaleError("transmission")),
        (b"EL\r\n", ScaleError("logic")),
    ],
)
def test_replies_decode(line, reply):
    assert decode_reply(line) == reply


@pytest.mark.parametrize(
    "line",
    [
        b"",
        b"S",
        b"S X 1 g",
        b"S S 1.2.3 g",
        b"S S 12 g extra",
        b"S S g",
        b"S + 12 g",
        b"s s 1 g",
        b"S S \xff g",
        b"S S 1\tg",
        b"EX",
    ],
)
def test_malformed_replies_are_codec_errors(line):
    with pytest.raises(CodecError):
        decode_reply(line)


def test_requests_encode_and_refuse_what_the_scale_cannot_parse():
    assert encode_request("SI") == b"SI\r\n"
    assert encode_request("@") == b"@\r\n"
    assert encode_request("TA", "12.5", "g") == b"TA 12.5 g\r\n"
    for bad in ("si", "S\r\nZ", "", "TOOLONGCMD"):
        with pytest.raises(CommandRejected):
            encode_request(bad)
    with pytest.raises(CommandRejected):
        encode_request("TA", 'x"')


def test_replies_match_their_request():
    assert reply_matches(b"SI\r\n", Weight("S", 1, "g", True))
    assert reply_matches(b"T\r\n", Weight("T", 1, "g", True))
    assert not reply_matches(b"T\r\n", Weight("S", 1, "g", True))  # a late poll reply
    assert reply_matches(b"Z\r\n", ScaleError("syntax"))


def test_identity():
    assert parse_identity("WMS-Bench 6.0 kg") == ("WMS-Bench", 6.0, "kg")
    assert parse_identity("odd") == ("odd", None, None)


@given(st.binary(max_size=80))
def test_any_bytes_decode_or_raise_codec_error(data):
    try:
        reply = decode_reply(data)
    except CodecError:
        return
    assert isinstance(reply, Weight | OutOfRange | Done | Refused | ScaleError)


@given(
    st.sampled_from(["S", "SI", "T", "Z", "I2"]),
    st.sampled_from(["S", "D", "A", "I", "+", "-"]),
    st.text(alphabet=' 0123456789.-+gkl"AZ', max_size=20),
)
def test_reply_shaped_lines_never_crash(cmd, status, rest):
    with contextlib.suppress(CodecError):
        decode_reply(f"{cmd} {status} {rest}\r\n".encode())


def test_units_convert_and_unknown_units_are_codec_errors():
    assert to_unit(1500, "g", "kg") == 1.5
    assert to_unit(1, "lb", "g") == pytest.approx(453.59237)
    with pytest.raises(CodecError):
        to_unit(1, "ct", "kg")


def test_keg_litres_and_device_overrides():
    keg_profile = load_library().profiles["keg-scale-mtsics"].serial
    assert keg_profile is not None
    default = keg_for(keg_profile.keg, {})
    assert default == Keg(13.0, 1.01, 50.0, 0.02)
    assert default.litres(13.0 + 20 * 1.01) == pytest.approx(20.0)
    assert default.litres(12.9) == 0.0  # drift under the empty keg's tare
    assert default.litres(90.0) == 50.0  # never more than the keg holds
    own = keg_for(keg_profile.keg, {"keg_tare_kg": 9.5, "density_kg_per_l": 1.04})
    assert own is not None and own.litres(9.5 + 10.4) == pytest.approx(10.0)


def test_fan_out_marks_settling_weights_uncertain_and_out_of_range_as_flags():
    section = load_library().profiles["keg-scale-mtsics"].serial
    assert section is not None
    keg = keg_for(section.keg, {})
    out = fan_out(Weight("S", 53400, "g", False), section, keg, "k", 1.0, 53.5)
    by = {r.point: r for r in out.readings}
    assert by["weight"].value == 53.4 and by["weight"].quality is Quality.UNCERTAIN
    assert by["litres_remaining"].value == 40.0
    assert by["pouring"].value is True and by["stable"].value is False
    out = fan_out(OutOfRange("S", over=True), section, keg, "k", 2.0, 53.4)
    assert {r.point: r.value for r in out.readings} == {"overload": True}
    assert out.load == "overload" and out.weight_kg is None
    with pytest.raises(CodecError):
        fan_out(Weight("S", 1, "ct", True), section, keg, "k", 3.0, None)


def test_grams_keep_the_scales_resolution_in_kilograms():
    section = load_library().get("mettler-toledo-mtsics").serial  # type: ignore[union-attr]
    out = fan_out(decode_reply(b"S S     12.30 g\r\n"), section, None, "s", 1.0, None)  # type: ignore[arg-type]
    (weight,) = [r for r in out.readings if r.point == "weight"]
    assert weight.value == 0.0123 and weight.unit == "kg"


@given(
    st.integers(-(10**7), 10**7),
    st.integers(0, 4),
    st.sampled_from(["g", "kg"]),
)
def test_a_weight_in_grams_or_kilograms_keeps_every_digit_sent(mantissa, decimals, unit):
    from decimal import Decimal

    text = f"{Decimal(mantissa).scaleb(-decimals):.{decimals}f}"
    reply = decode_reply(f"S S {text:>10} {unit}\r\n".encode())
    assert isinstance(reply, Weight) and reply.decimals == decimals
    kg = weight_in(reply, "kg")
    exact = Decimal(text) / (1000 if unit == "g" else 1)
    assert Decimal(repr(kg)) == exact
