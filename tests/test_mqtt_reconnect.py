"""The broker goes away and comes back: the driver reconnects on its own backoff (moved by the
test's clock), re-subscribes, and QoS 1 messages published while it was away arrive (the
persistent session), then live readings resume."""

from __future__ import annotations

import asyncio
import json

from drivers.mqtt.broker import Mosquitto
from simulators.mqtt.devices import GenericSensorSim
from tests.helpers import until
from tests.peers import mqtt as peers

rig_factory = peers.rig_factory  # fixture


async def test_broker_restart_keeps_session_and_resumes(tmp_path, rig_factory, clock):
    broker = Mosquitto(tmp_path / "broker")
    broker.start()
    sims: list[GenericSensorSim] = []
    try:
        rig = await rig_factory(broker, [("cooler", "generic-json-sensor", "cooler-1")])
        sim = GenericSensorSim(broker.host, broker.port, "cooler-1", clock, seed=1)
        sims.append(sim)
        await sim.start()
        await sim.tick()
        await rig.wait_point("cooler", "temperature")
        await sim.stop()

        broker.stop()  # persistence (our session and its subscriptions) is saved on the way out
        link = rig.service.link
        await until(lambda: not link.connected, 10, "driver notices the broker is gone")
        health = rig.ctx.health.get("cooler")
        assert health is not None and not health.connected

        broker.start()
        # Published while the driver is still backing off: held by the broker for our session.
        late = GenericSensorSim(broker.host, broker.port, "cooler-1", clock, seed=2)
        sims.append(late)
        await late.start()
        sent = []
        for i in range(50):
            doc = late.reading() | {"ts": clock.time() - 1000 + i, "temperature": 100 + i}
            sent.append(doc["temperature"])
            await late.send(late.data_topic, json.dumps(doc))

        connects = link.connects
        while link.connects == connects:  # the backoff sleeps on the test's clock
            await clock.advance(5)
            await asyncio.sleep(0.05)  # let the connect thread run
        await until(
            lambda: {r.value for r in rig.collect() if r.point == "temperature"} >= set(sent),
            10,
            "queued messages delivered after reconnect",
        )
        got = [r.value for r in rig.collect() if r.point == "temperature" and r.value >= 100]
        assert got == sent  # all of them, once each, in order

        await clock.advance(30)
        await late.tick()  # live again: the re-subscribed topic delivers
        await rig.wait_point("cooler", "temperature", lambda r: r.value < 100)
        assert health.connected
    finally:
        for s in sims:
            await s.stop()
        broker.stop()
