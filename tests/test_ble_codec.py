"""Pure BLE decoding: byte vectors for every format, dedupe rules, the history protocol, and
hypothesis garbage that must only ever raise CodecError."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.ble import history
from drivers.ble.advertisement import Advertisement
from drivers.ble.codec import BTHOME_UUID, ENV_SENSING_UUID, decode, matches
from drivers.ble.decoders.pvvx import decode_atc1441, decode_pvvx_custom
from drivers.ble.dedupe import Deduper
from drivers.ble.discovery import recognise
from drivers.errors import CodecError
from firmware_profiles.loader import load_library
from simulators.ble import payloads

LIB = load_library()
MAC = "A4:C1:38:12:34:56"


def section(profile_id: str):
    prof = LIB.get(profile_id)
    assert prof is not None and prof.ble is not None
    return prof.ble


def test_bthome_worked_example_from_domain_notes():
    adv = Advertisement(
        MAC, -60, service_data={BTHOME_UUID: bytes.fromhex("40005A015C02CA0903BF13")}
    )
    got = dict(decode(section("bthome-v2"), adv))
    assert got == {"temperature": 25.06, "humidity": 50.55, "battery": 92, "rssi": -60}


def test_bthome_door_weight_volume():
    raw = bytes.fromhex("400001" + "061027" + "1A01" + "47E803")
    got = dict(
        decode(section("bthome-v2"), Advertisement(MAC, -70, service_data={BTHOME_UUID: raw}))
    )
    assert got == {"door_open": True, "weight": 100.0, "volume": 100.0, "rssi": -70}


def test_bthome_encrypted_without_key_is_a_codec_error():
    adv = Advertisement(MAC, -60, service_data={BTHOME_UUID: bytes.fromhex("41" + "00" * 12)})
    with pytest.raises(CodecError):
        decode(section("bthome-v2"), adv)


def test_pvvx_custom_byte_vector():
    raw = bytes.fromhex("563412 38C1A4 2909 D711 860B 57 10 01".replace(" ", ""))
    assert decode_pvvx_custom(raw, MAC) == {
        "temperature": 23.45,
        "humidity": 45.67,
        "battery_voltage": 2.95,
        "battery": 87,
        "packet_id": 16,
        "reed_switch": True,
    }
    with pytest.raises(CodecError, match="MAC"):
        decode_pvvx_custom(raw, "A4:C1:38:00:00:00")


def test_atc1441_byte_vector_is_big_endian():
    raw = bytes.fromhex("A4C138123456 00EA 2D 57 0B86 10".replace(" ", ""))
    assert decode_atc1441(raw, MAC) == {
        "temperature": 23.4,
        "humidity": 45,
        "battery": 87,
        "battery_voltage": 2.95,
        "packet_id": 16,
    }
    neg = bytes.fromhex("A4C138123456 FFF6 2D 57 0B86 10".replace(" ", ""))
    assert decode_atc1441(neg)["temperature"] == -1.0


def test_govee_h5075_negative_temperature_flag():
    adv = Advertisement(MAC, -60, "GVH5075_1234", {0xEC88: payloads.govee_h5075(-12.3, 55.5, 64)})
    got = dict(decode(section("govee-h5075"), adv))
    assert got["temperature"] == -12.3 and got["humidity"] == 55.5 and got["battery"] == 64


def test_inkbird_company_id_is_the_temperature():
    company, body = payloads.inkbird(-18.5, 0, 77)
    adv = Advertisement(MAC, -60, "tps", {company: body})
    got = dict(decode(section("inkbird-ibs-th2"), adv))
    assert got["temperature"] == -18.5 and got["battery"] == 77


def test_kegtron_remaining_volume():
    adv = Advertisement(MAC, -60, "", {0xFFFF: payloads.kegtron(19550, 19550, 4550)})
    got = dict(decode(section("kegtron-kt"), adv))
    assert got == {
        "keg_size": 19.55,
        "volume_dispensed": 4.55,
        "volume_remaining": 15.0,
        "rssi": -60,
    }


def test_match_and_recognise_tell_pvvx_from_atc1441():
    profiles = [p for p in LIB.profiles.values() if p.transport == "ble"]
    custom = Advertisement(
        MAC,
        -60,
        service_data={ENV_SENSING_UUID: payloads.encode_pvvx_custom(MAC, 4, 80, 3000, 90, 1)},
    )
    atc = Advertisement(
        MAC, -60, service_data={ENV_SENSING_UUID: payloads.encode_atc1441(MAC, 4, 80, 90, 3000, 1)}
    )
    assert matches(section("xiaomi-lywsd03mmc-pvvx").match, custom)
    assert not matches(section("govee-h5075").match, custom)
    found_custom, found_atc = recognise(custom, profiles), recognise(atc, profiles)
    assert found_custom is not None and found_custom.id == "xiaomi-lywsd03mmc-pvvx"
    assert found_atc is not None and found_atc.id == "xiaomi-lywsd03mmc-atc1441"


def test_dedupe_packet_id_rules():
    d = Deduper(window_s=4.0)
    assert d.accept(0.0, 10, b"")
    assert not d.accept(1.0, 10, b"")  # repeat
    assert not d.accept(2.0, 9, b"")  # older
    assert not d.accept(3.0, 10 + 64, b"")  # too far ahead: stale or foreign
    assert d.accept(4.0, 11, b"")
    assert d.accept(4.5, 12, b"")
    assert d.accept(20.0, 12, b"")  # after a silence any id is new (sensor rebooted)
    w = Deduper(window_s=4.0, last_id=250, last_heard=0.0)
    assert w.accept(1.0, 3, b"")  # wraps mod 256


def test_dedupe_without_packet_id_republishes_steady_values_once_per_window():
    d = Deduper(window_s=60.0)
    assert d.accept(0.0, None, b"a")
    assert not d.accept(2.0, None, b"a")
    assert d.accept(3.0, None, b"b")
    assert not d.accept(50.0, None, b"b")
    assert d.accept(63.0, None, b"b")


def test_history_round_trip_and_chunking():
    recs = [history.LogRecord(1_750_000_000 + 600 * i, -18.5 + i, 50.0, 90) for i in range(45)]
    chunks = history.answer(recs, since=1_750_000_000)
    assert chunks[-1] == history.END and len(chunks) == 4  # 44 records: 20 + 20 + 4, end
    got = [r for c in chunks[:-1] for r in history.decode_records(c)]
    assert got == recs[1:]
    assert history.parse_request(history.request(123)) == 123


DECODER_PROFILES = sorted(p.id for p in LIB.profiles.values() if p.transport == "ble")


@settings(max_examples=300, deadline=None)
@given(
    profile_id=st.sampled_from(DECODER_PROFILES),
    name=st.sampled_from(["", "sps", "tps", "TP357 (1)", "GVH5075_1", "Govee_H5074_1"]),
    sd=st.dictionaries(
        st.sampled_from([BTHOME_UUID, ENV_SENSING_UUID]), st.binary(max_size=40), max_size=2
    ),
    md=st.dictionaries(
        st.sampled_from([0xEC88, 0xFFFF, 0x0000, 0xC2FF, 1234]), st.binary(max_size=40), max_size=2
    ),
    rssi=st.integers(-127, 20),
)
def test_garbage_adverts_raise_only_codec_error(profile_id, name, sd, md, rssi):
    adv = Advertisement(MAC, rssi, name, md, sd)
    try:
        points = decode(section(profile_id), adv)
    except CodecError:
        return
    assert all(isinstance(n, str) for n, _ in points)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_history_garbage_raises_only_codec_error(data):
    with contextlib.suppress(CodecError):
        history.decode_records(data)
    with contextlib.suppress(CodecError):
        history.parse_request(data)
