"""The MQTT part of the demo venue: a private Mosquitto and a few plugs and sensors on it."""

from __future__ import annotations

import asyncio
import contextlib
import os

from drivers.mqtt.broker import Mosquitto
from edge_agent.clock import Clock
from simulators.demo_part import DemoPart
from simulators.mqtt.devices import (
    GenericSensorSim,
    ShellyPlugSim,
    SimDevice,
    TasmotaPlugSim,
    Z2mSensorSim,
)

TICK_S = 10.0


async def demo_part(workdir: str, clock: Clock) -> DemoPart:
    broker = Mosquitto(os.path.join(workdir, "mqtt-broker"))
    await asyncio.to_thread(broker.start)
    h, p = broker.host, broker.port
    devices: list[tuple[str, str, str, SimDevice]] = [
        (
            "coffee-machine",
            "shelly-plus-plug-s",
            "Coffee machine",
            ShellyPlugSim(h, p, "shellyplusplugs-c0ffee", clock, seed=11, appliance="Coffeemaker"),
        ),
        (
            "kettle",
            "tasmota-plug",
            "Kettle",
            TasmotaPlugSim(h, p, "kitchen_kettle", clock, seed=12, appliance="WaterKettle"),
        ),
        (
            "dessert-fridge",
            "zigbee2mqtt-temperature-sensor",
            "Dessert fridge",
            Z2mSensorSim(h, p, "dessert_fridge", clock, seed=13),
        ),
        (
            "bar-cooler",
            "generic-json-sensor",
            "Bar bottle cooler",
            GenericSensorSim(h, p, "bar-cooler", clock, seed=14),
        ),
    ]
    started: list[SimDevice] = []
    try:
        for *_, sim in devices:
            await sim.start()
            started.append(sim)
    except BaseException:
        for sim in started:
            await sim.stop()
        broker.stop()
        raise

    async def ticker() -> None:
        while True:
            for *_, sim in devices:
                await sim.tick()
            await clock.sleep(TICK_S)

    task = asyncio.create_task(ticker(), name="sim:mqtt")

    async def stop() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        for sim in started:
            await sim.stop()
        await asyncio.to_thread(broker.stop)

    toml = f'\n[[brokers]]\nid = "demo-mqtt"\nhost = "127.0.0.1"\nport = {p}\n'
    for dev_id, profile, label, sim in devices:
        toml += (
            f'\n[[devices]]\nid = "{dev_id}"\nprofile = "{profile}"\nlabel = "{label}"\n'
            f'broker = "demo-mqtt"\naddress = "{sim.address}"\n'
        )
    return DemoPart(toml, stop, f"MQTT: Mosquitto on 127.0.0.1:{p}, 2 plugs and 2 sensors")
