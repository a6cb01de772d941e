"""Discovery hears the simulators' retained announcements and proposes loadable devices."""

from __future__ import annotations

from drivers.mqtt.discovery import discover, propose
from edge_agent.config.loader import load_config
from edge_agent.config.model import BrokerConfig
from simulators.mqtt.devices import (
    ShellyPlugSim,
    TasmotaPlugSim,
    Z2mPlugSim,
    Z2mSensorSim,
    publish_z2m_bridge,
)
from tests.conftest import MINIMAL_VENUE
from tests.peers import mqtt as peers

mosquitto = peers.mosquitto  # fixture


async def test_discover_shelly_tasmota_and_zigbee2mqtt(mosquitto, clock, write_config):
    h, p = mosquitto.host, mosquitto.port
    z_sensor = Z2mSensorSim(h, p, "Cellar Sensor", clock)
    z_plug = Z2mPlugSim(h, p, "glasswasher", clock)
    sims = [
        ShellyPlugSim(h, p, "shellyplusplugs-d1", clock),
        TasmotaPlugSim(h, p, "ice_maker", clock),
        z_sensor,
        z_plug,
    ]
    for s in sims:
        await s.start()
    try:
        await publish_z2m_bridge(z_plug, [z_sensor, z_plug])
        found = await discover(BrokerConfig("local", port=p), 0.5)
    finally:
        for s in sims:
            await s.stop()
    assert {(e["address"], e["profile"]) for e in found} >= {
        ("shellyplusplugs-d1", "shelly-plus-plug-s"),
        ("ice_maker", "tasmota-plug"),
        ("Cellar Sensor", "zigbee2mqtt-temperature-sensor"),
        ("glasswasher", "zigbee2mqtt-plug"),
    }
    # The proposals load as a venue config as they are.
    text = MINIMAL_VENUE + f'\n[[brokers]]\nid = "local"\nport = {p}\n'
    for e in found:
        text += "\n[[devices]]\n" + "".join(f'{k} = "{v}"\n' for k, v in e.items())
    cfg = load_config(write_config(text))
    assert "cellar-sensor" in {d.id for d in cfg.devices}


def test_propose_ignores_garbage():
    assert propose("zigbee2mqtt/bridge/devices", b"\xff{", "b") == []
    assert propose("zigbee2mqtt/bridge/devices", b'{"a":1}', "b") == []
    assert propose("kitchen/online", b"true", "b") == []


async def test_demo_part_runs_with_the_driver(tmp_path, clock, write_config):
    import asyncio

    from drivers.base import DriverContext
    from drivers.mqtt import factory
    from edge_agent.bus import Bus, Overflow
    from edge_agent.health import HealthRegistry
    from edge_agent.messages import Reading
    from firmware_profiles.loader import load_library
    from simulators.mqtt.demo import demo_part
    from tests.helpers import until

    part = await demo_part(str(tmp_path), clock)
    try:
        cfg = load_config(write_config(MINIMAL_VENUE + part.config_toml))
        lib = load_library()
        bus = Bus()
        sub = bus.subscribe("t", (Reading,), 10_000, Overflow.DROP_NEWEST)
        ctx = DriverContext(cfg, bus, clock, HealthRegistry())
        (svc,) = factory.build(ctx, [(d, lib.profiles[d.profile]) for d in cfg.devices])
        task = asyncio.create_task(svc.run())
        try:
            await until(lambda: ctx.shared["mqtt"]["demo-mqtt"].link.connected, 10, "connected")
            await clock.advance(10)
            await until(lambda: all((h.polls > 0) for h in ctx.health.all()), 10, "all devices")
            assert len(sub.channel) > 0
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    finally:
        await part.stop()
