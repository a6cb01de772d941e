"""The pure MQTT codecs: topic + payload → values per profile, partial-update overlays,
timestamps, command rendering and reply judging; garbage anywhere → CodecError, never a crash."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.errors import CodecError, CommandRejected
from drivers.mqtt.codec import (
    MISSING,
    DeviceCodec,
    compile_path,
    deep_merge,
    parse_timestamp,
    resolve,
    walk,
)
from drivers.mqtt.command_codec import judge_reply, render
from drivers.mqtt.service import MqttDevice
from edge_agent.config.model import DeviceConfig
from edge_agent.health import DeviceHealth
from firmware_profiles.loader import load_library

LIB = load_library()
MQTT_PROFILES = [p for p in LIB if p.transport == "mqtt"]


def codec(profile_id: str, address: str = "dev1") -> DeviceCodec:
    p = LIB.profiles[profile_id]
    assert p.mqtt is not None
    return DeviceCodec(p.mqtt, address)


def values(decoded) -> dict:  # type: ignore[no-untyped-def]
    return {p.name: v for p, v in decoded.values}


def test_resolve_paths_and_deep_merge():
    doc = {"a": {"b": [1, {"c": 2}]}, "switch:0": {"x": 1}}
    assert resolve(doc, "a.b.0") == 1 and resolve(doc, "a.b.1.c") == 2
    assert resolve(doc, "switch:0.x") == 1 and resolve(doc, "") is doc
    assert resolve(doc, "a.z") is MISSING and resolve(doc, "a.b.9") is MISSING
    base = {"apower": 1.0, "aenergy": {"total": 5.0, "by_minute": [1, 2, 3]}}
    merged = deep_merge(base, {"aenergy": {"by_minute": [4, 5, 6]}, "apower": 2.0})
    assert merged == {"apower": 2.0, "aenergy": {"total": 5.0, "by_minute": [4, 5, 6]}}
    assert base["apower"] == 1.0  # pure: the base is not changed


def test_shelly_full_status_then_partial_overlay():
    c = codec("shelly-plus-plug-s", "shellyplusplugs-1")
    full = {
        "id": 0,
        "output": True,
        "apower": 106.3,
        "voltage": 230.3,
        "current": 0.667,
        "aenergy": {"total": 267.813, "by_minute": [1, 2, 3]},
        "temperature": {"tC": 43.3},
    }
    d = c.decode("shellyplusplugs-1/status/switch:0", json.dumps(full).encode(), 1000.0)
    assert values(d) == {
        "relay_on": True,
        "power": 106.3,
        "energy": 267.813,
        "voltage": 230.3,
        "current": 0.667,
        "device_temp": 43.3,
    }
    assert d.ts is None
    note = {
        "method": "NotifyStatus",
        "params": {
            "ts": 990.5,
            "switch:0": {"id": 0, "apower": 1234.5, "aenergy": {"by_minute": [9, 9, 9]}},
        },
    }
    d = c.decode("shellyplusplugs-1/events/rpc", json.dumps(note).encode(), 1000.0)
    assert values(d) == {"power": 1234.5}  # only what the device reported
    assert d.ts == 990.5
    assert c.state["status"]["aenergy"] == {"total": 267.813, "by_minute": [9, 9, 9]}
    assert c.state["status"]["voltage"] == 230.3
    event = {"method": "NotifyEvent", "params": {"ts": 1.0, "events": []}}
    assert c.decode("shellyplusplugs-1/events/rpc", json.dumps(event).encode(), 1000.0).values == ()
    other = {"method": "NotifyStatus", "params": {"ts": 1.0, "wifi": {"rssi": -60}}}
    assert c.decode("shellyplusplugs-1/events/rpc", json.dumps(other).encode(), 1000.0).values == ()
    assert c.decode("shellyplusplugs-1/online", b"false", 1000.0).online is False


def test_tasmota_sensor_power_text_and_lwt():
    c = codec("tasmota-plug", "kettle")
    doc = {
        "Time": "2023-05-19T20:52:56",
        "ENERGY": {"Total": 514.153, "Power": 56, "Voltage": 234, "Current": 0.392, "Factor": 0.61},
    }
    v = values(c.decode("tele/kettle/SENSOR", json.dumps(doc).encode(), 0.0 + 1e9))
    assert v == {
        "power": 56.0,
        "energy": 514153.0,
        "voltage": 234.0,
        "current": 0.392,
        "power_factor": 0.61,
    }
    assert values(c.decode("stat/kettle/POWER", b"OFF", 1e9)) == {"relay_on": 0.0}
    d = c.decode("tele/kettle/LWT", b"Offline", 1e9)
    assert d.online is False and values(d) == {"online": False}
    with pytest.raises(CodecError):
        c.decode("tele/kettle/LWT", b"Sleeping", 1e9)
    d = c.decode("stat/kettle/POWER", b"MAYBE", 1e9)
    assert d.values == () and d.problems


def test_z2m_availability_json_and_legacy_text():
    c = codec("zigbee2mqtt-temperature-sensor", "fridge 1")
    assert c.decode("zigbee2mqtt/fridge 1/availability", b'{"state":"online"}', 1.0).online
    assert c.decode("zigbee2mqtt/fridge 1/availability", b"offline", 1.0).online is False
    d = c.decode("zigbee2mqtt/fridge 1", b'{"temperature":3.8,"humidity":61,"battery":null}', 1.0)
    assert values(d) == {"temperature": 3.8, "humidity": 61.0}


@pytest.mark.parametrize(
    ("raw", "fmt", "expected"),
    [
        (1750000000.5, "unix", 1750000000.5),
        (1750000000500, "unix_ms", 1750000000.5),
        ("2025-06-15T15:06:40Z", "iso8601", 1750000000.0),
        ("2025-06-15T16:06:40+01:00", "iso8601", 1750000000.0),
        ("2025-06-15T15:06:40", "iso8601", 1750000000.0),
    ],
)
def test_timestamps(raw, fmt, expected):
    assert parse_timestamp(raw, fmt) == expected


@pytest.mark.parametrize(
    ("raw", "fmt"),
    [
        (True, "unix"),
        ("x", "unix"),
        (-1, "unix"),
        (math.inf, "unix"),
        (5, "iso8601"),
        ("soon", "iso8601"),
    ],
)
def test_bad_timestamps(raw, fmt):
    with pytest.raises(CodecError):
        parse_timestamp(raw, fmt)


def test_commands_render_and_replies():
    shelly = LIB.profiles["shelly-plus-plug-s"].mqtt
    tasmota = LIB.profiles["tasmota-plug"].mqtt
    assert shelly is not None and tasmota is not None
    sw = shelly.commands[0]
    r = render(sw, {"on": False}, rpc_id=7, src="box")
    assert json.loads(r.payload) == {
        "id": 7,
        "src": "box",
        "method": "Switch.Set",
        "params": {"id": 0, "on": False},
    }
    assert not judge_reply(sw, r, b'{"id":6,"result":{"was_on":true}}', 7).done
    ok = judge_reply(sw, r, b'{"id":7,"src":"s","result":{"was_on":true}}', 7)
    assert ok.done and ok.ok and ok.value is True
    err = judge_reply(sw, r, b'{"id":7,"error":{"code":-105,"message":"bad"}}', 7)
    assert err.done and not err.ok and "bad" in (err.error or "")
    tsw = tasmota.commands[0]
    r = render(tsw, {"on": True})
    assert r.payload == "ON" and r.expect == "ON"
    assert not judge_reply(tsw, r, b'{"POWER":"OFF"}', 0).done
    assert judge_reply(tsw, r, b'{"POWER":"ON"}', 0).ok
    for args in ({}, {"on": 1}, {"on": True, "extra": 1}):
        with pytest.raises(CommandRejected):
            render(tsw, args)
    gen = LIB.profiles["generic-json-sensor"].mqtt
    assert gen is not None
    for bad in (30.5, math.nan, "4", True):
        with pytest.raises(CommandRejected):
            render(gen.commands[0], {"value": bad})
    assert render(gen.commands[0], {"value": -30}).payload == '{"setpoint":-30.0}'


json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


def _payloads() -> st.SearchStrategy[bytes]:
    return st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode())


@settings(max_examples=300, deadline=None)
@given(data=st.data(), payload=_payloads())
def test_garbage_at_every_topic_of_every_profile_is_a_codec_error(data, payload):
    profile = data.draw(st.sampled_from(MQTT_PROFILES))
    c = DeviceCodec(profile.mqtt, "dev1")
    topic = data.draw(st.sampled_from(sorted(c.topics)))
    try:
        d = c.decode(topic, payload, 1_750_000_000.0)
    except CodecError:
        return
    for _, v in d.values:
        assert isinstance(v, bool | float) and (isinstance(v, bool) or math.isfinite(v))


@settings(max_examples=200, deadline=None)
@given(data=st.data(), payload=_payloads())
def test_garbage_replies_never_crash(data, payload):
    profile = data.draw(st.sampled_from([p for p in MQTT_PROFILES if p.mqtt.commands]))
    spec = profile.mqtt.commands[0]
    try:
        r = render(spec, {a.name: data.draw(json_values) for a in spec.args}, 1, "box")
    except CommandRejected:
        r = render(spec, {a.name: True if a.type == "bool" else 1.0 for a in spec.args}, 1, "box")
    judge_reply(spec, r, payload, 1)


def _resolve_reference(doc, path):  # type: ignore[no-untyped-def]
    """The plain definition of a dotted path, split on every call (what walk() precompiles)."""
    if not path:
        return doc
    cur = doc
    for part in path.split("."):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.isascii() and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            return MISSING
    return cur


@settings(max_examples=300, deadline=None)
@given(
    doc=json_values,
    path=st.lists(st.sampled_from(["a", "b", "0", "1", "10", "x:0", ""]), max_size=4).map(".".join),
)
def test_precompiled_paths_agree_with_the_plain_definition(doc, path):
    assert walk(doc, compile_path(path)) is _resolve_reference(doc, path)
    assert resolve(doc, path) is _resolve_reference(doc, path)


def test_json_numbers_that_are_no_finite_float_are_counted_and_the_rest_still_read():
    c = codec("generic-json-sensor", "s1")
    # NaN (the fast parser refuses it, json takes it) and an integer beyond any float.
    payload = b'{"temperature": NaN, "humidity": 1' + b"0" * 400 + b', "battery": 90}'
    d = c.decode("sensors/s1/state", payload, 1e9)
    assert values(d) == {"battery": 90.0}
    assert len(d.problems) == 2 and "not a finite number" in d.problems[0]
    assert "out of range" in d.problems[1]


def test_integers_become_floats_and_scaling_still_applies():
    c = codec("generic-json-sensor", "s1")
    d = c.decode("sensors/s1/state", b'{"temperature": 4, "humidity": 61.5, "battery": true}', 1e9)
    v = values(d)
    assert v == {"temperature": 4.0, "humidity": 61.5, "battery": True}
    assert type(v["temperature"]) is float and type(v["battery"]) is bool
    tas = codec("tasmota-plug", "kettle")
    doc = {"ENERGY": {"Total": 514.153, "Power": 7}}
    got = values(tas.decode("tele/kettle/SENSOR", json.dumps(doc).encode(), 1e9))
    assert got["energy"] == 514153.0 and got["power"] == 7.0


def test_the_fast_reading_builder_makes_the_same_frozen_reading():
    import dataclasses

    from drivers.mqtt.service import make_reading
    from edge_agent.messages import Quality, Reading

    r = make_reading("fridge", "air", 3.5, 1e9, "°C")
    assert type(r) is Reading and r == Reading("fridge", "air", 3.5, 1e9, "°C", Quality.GOOD)
    assert hash(r) == hash(Reading("fridge", "air", 3.5, 1e9, "°C"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.value = 4.0  # type: ignore[misc]


def test_a_device_clock_years_behind_is_stamped_on_arrival_and_kept_beside():
    """A Shelly whose clock never synced: its partial status says 2023 while the box says
    2026. Readings get the arrival time (so the live views show the newest value), the
    device's time is kept as the point device_time, and it is clock skew, not malformed."""
    section = LIB.profiles["shelly-plus-plug-s"].mqtt
    assert section is not None
    health = DeviceHealth("plug", "mqtt")
    dev = MqttDevice(
        DeviceConfig(id="plug", profile="shelly-plus-plug-s", address="p1", broker="b"),
        section,
        health,
    )
    now = 1_790_000_000.0
    stale = now - 3 * 365 * 86400
    note = {"method": "NotifyStatus", "params": {"ts": stale, "switch:0": {"apower": 55.5}}}
    got = {r.point: r for r in dev.handle("p1/events/rpc", json.dumps(note).encode(), now)}
    assert got["power"].value == 55.5 and got["power"].ts == now
    assert got["device_time"].value == stale and got["device_time"].ts == now
    assert health.clock_skew == 1 and health.malformed == 0
    # Within max_past_skew_s (300 s) the device's own time is kept.
    note["params"]["ts"] = now - 120
    got = {r.point: r for r in dev.handle("p1/events/rpc", json.dumps(note).encode(), now + 1)}
    assert got["power"].ts == now - 120 and "device_time" not in got
    assert health.clock_skew == 1
