"""Every MQTT profile end to end: simulated devices on a real Mosquitto → the driver → typed
readings on the bus; commands round-trip through the simulators; availability (LWT) reaches
device health; garbage is counted, never fatal."""

from __future__ import annotations

import json

from simulators.mqtt.devices import (
    GenericSensorSim,
    ShellyPlugSim,
    TasmotaPlugSim,
    Z2mPlugSim,
    Z2mSensorSim,
)
from tests.helpers import until
from tests.peers import mqtt as peers

mosquitto = peers.mosquitto  # fixture
rig_factory = peers.rig_factory  # fixture


async def test_shelly_full_status_partial_overlay_command_and_lwt(mosquitto, rig_factory, clock):
    sim = ShellyPlugSim(
        mosquitto.host, mosquitto.port, "shellyplusplugs-a8032ab1c2d3", clock, seed=1
    )
    rig = await rig_factory(mosquitto, [("plug-1", "shelly-plus-plug-s", sim.address)])
    await sim.start()
    try:
        await rig.wait_point("plug-1", "online", lambda r: r.value is True)
        await sim.tick(full=True)
        await rig.wait_point("plug-1", "energy")
        pts = rig.points("plug-1")
        st = sim.status()
        assert pts["power"].value == st["apower"] and pts["power"].unit == "W"
        assert pts["energy"].value == st["aenergy"]["total"] and pts["energy"].unit == "Wh"
        assert pts["voltage"].value == st["voltage"] and pts["current"].unit == "A"
        assert pts["device_temp"].value == st["temperature"]["tC"]
        assert pts["relay_on"].value is True

        # A NotifyStatus with only apower: overlaid on the full status, stamped with its ts.
        await clock.advance(7.3)
        await sim.notify({"apower": 1234.5})
        await rig.wait_point("plug-1", "power", lambda r: r.value == 1234.5)
        partial = [r for r in rig.collect() if r.value == 1234.5]
        assert len(partial) == 1 and partial[0].ts == round(clock.time(), 2)
        dev = rig.service.devices[0]
        merged = dev.codec.state["status"]
        assert merged["apower"] == 1234.5 and merged["voltage"] == st["voltage"]
        assert merged["aenergy"]["total"] == st["aenergy"]["total"]

        # Switch.Set over RPC: the reply is correlated by id; the plug really switches off.
        result = await rig.command("plug-1", "switch", on=False)
        assert result.ok, result.error
        assert result.value is True  # was_on
        assert sim.model.on is False
        await rig.wait_point("plug-1", "relay_on", lambda r: r.value is False)
        bad = await rig.command("plug-1", "switch", on="maybe")
        assert not bad.ok and "true or false" in (bad.error or "")

        health = rig.ctx.health.get("plug-1")
        assert health is not None and health.connected
        await sim.crash()  # the broker publishes the last will: <id>/online false
        await rig.wait_point("plug-1", "online", lambda r: r.value is False)
        assert not health.connected and "offline" in (health.last_error or "")
    finally:
        await sim.stop()


async def test_tasmota_energy_units_power_command_and_lwt(mosquitto, rig_factory, clock):
    sim = TasmotaPlugSim(mosquitto.host, mosquitto.port, "kitchen_kettle", clock, seed=2)
    rig = await rig_factory(mosquitto, [("kettle", "tasmota-plug", sim.address)])
    await sim.start()
    try:
        await rig.wait_point("kettle", "online", lambda r: r.value is True)
        await sim.tick()
        await rig.wait_point("kettle", "energy")
        pts = rig.points("kettle")
        assert pts["energy"].value == round(round(sim.model.energy_wh / 1000, 3) * 1000, 6)
        assert pts["energy"].unit == "Wh" and pts["power"].unit == "W"
        assert pts["voltage"].value == round(sim.model.voltage)
        result = await rig.command("kettle", "switch", on=False)
        assert result.ok and result.value == "OFF"
        assert sim.model.on is False
        assert sim.commands[-1] == ("cmnd/kitchen_kettle/POWER", b"OFF")
        await rig.wait_point("kettle", "relay_on", lambda r: r.value == 0.0)
        result = await rig.command("kettle", "switch", on=True)
        assert result.ok and result.value == "ON" and sim.model.on
        await sim.crash()
        await rig.wait_point("kettle", "online", lambda r: r.value is False)
    finally:
        await sim.stop()


async def test_zigbee2mqtt_sensor_plug_availability_and_garbage(mosquitto, rig_factory, clock):
    sensor = Z2mSensorSim(mosquitto.host, mosquitto.port, "walk_in_fridge", clock, seed=3)
    plug = Z2mPlugSim(mosquitto.host, mosquitto.port, "toaster plug", clock, seed=4)
    rig = await rig_factory(
        mosquitto,
        [
            ("fridge-z", "zigbee2mqtt-temperature-sensor", sensor.address),
            ("toaster", "zigbee2mqtt-plug", plug.address),
        ],
    )
    await sensor.start()
    await plug.start()
    try:
        await sensor.tick()
        await rig.wait_point("fridge-z", "temperature")
        t = rig.points("fridge-z")["temperature"]
        assert t.unit == "°C" and t.value == round(sensor.fridge.state.room, 2)
        assert "humidity" in rig.points("fridge-z")

        await sensor.garbage()
        await sensor.send(sensor.data_topic, json.dumps({"temperature": "warm"}))
        health = rig.ctx.health.get("fridge-z")
        assert health is not None
        await until(lambda: health.malformed == 2, 10, "garbage counted")
        await clock.advance(60)
        await sensor.tick()
        await rig.wait_point("fridge-z", "temperature", lambda r: r.ts == clock.time())

        await sensor.go_offline()
        await rig.wait_point("fridge-z", "online", lambda r: r.value is False)
        assert not health.connected

        await plug.tick()
        await rig.wait_point("toaster", "energy")
        assert rig.points("toaster")["energy"].value == round(
            round(plug.model.energy_wh / 1000, 3) * 1000, 6
        )
        result = await rig.command("toaster", "switch", on=False)
        assert result.ok and result.value == "OFF" and not plug.model.on
        assert json.loads(plug.commands[-1][1]) == {"state": "OFF"}
    finally:
        await sensor.stop()
        await plug.stop()


async def test_generic_json_keeps_device_time_and_checks_command_range(
    mosquitto, rig_factory, clock
):
    sim = GenericSensorSim(
        mosquitto.host, mosquitto.port, "bar-cooler", clock, seed=5, time_offset_s=-120.0
    )
    rig = await rig_factory(mosquitto, [("cooler", "generic-json-sensor", sim.address)])
    await sim.start()
    try:
        await sim.tick()
        await rig.wait_point("cooler", "temperature")
        pts = rig.points("cooler")
        # Buffered on the device two minutes ago: stored at the device's time, not arrival.
        assert pts["temperature"].ts == round(clock.time() - 120.0, 3)
        assert pts["humidity"].ts == pts["temperature"].ts
        far = sim.reading() | {"ts": clock.time() + 86400}
        await sim.send(sim.data_topic, json.dumps(far))
        health = rig.ctx.health.get("cooler")
        assert health is not None
        await until(lambda: health.clock_skew == 1, 10, "future time counted")
        assert health.malformed == 0  # a wrong clock is not bad data
        # Receive time instead (nudged by a microsecond so no two readings share an instant),
        # the device's own time kept beside the values.
        await rig.wait_point("cooler", "device_time", lambda r: r.value == far["ts"])
        pts = rig.points("cooler")
        assert abs(pts["temperature"].ts - clock.time()) < 1e-3
        assert pts["device_time"].ts == pts["temperature"].ts and pts["device_time"].unit == "s"

        rejected = await rig.command("cooler", "set_setpoint", value=99.0)
        assert not rejected.ok and "maximum" in (rejected.error or "")
        unknown = await rig.command("cooler", "defrost")
        assert not unknown.ok and "unknown command" in (unknown.error or "")
        ok = await rig.command("cooler", "set_setpoint", value=4.5)
        assert ok.ok
        await until(lambda: len(sim.commands) == 1, 10, "command at the device")
        assert sim.commands[0] == ("sensors/bar-cooler/set", b'{"setpoint":4.5}')
    finally:
        await sim.stop()
