"""Home Assistant export through MQTT discovery: every payload checked against Home Assistant's
documented discovery schema (keys, required keys, device and state classes, units, topic
shape), for every point of every profile and for arbitrary names (hypothesis); then a real
agent on a real Mosquitto, with Home Assistant played by an MQTT client: every point of the
venue announced (retained), live states, the birth message answered, the box's availability."""

from __future__ import annotations

import asyncio
import json
import queue
import re
from collections.abc import Iterator
from typing import Any

import jsonschema
import paho.mqtt.client as mqtt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion

from beerflow_edge.agent import Agent
from drivers.mqtt.broker import Mosquitto
from edge_agent.config.loader import load_config, load_config_text
from edge_agent.config.model import DeviceConfig, HomeAssistantSection, VenueSection
from edge_agent.errors import ValidationError
from edge_agent.messages import Reading
from firmware_profiles.loader import load_library
from integrations.homeassistant import discovery as d
from tests.conftest import MINIMAL_VENUE
from tests.helpers import until
from tests.peers.mqtt import mosquitto  # noqa: F401 - a fixture

# ---- Home Assistant's documented discovery schema ---------------------------------------------
# From the MQTT integration's documentation (mqtt.markdown: discovery, sensor, binary_sensor;
# the sensor and binary_sensor device class lists; the 2021 state-class posts). Unknown keys are
# ignored by Home Assistant, but we hold ourselves to the documented ones so a typo fails here.

COMMON_KEYS = {
    "availability", "availability_mode", "availability_template", "availability_topic",
    "default_entity_id", "device", "device_class", "enabled_by_default", "encoding",
    "entity_category", "expire_after", "force_update", "icon", "json_attributes_template",
    "json_attributes_topic", "name", "object_id", "origin", "payload_available",
    "payload_not_available", "platform", "qos", "state_topic", "unique_id", "value_template",
}  # fmt: skip
SENSOR_KEYS = COMMON_KEYS | {
    "unit_of_measurement", "state_class", "suggested_display_precision", "options",
    "last_reset_value_template",
}  # fmt: skip
BINARY_SENSOR_KEYS = COMMON_KEYS | {"payload_on", "payload_off", "off_delay"}
DEVICE_KEYS = {
    "identifiers", "connections", "name", "manufacturer", "model", "model_id", "sw_version",
    "hw_version", "serial_number", "suggested_area", "configuration_url", "via_device",
}  # fmt: skip
SENSOR_CLASSES = set(
    """apparent_power aqi area atmospheric_pressure battery blood_glucose_concentration
    carbon_dioxide carbon_monoxide conductivity current data_rate data_size date distance
    duration energy energy_storage enum frequency gas humidity illuminance irradiance moisture
    monetary nitrogen_dioxide nitrogen_monoxide nitrous_oxide ozone ph pm1 pm10 pm25 power
    power_factor precipitation precipitation_intensity pressure reactive_power signal_strength
    sound_pressure speed sulphur_dioxide temperature timestamp volatile_organic_compounds
    volatile_organic_compounds_parts voltage volume volume_flow_rate volume_storage water weight
    wind_direction wind_speed""".split()  # noqa: SIM905 - a word list reads better
)
BINARY_CLASSES = {
    "battery", "battery_charging", "carbon_monoxide", "cold", "connectivity", "door",
    "garage_door", "gas", "heat", "light", "lock", "moisture", "motion", "moving", "occupancy",
    "opening", "plug", "power", "presence", "problem", "running", "safety", "smoke", "sound",
    "tamper", "update", "vibration", "window",
}  # fmt: skip
# Device classes whose states only ever add up: "measurement" is not allowed for them.
NO_MEASUREMENT = {"energy", "gas", "water", "volume", "monetary"}

_id = {"type": "string", "pattern": "^[a-zA-Z0-9_-]+$"}
_topic = {"type": "string", "pattern": "^[^#+]+$"}
DEVICE = {
    "type": "object",
    "properties": {
        "identifiers": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        **{k: {"type": "string"} for k in DEVICE_KEYS - {"identifiers", "connections"}},
    },
    "required": ["identifiers", "name"],
    "additionalProperties": False,
}
AVAILABILITY = {
    "type": "array",
    "minItems": 1,
    "items": {
        "type": "object",
        "properties": {"topic": _topic, "payload_available": {"type": "string"}},
        "required": ["topic"],
        "additionalProperties": False,
    },
}


def schema(component: str) -> dict[str, Any]:
    keys = SENSOR_KEYS if component == "sensor" else BINARY_SENSOR_KEYS
    classes = SENSOR_CLASSES if component == "sensor" else BINARY_CLASSES
    props: dict[str, Any] = {k: {} for k in keys}
    props |= {
        "name": {"type": "string", "minLength": 1},
        "unique_id": _id,
        "object_id": _id,
        "state_topic": _topic,
        "device": DEVICE,
        "availability": AVAILABILITY,
        "availability_mode": {"enum": ["all", "any", "latest"]},
        "expire_after": {"type": "integer", "minimum": 0},
        "entity_category": {"enum": ["diagnostic"]},  # "config" is for controls, not sensors
        "qos": {"enum": [0, 1, 2]},
        "origin": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "sw_version": {"type": "string"},
                "support_url": {"type": "string"},
            },
            "required": ["name"],
            "additionalProperties": False,
        },
        "device_class": {"enum": sorted(classes)},
    }
    if component == "sensor":
        props["state_class"] = {"enum": ["measurement", "total", "total_increasing"]}
        props["unit_of_measurement"] = {"type": "string", "minLength": 1}
    return {
        "type": "object",
        "properties": props,
        "required": ["state_topic", "unique_id", "device"],
        "additionalProperties": False,
    }


def check_discovery(topic: str, payload: dict[str, Any], prefix: str = "homeassistant") -> str:
    """Validate one discovery message as Home Assistant reads it; returns the component."""
    m = re.fullmatch(rf"{re.escape(prefix)}/(sensor|binary_sensor)/([a-zA-Z0-9_-]+)/config", topic)
    assert m, f"not a discovery topic: {topic}"
    component, object_id = m.groups()
    jsonschema.validate(payload, schema(component))
    assert object_id == payload["unique_id"]  # best practice in the docs
    dc, sc, unit = (payload.get(k) for k in ("device_class", "state_class", "unit_of_measurement"))
    if dc in d.DEVICE_CLASS_UNITS:
        assert unit in d.DEVICE_CLASS_UNITS[dc] or (dc == "power_factor" and unit is None), payload
    if dc in NO_MEASUREMENT:
        assert sc in ("total", "total_increasing"), payload
    if payload.get("availability_mode") == "all" or "payload_available" in payload:
        assert "availability" in payload or "availability_topic" in payload
    return component


# ---- the codec ---------------------------------------------------------------------------------

HA = HomeAssistantSection(broker="local")
VENUE = VenueSection(id="the-crown", name="The Crown")


def test_every_point_of_every_profile_is_a_valid_entity() -> None:
    lib = load_library()
    seen = set()
    for profile in lib.profiles.values():
        dev = DeviceConfig(id="dev-1", profile=profile.id, zone="Kitchen")
        ents = d.device_entities(
            HA, VENUE, "box", dev, profile.vendor, profile.model, profile.points
        )
        assert [e.point for e in ents] == [p.name for p in profile.points]
        for e, p in zip(ents, profile.points, strict=True):
            component = check_discovery(e.config_topic, e.config)
            seen.add((p.kind, component, e.config.get("device_class")))
            if p.kind == "temperature":
                assert e.config["device_class"] == "temperature"
                assert e.config["unit_of_measurement"] == "°C"
                assert e.config["state_class"] == "measurement"
            if p.kind == "door_open":
                assert (component, e.config["device_class"]) == ("binary_sensor", "door")
            if p.kind == "energy":
                assert e.config["state_class"] == "total_increasing"
    # The library exercises the classes a kitchen needs.
    classes = {c for _, _, c in seen}
    assert {"temperature", "humidity", "power", "energy", "door", "running", "weight"} <= classes
    box = d.box_device(HA, VENUE, "the-crown")
    assert check_discovery(box.config_topic, box.config) == "binary_sensor"


def test_a_unit_home_assistant_does_not_accept_drops_the_class_not_the_point() -> None:
    ek = d.entity_kind("temperature", "K°")
    assert ek.device_class is None and ek.state_class == "measurement"
    assert d.entity_kind("rssi", "lqi").device_class is None
    assert d.entity_kind("no-such-kind", "x").component == "sensor"


class _Point:
    def __init__(self, name: str, kind: str, unit: str) -> None:
        self.name, self.kind, self.unit = name, kind, unit


_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30)
_slug = st.from_regex(r"[a-z0-9][a-z0-9._-]{0,20}", fullmatch=True)


@settings(max_examples=200, deadline=None)
@given(
    device=_slug,
    label=_text,
    zone=_text,
    point=st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True),
    kind=st.sampled_from([*d.KINDS, "unknown_kind"]),
    unit=st.sampled_from(["°C", "%", "W", "kWh", "L", "kg", "dBm", "s", "lqi", "", "bar"]),
    prefix=st.from_regex(r"[a-zA-Z0-9_-]{1,10}(/[a-zA-Z0-9_-]{1,10}){0,2}", fullmatch=True),
)
def test_any_names_give_valid_topics_and_payloads(
    device: str, label: str, zone: str, point: str, kind: str, unit: str, prefix: str
) -> None:
    ha = HomeAssistantSection(broker="b", discovery_prefix=prefix, base_topic=prefix)
    dev = DeviceConfig(id=device, profile="p", label=label, zone=zone)
    (e,) = d.device_entities(ha, VENUE, "box", dev, "Vendor", "Model", [_Point(point, kind, unit)])
    check_discovery(e.config_topic, e.config, prefix)
    assert json.loads(json.dumps(e.config)) == e.config
    for t in (e.state_topic, *(a["topic"] for a in e.config["availability"])):
        assert "+" not in t and "#" not in t and "//" not in t


@given(value=st.one_of(st.booleans(), st.integers(), st.floats(allow_nan=False), _text))
def test_state_payloads(value: Any) -> None:
    assert d.state_payload("binary_sensor", value) in ("ON", "OFF")
    s = d.state_payload("sensor", value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        assert float(s) == pytest.approx(value, rel=1e-6, abs=1e-6)
    assert d.state_payload("binary_sensor", "open") == "ON"
    assert d.state_payload("binary_sensor", 0) == "OFF"


def test_config_refuses_an_unknown_broker_and_a_wildcard_prefix() -> None:
    base = MINIMAL_VENUE + '\n[[brokers]]\nid = "local"\n'
    load_config_text(base + '\n[home_assistant]\nbroker = "local"\n', "venue.toml")
    with pytest.raises(ValidationError, match="unknown broker 'lan'"):
        load_config_text(base + '\n[home_assistant]\nbroker = "lan"\n', "venue.toml")
    with pytest.raises(ValidationError, match="discovery_prefix"):
        load_config_text(
            base + '\n[home_assistant]\nbroker = "local"\ndiscovery_prefix = "ha/#"\n',
            "venue.toml",
        )


# ---- end to end: an agent, Mosquitto, and Home Assistant played by a client -------------------


class HomeAssistantClient:
    """Subscribes like Home Assistant does; keeps every message (topic, payload, retained)."""

    def __init__(self, broker: Mosquitto, name: str) -> None:
        self.q: queue.Queue[tuple[str, bytes, bool]] = queue.Queue()
        self.messages: list[tuple[str, bytes, bool]] = []
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=name)
        self.c.on_message = lambda _c, _u, m: self.q.put((m.topic, m.payload, bool(m.retain)))
        self.c.connect(broker.host, broker.port)
        self.c.subscribe([("homeassistant/#", 1), ("beerflow/#", 1)])
        self.c.loop_start()

    def drain(self) -> list[tuple[str, bytes, bool]]:
        while True:
            try:
                self.messages.append(self.q.get_nowait())
            except queue.Empty:
                return self.messages

    def latest(self) -> dict[str, bytes]:
        return {t: p for t, p, _ in self.drain()}

    def count(self, topic: str) -> int:
        return sum(1 for t, _, _ in self.drain() if t == topic)

    def publish(self, topic: str, payload: str, retain: bool = False) -> None:
        self.c.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


@pytest.fixture
def ha_client(mosquitto: Mosquitto) -> Iterator[HomeAssistantClient]:
    c = HomeAssistantClient(mosquitto, "home-assistant")
    try:
        yield c
    finally:
        c.close()


def venue_text(broker: Mosquitto) -> str:
    return (
        MINIMAL_VENUE
        + f"""
[[brokers]]
id = "local"
host = "127.0.0.1"
port = {broker.port}
client_id = "crown-box"
keepalive_s = 5

[home_assistant]
broker = "local"
min_interval_s = 0

[[devices]]
id = "freezer-sensor"
label = "Walk-in freezer"
zone = "Cellar"
profile = "zigbee2mqtt-temperature-sensor"
broker = "local"
address = "freezer"

[[devices]]
id = "glasswasher-plug"
label = "Glasswasher"
zone = "Bar"
profile = "shelly-plus-plug-s"
broker = "local"
address = "shellyplugs-glasswasher"

[[devices]]
id = "spare-plug"
profile = "shelly-plus-plug-s"
broker = "local"
address = "shellyplugs-spare"
enabled = false
"""
    )


async def test_an_agent_announces_every_point_and_publishes_states(
    write_config: Any,
    mosquitto: Mosquitto,
    ha_client: HomeAssistantClient,
) -> None:
    cfg = load_config(write_config(venue_text(mosquitto)))
    lib = load_library()
    agent = Agent(cfg, lib)
    task = asyncio.create_task(agent.run(install_signals=False))
    ha = cfg.home_assistant
    assert ha is not None
    expected = {
        e.config_topic
        for dev in cfg.devices
        if dev.enabled
        for e in d.device_entities(
            ha, cfg.venue, cfg.venue.id, dev, "v", "m", lib.profiles[dev.profile].points
        )
    }
    box = "homeassistant/binary_sensor/beerflow_box_the-crown/config"
    try:
        await until(lambda: expected | {box} <= set(ha_client.latest()), 30, "every config")
        configs = {t: json.loads(p) for t, p in ha_client.latest().items() if t.endswith("/config")}
        assert set(configs) == expected | {box}  # the disabled plug is not exported
        n_points = sum(len(lib.profiles[dv.profile].points) for dv in cfg.devices if dv.enabled)
        assert len(expected) == n_points
        for topic, payload in configs.items():
            check_discovery(topic, payload)
        temp = configs["homeassistant/sensor/beerflow_the-crown_freezer-sensor_temperature/config"]
        assert temp["device"]["name"] == "Walk-in freezer"
        assert temp["device"]["suggested_area"] == "Cellar"
        assert temp["device"]["manufacturer"] and temp["device"]["model"]
        assert (temp["device_class"], temp["unit_of_measurement"]) == ("temperature", "°C")
        await until(
            lambda: ha_client.latest().get("beerflow/the-crown/status") == b"online", 30, "online"
        )

        # A device reports (once the driver is subscribed: the message is not retained);
        # Home Assistant sees the value on the entity's state topic.
        driver = agent.drivers.shared["mqtt"]["local"]
        await until(lambda: driver.link.connected, 30, "the MQTT driver subscribed")
        ha_client.publish(
            "zigbee2mqtt/freezer",
            json.dumps({"temperature": -18.5, "humidity": 40, "battery": 90, "linkquality": 120}),
        )
        state = temp["state_topic"]
        await until(lambda: ha_client.latest().get(state) == b"-18.5", 30, "state published")
        humid = "beerflow/the-crown/freezer-sensor/humidity"
        assert ha_client.latest()[humid] == b"40.0"  # the driver reads numbers as floats

        # Home Assistant restarts: its birth message gets every config again.
        before = ha_client.count(box)
        ha_client.publish("homeassistant/status", "online")
        await until(lambda: ha_client.count(box) > before, 30, "re-announced")
        await until(lambda: all(ha_client.count(t) >= 2 for t in expected), 30, "all again")

        # A Home Assistant that connects later gets everything from the retained messages.
        late = HomeAssistantClient(mosquitto, "late-home-assistant")
        try:
            await until(lambda: expected <= set(late.latest()), 30, "retained configs")
            await until(lambda: late.latest().get(state) == b"-18.5", 30, "retained state")
        finally:
            late.close()
    finally:
        agent.stop()
        assert await asyncio.wait_for(task, 30) == 0
    # A clean stop says goodbye: every entity shows unavailable.
    await until(
        lambda: ha_client.latest().get("beerflow/the-crown/status") == b"offline", 30, "offline"
    )


async def test_the_will_marks_the_box_offline_when_its_connection_dies(
    write_config: Any,
    mosquitto: Mosquitto,
    ha_client: HomeAssistantClient,
) -> None:
    from integrations.homeassistant.exporter import build_services

    cfg = load_config(write_config(venue_text(mosquitto)))
    agent = Agent(cfg, load_library())
    (svc,) = build_services(agent.context)
    assert (svc.name, svc.restart) == ("home-assistant", True)
    exporter = svc.run.__self__  # type: ignore[attr-defined]
    task = asyncio.create_task(svc.run())
    status = "beerflow/the-crown/status"
    try:
        await until(lambda: ha_client.latest().get(status) == b"online", 30, "online")
        # It reports progress to the supervisor's watchdog: readings taken off the bus.
        assert svc.liveness is not None
        before = svc.liveness.progress()
        await agent.bus.publish(Reading("freezer-sensor", "temperature", -17.0, 1.0, "°C"))
        await until(lambda: svc.liveness.progress() == before + 1, 30, "progress")
        assert not svc.liveness.busy()
        # The socket dies without a DISCONNECT (power cut, cable pulled): the broker sends the will.
        client = exporter.link._client
        assert client is not None
        sock = client.socket()
        assert sock is not None
        sock.close()
        await until(lambda: ha_client.latest().get(status) == b"offline", 30, "will")
        # And when the link comes back the box announces itself online again.
        await until(lambda: ha_client.latest().get(status) == b"online", 30, "back online")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
