"""GATT against the BlueZ mock: live notifications re-subscribed after a peripheral-initiated
disconnect and reconnect; history backfilled with original timestamps, marked BACKFILLED."""

from __future__ import annotations

import asyncio
import contextlib

from drivers.ble import history
from drivers.ble.gatt import GattSession
from edge_agent.messages import Quality
from simulators.ble.gatt_logger import SimLogger
from simulators.ble.sensors import SimSensor
from tests.helpers import until
from tests.peers import ble as ble_peer
from tests.peers.ble import ADAPTER, Rig

bluez_bus = ble_peer.bluez_bus
bluez = ble_peer.bluez

MAC = "A4:C1:38:00:50:01"


async def test_notify_resubscribed_after_reconnect_and_history_backfilled(bluez):
    async with Rig([(MAC, "beerflow-sim-logger")]) as rig:
        sensor = rig.sensors[0]
        gatt = sensor.section.gatt
        assert gatt is not None
        sim = SimSensor(bluez, ADAPTER, MAC, "bthome", seed=5)
        await sim.add()
        logger = SimLogger(bluez, sim.path, gatt)
        await logger.add()
        now = int(rig.clock.time())
        # the box was down for two hours; the logger kept a record every 10 minutes
        logger.records = [
            history.LogRecord(now - 7200 + 600 * i, 3.0 + i / 10, 80.0, 90) for i in range(12)
        ]
        session = GattSession(sensor, rig.scan, rig.bus, rig.clock)
        task = asyncio.create_task(session.run())
        try:
            await sim.measure(rig.clock.time())
            await until(lambda: session.connects == 1, 5, "first connection")
            assert logger.requests == [now - gatt.backfill_window_s]
            back = [r for r in rig.pull() if r.quality == Quality.BACKFILLED]
            assert len(back) == 12 * 3
            temps = sorted((r.ts, r.value) for r in back if r.point == "temperature")
            assert temps == [(float(r.ts), r.temperature) for r in logger.records]

            await logger.notify_live(history.LogRecord(now, 4.25, 81.0, 89))
            await until(lambda: live_temps(rig) == [4.25], 5, "live notification")

            # the peripheral drops the link; new records accumulate meanwhile
            await logger.drop_link()
            await until(lambda: session.connects == 1 and not session._seen.is_set(), 5, "drop")
            logger.records += [history.LogRecord(now + 600, 4.5, 80.0, 89)]
            await rig.clock.advance(5)
            await sim.measure(rig.clock.time())
            await until(lambda: session.connects == 2, 5, "reconnect")
            assert session.subscriptions == 2
            assert logger.requests[-1] == now  # only what came after the newest record seen
            back = [r for r in rig.pull() if r.quality == Quality.BACKFILLED]
            assert len(back) == 13 * 3 and back[-1].ts == now + 600

            # the re-subscribed notification still delivers live values
            await logger.notify_live(history.LogRecord(now + 700, 4.75, 81.0, 89))
            await until(lambda: live_temps(rig) == [4.25, 4.75], 5, "live after reconnect")
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            logger.close()


def live_temps(rig: Rig) -> list[object]:
    return [
        r.value
        for r in rig.pull()
        if r.point == "temperature" and r.quality == Quality.GOOD and r.value in (4.25, 4.75)
    ]
