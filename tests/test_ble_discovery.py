"""BLE discovery against the BlueZ mock proposes [[devices]] entries for recognised sensors."""

from __future__ import annotations

import asyncio

from drivers.ble.discovery import discover
from simulators.ble.sensors import SimSensor
from tests.peers import ble as ble_peer
from tests.peers.ble import ADAPTER

bluez_bus = ble_peer.bluez_bus
bluez = ble_peer.bluez


async def test_discover_proposes_recognised_sensors(bluez):
    sims = [
        SimSensor(bluez, ADAPTER, "A4:C1:38:00:60:01", "pvvx_custom", rssi=-70),
        SimSensor(bluez, ADAPTER, "A4:C1:38:00:60:02", "bthome", rssi=-50),
        SimSensor(bluez, ADAPTER, "E3:60:59:00:60:03", "govee_h5075", name="GVH5075_6003"),
        SimSensor(bluez, ADAPTER, "C0:00:00:00:60:04", "bthome"),  # garbage only
    ]
    sims[3].garbage = True

    async def advertise() -> None:
        await asyncio.sleep(0.1)  # after the scan has started (bleak reports only changes)
        for s in sims:
            await s.add()
            await s.measure(1_750_000_000.0)

    task = asyncio.create_task(advertise())
    found = await discover(ADAPTER, 0.6)
    await task
    by_addr = {d["address"]: d for d in found}
    assert by_addr["A4:C1:38:00:60:01"]["profile"] == "xiaomi-lywsd03mmc-pvvx"
    assert by_addr["A4:C1:38:00:60:02"]["profile"] == "bthome-v2"
    assert by_addr["E3:60:59:00:60:03"]["profile"] == "govee-h5075"
    assert "C0:00:00:00:60:04" not in by_addr
    assert found[0]["address"] == "A4:C1:38:00:60:02"  # strongest signal first
    assert by_addr["A4:C1:38:00:60:01"]["id"] == "xiaomi-6001"
    assert "-7" in str(by_addr["A4:C1:38:00:60:01"]["label"])
    assert set(found[0]) == {"id", "profile", "address", "label"}
