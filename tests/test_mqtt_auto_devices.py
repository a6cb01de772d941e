"""Wildcard device topics: one `auto_devices` entry subscribes the profile's `{device}` level as
a wildcard and makes a device of each new value, up to a cap and only those allowed, against
a real Mosquitto."""

from __future__ import annotations

import asyncio
import json

import pytest

from drivers.base import DriverContext
from drivers.mqtt.service import BrokerService, device_id_for, mqtt_matches
from drivers.registry import build_services
from edge_agent.bus import Bus, Overflow
from edge_agent.config.loader import load_config
from edge_agent.errors import ValidationError
from edge_agent.health import HealthRegistry
from edge_agent.messages import Command, Reading
from firmware_profiles.loader import load_library
from simulators.mqtt.devices import GenericSensorSim
from tests.conftest import MINIMAL_VENUE
from tests.helpers import until
from tests.peers import mqtt as peers

mosquitto = peers.mosquitto  # fixture


def config_text(port: int, client: str) -> str:
    return MINIMAL_VENUE + (
        f'\n[[brokers]]\nid = "local"\nport = {port}\nclient_id = "{client}"\nkeepalive_s = 5\n'
        '[[brokers.auto_devices]]\nprofile = "generic-json-sensor"\nmax_devices = 2\n'
        'allow = ["fridge*", "Walk-in*"]\nzone = "kitchen"\n'
        # A configured device the wildcard also covers: still one subscription, one reading.
        '\n[[devices]]\nid = "bar"\nprofile = "generic-json-sensor"\nbroker = "local"\n'
        'address = "bar-cooler"\n'
    )


async def test_devices_appear_from_a_wildcard_up_to_the_cap_and_the_allow_list(
    mosquitto, write_config, clock
):
    cfg = load_config(write_config(config_text(mosquitto.port, "auto-box")))
    lib = load_library()
    bus = Bus()
    sub = bus.subscribe("t", (Reading,), 100_000, Overflow.DROP_NEWEST)
    health = HealthRegistry()
    ctx = DriverContext(cfg, bus, clock, health, profiles=lib.profiles)
    (svc,) = build_services(ctx, [(d, lib.profiles[d.profile]) for d in cfg.devices])
    service: BrokerService = ctx.shared["mqtt"]["local"]
    assert service.link.subscriptions == {"sensors/+/state": 1, "sensors/+/status": 1}
    task = asyncio.create_task(svc.run())
    sims = {
        name: GenericSensorSim(mosquitto.host, mosquitto.port, name, clock, seed=i)
        for i, name in enumerate(
            ["Walk-in Fridge", "fridge-2", "fridge-3", "freezer-1", "bar-cooler"]
        )
    }
    got: list[Reading] = []

    def readings(device: str) -> list[Reading]:
        while len(sub.channel):
            item = sub.channel.drop_oldest()
            if item is not None:
                got.append(item)
        return [r for r in got if r.device_id == device and r.point == "temperature"]

    try:
        await until(lambda: service.link.connected, 10, "connected")
        for name in ["Walk-in Fridge", "fridge-2", "fridge-3", "freezer-1", "bar-cooler"]:
            await sims[name].start()
            await sims[name].send(sims[name].data_topic, json.dumps({"temperature": 3.0}))
        await until(lambda: service.link.handled >= service.link.received > 8, 10, "handled")
        await until(lambda: bool(readings("bar")), 10, "the configured device")
        # The first two allowed names became devices (ids are slugs of the topic level).
        assert sorted(ctx.added) == ["fridge-2", "walk-in-fridge"]
        assert ctx.added["walk-in-fridge"].address == "Walk-in Fridge"
        assert ctx.added["walk-in-fridge"].zone == "kitchen"
        assert len(readings("walk-in-fridge")) == 1 and len(readings("fridge-2")) == 1
        h = health.get("walk-in-fridge")
        assert h is not None and h.connected
        # fridge-3 is over the cap, freezer-1 is not allowed: counted, not devices.
        assert readings("fridge-3") == [] and readings("freezer-1") == []
        (group,) = service.auto
        assert group.refused >= 2  # their data and their retained 'online'
        assert len(readings("bar")) == 1  # not twice through two subscriptions
        await sims["fridge-2"].send(sims["fridge-2"].data_topic, json.dumps({"temperature": 5.0}))
        await until(lambda: len(readings("fridge-2")) == 2, 10, "second reading")
        # A device made at run time takes commands like a configured one.
        now = clock.time()
        cmd = Command("c1", "fridge-2", "set_setpoint", {"value": 4.5}, "test", now, now + 60)
        result = await ctx.commanders["fridge-2"].execute(cmd)
        assert result.ok, result.error
        await until(lambda: len(sims["fridge-2"].commands) == 1, 10, "command at the device")
        assert sims["fridge-2"].commands[0] == ("sensors/fridge-2/set", b'{"setpoint":4.5}')
    finally:
        for sim in sims.values():
            await sim.stop()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_auto_devices_profile_must_be_an_mqtt_profile(write_config):
    text = MINIMAL_VENUE + (
        '\n[[brokers]]\nid = "local"\n[[brokers.auto_devices]]\nprofile = "dixell-xr77u"\n'
    )
    with pytest.raises(ValidationError) as err:
        load_config(write_config(text))
    assert "not an MQTT profile" in str(err.value) and "auto_devices" in str(err.value)


@pytest.mark.parametrize(
    ("sub", "topic", "match"),
    [
        ("sensors/+/state", "sensors/a/state", True),
        ("sensors/+/state", "sensors/a/b/state", False),
        ("sensors/#", "sensors/a/b", True),
        ("sensors/+/state", "sensors/a/status", False),
    ],
)
def test_filter_matching(sub, topic, match):
    assert mqtt_matches(sub, topic) is match


def test_device_ids_from_topic_levels():
    assert device_id_for("", "Walk-in Fridge") == "walk-in-fridge"
    assert device_id_for("z-", "0x00158d0001a2b3c4") == "z-0x00158d0001a2b3c4"
    assert device_id_for("", "***") == ""
