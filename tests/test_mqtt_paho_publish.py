"""The fast MQTT 5 PUBLISH decode agrees with paho's own on every packet, property-less or not
(and raises where paho raises)."""

from __future__ import annotations

import struct

from hypothesis import given
from hypothesis import strategies as st
from paho.mqtt import _packet
from paho.mqtt.enums import MQTTProtocolVersion

from drivers.mqtt import paho_publish

V5 = MQTTProtocolVersion.MQTTv5


def paho(header: int, packet: bytes) -> object:
    try:
        return paho_publish._paho_decode(header, packet, V5)._replace(properties=None)
    except Exception as exc:
        return type(exc)


def fast(header: int, packet: bytes) -> object:
    try:
        return paho_publish.decode_publish(header, packet, V5)._replace(properties=None)
    except Exception as exc:
        return type(exc)


@given(
    qos=st.integers(0, 2),
    flags=st.integers(0, 1),
    topic=st.binary(max_size=30),
    mid=st.integers(0, 65535),
    props=st.sampled_from([b"\x00", b"\x02\x01\x01", b"\x05\x02\x00\x00\x00\x3c", b"\x01"]),
    payload=st.binary(max_size=60),
)
def test_fast_decode_equals_paho_for_well_formed_packets(qos, flags, topic, mid, props, payload):
    header = 0x30 | (qos << 1) | flags
    packet = struct.pack("!H", len(topic)) + topic
    if qos:
        packet += struct.pack("!H", mid)
    packet += props + payload
    assert fast(header, packet) == paho(header, packet)
    if props == b"\x00" and topic:
        assert paho_publish.decode_publish(header, packet, V5).properties is paho_publish.EMPTY


@given(header=st.integers(0x30, 0x3F), packet=st.binary(max_size=40))
def test_fast_decode_equals_paho_for_any_bytes(header, packet):
    assert fast(header, packet) == paho(header, packet)


def test_installed_in_paho():
    import drivers.mqtt.link  # noqa: F401 - installs it

    assert _packet.decode_publish is paho_publish.decode_publish
